// Package roomstest is the contract suite of roomstore.Store: every backend (the
// embedded bbolt store, MongoDB) runs Run against a fresh store per test, so
// the room hub can rely on one behaviour whichever backend is configured.
//
// The suite tests only what the roomstore.Store comments promise; it must never
// import a backend, nor assert a backend's internals (how often an AffChange
// is called, how documents are laid out). Beside it, the backends share
// RunInvariants (the stored lists they refuse) and the Bench functions,
// the bodies of their benchmarks.
package roomstoretest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// timeout bounds each test's store calls, so a wedged backend fails the test
// instead of hanging the run.
const timeout = 30 * time.Second

// The services and users the tests share.
const (
	service      = "muc.a.test"
	otherService = "muc.b.test"
)

var (
	alice = xmpp.MustParseJID("alice@a.test")
	bob   = xmpp.MustParseJID("bob@a.test")
	carol = xmpp.MustParseJID("carol@b.test")
	dave  = xmpp.MustParseJID("dave@a.test")
)

// errRefused is what refusing changes return; the store must hand it back.
var errRefused = errors.New("roomstest: change refused")

// Run runs the contract suite; open must return a new, empty store for each
// subtest and arrange (with t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) roomstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s roomstore.Store)
	}{
		{"CreateRoom", testCreateRoom},
		{"CreateRoomConflict", testCreateRoomConflict},
		{"DestroyRoom", testDestroyRoom},
		{"RoomNotFound", testRoomNotFound},
		{"SetConfigMerges", testSetConfigMerges},
		{"ModifyAffUsers", testModifyAffUsers},
		{"ModifyAffUsersNoOp", testModifyAffUsersNoOp},
		{"ModifyAffUsersRefused", testModifyAffUsersRefused},
		{"ModifyAffUsersLastOccupantDestroys", testModifyAffUsersLastOccupant},
		{"ModifyAffUsersChangeMayRepeat", testModifyAffUsersChangeMayRepeat},
		{"NoAliasing", testNoAliasing},
		{"GetUserRooms", testGetUserRooms},
		{"Blocking", testBlocking},
		{"RemoveUser", testRemoveUser},
		{"RemoveUserWithoutRooms", testRemoveUserWithoutRooms},
		{"RemoveDomain", testRemoveDomain},
		{"ConcurrentModifyAffUsers", testConcurrentModifyAffUsers},
		{"ConcurrentSetConfig", testConcurrentSetConfig},
		{"CanceledContext", testCanceledContext},
		{"RoomCapConcurrentCreates", testRoomCapConcurrentCreates},
		{"RoomCapConcurrentAdds", testRoomCapConcurrentAdds},
		{"RoomCapRefusesJoinersOnly", testRoomCapRefusesJoinersOnly},
		{"RoomCapCountsDown", testRoomCapCountsDown},
		{"RoomCapOffAndOn", testRoomCapOffAndOn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func testCreateRoom(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	cfg := roomstore.Config{"roomname": "Coven", "subject": "spells"}
	// Given unsorted; stored and returned sorted by user JID.
	create(t, s, r, cfg, "v1", aff(bob, roomstore.Member, 2), aff(alice, roomstore.Owner, 1))

	if ok, err := s.RoomExists(ctx, r); err != nil || !ok {
		t.Fatalf("RoomExists = %v, %v; want true", ok, err)
	}
	if ok, err := s.RoomExists(ctx, room("other", service)); err != nil || ok {
		t.Errorf("RoomExists(other) = %v, %v; want false", ok, err)
	}
	wantConfig(t, s, r, cfg, "v1")
	wantAffs(t, s, r, []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}, "v1")
	wantUserRooms(t, s, alice, service, r)
	wantUserRooms(t, s, bob, service, r)
}

func testCreateRoomConflict(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	cfg := roomstore.Config{"roomname": "Coven"}
	create(t, s, r, cfg, "v1", aff(alice, roomstore.Owner, 1))

	err := s.CreateRoom(ctx, r, roomstore.Config{"roomname": "Impostor"}, []roomstore.Aff{aff(dave, roomstore.Owner, 5)}, "v9", roomstore.Caps{})
	if !errors.Is(err, roomstore.ErrRoomExists) {
		t.Fatalf("second CreateRoom: %v, want ErrRoomExists", err)
	}
	wantConfig(t, s, r, cfg, "v1")
	wantAffs(t, s, r, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1")
	wantUserRooms(t, s, dave, service)
}

func testDestroyRoom(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	create(t, s, r, roomstore.Config{"roomname": "Coven", "subject": "old"}, "v1", aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2))

	if err := s.DestroyRoom(ctx, r, roomstore.Caps{}); err != nil {
		t.Fatalf("DestroyRoom: %v", err)
	}
	if ok, err := s.RoomExists(ctx, r); err != nil || ok {
		t.Errorf("RoomExists after destroy = %v, %v; want false", ok, err)
	}
	wantUserRooms(t, s, alice, service)
	wantUserRooms(t, s, bob, service)
	if err := s.DestroyRoom(ctx, r, roomstore.Caps{}); !errors.Is(err, roomstore.ErrRoomNotFound) {
		t.Errorf("second DestroyRoom: %v, want ErrRoomNotFound", err)
	}

	// The name is free again, and nothing of the old room lingers.
	create(t, s, r, roomstore.Config{"roomname": "Coven II"}, "v2", aff(dave, roomstore.Owner, 3))
	wantConfig(t, s, r, roomstore.Config{"roomname": "Coven II"}, "v2")
	wantAffs(t, s, r, []roomstore.Aff{aff(dave, roomstore.Owner, 3)}, "v2")
	wantUserRooms(t, s, alice, service)
	wantUserRooms(t, s, dave, service, r)
}

func testRoomNotFound(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	missing := room("nowhere", service)
	// A room on another service with the same local part must not be found
	// either.
	create(t, s, room("nowhere", otherService), nil, "v1", aff(alice, roomstore.Owner, 1))

	ops := []struct {
		name string
		call func() error
	}{
		{"DestroyRoom", func() error { return s.DestroyRoom(ctx, missing, roomstore.Caps{}) }},
		{"GetConfig", func() error { _, _, err := s.GetConfig(ctx, missing); return err }},
		{"SetConfig", func() error { _, err := s.SetConfig(ctx, missing, roomstore.Config{"a": "b"}, "v2"); return err }},
		{"GetAffUsers", func() error { _, _, err := s.GetAffUsers(ctx, missing); return err }},
		{"ModifyAffUsers", func() error {
			_, err := s.ModifyAffUsers(ctx, missing, addUser(bob, roomstore.Member, 2), "v2", roomstore.Caps{})
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.call(); !errors.Is(err, roomstore.ErrRoomNotFound) {
				t.Errorf("got %v, want ErrRoomNotFound", err)
			}
		})
	}
	if ok, err := s.RoomExists(ctx, missing); err != nil || ok {
		t.Errorf("RoomExists = %v, %v; want false, nil", ok, err)
	}
	wantUserRooms(t, s, bob, service)
}

func testSetConfigMerges(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	create(t, s, r, roomstore.Config{"roomname": "Coven", "subject": "hi"}, "v1", aff(alice, roomstore.Owner, 1))

	steps := []struct {
		changes  roomstore.Config
		version  string
		wantPrev string
		want     roomstore.Config
	}{
		{roomstore.Config{"subject": "bye", "extra": "x"}, "v2", "v1", roomstore.Config{"roomname": "Coven", "subject": "bye", "extra": "x"}},
		{roomstore.Config{"roomname": "Coven!"}, "v3", "v2", roomstore.Config{"roomname": "Coven!", "subject": "bye", "extra": "x"}},
		{roomstore.Config{}, "v4", "v3", roomstore.Config{"roomname": "Coven!", "subject": "bye", "extra": "x"}},
	}
	for i, st := range steps {
		prev, err := s.SetConfig(ctx, r, st.changes, st.version)
		if err != nil {
			t.Fatalf("step %d: SetConfig: %v", i, err)
		}
		if prev != st.wantPrev {
			t.Errorf("step %d: previous version %q, want %q", i, prev, st.wantPrev)
		}
		wantConfig(t, s, r, st.want, st.version)
	}
	// The configuration version is the room's version: occupants are kept
	// and the room list shows the new state.
	wantAffs(t, s, r, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v4")
	infos, err := s.GetUserRooms(ctx, alice, service)
	if err != nil || len(infos) != 1 {
		t.Fatalf("GetUserRooms = %v, %v", infos, err)
	}
	if !maps.Equal(infos[0].Config, steps[len(steps)-1].want) || infos[0].Version != "v4" {
		t.Errorf("GetUserRooms = %+v, want the merged config at v4", infos[0])
	}
}

func testModifyAffUsers(t *testing.T, s roomstore.Store) {
	initial := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	cases := []struct {
		name    string
		change  roomstore.AffChange
		want    []roomstore.Aff
		in, out []xmpp.JID // whose room lists must (not) show the room after
	}{
		{
			name:   "add",
			change: addUser(carol, roomstore.Member, 3),
			want:   []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2), aff(carol, roomstore.Member, 3)},
			in:     []xmpp.JID{alice, bob, carol},
		},
		{
			name:   "remove",
			change: removeUser(bob),
			want:   []roomstore.Aff{aff(alice, roomstore.Owner, 1)},
			in:     []xmpp.JID{alice},
			out:    []xmpp.JID{bob},
		},
		{
			name:   "switch roles",
			change: chain(setAff(alice, roomstore.Member), setAff(bob, roomstore.Owner)),
			want:   []roomstore.Aff{aff(alice, roomstore.Member, 1), aff(bob, roomstore.Owner, 2)},
			in:     []xmpp.JID{alice, bob},
		},
		{
			name:   "add and remove at once",
			change: chain(removeUser(bob), addUser(dave, roomstore.Member, 4), addUser(carol, roomstore.Member, 3)),
			want:   []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(carol, roomstore.Member, 3), aff(dave, roomstore.Member, 4)},
			in:     []xmpp.JID{alice, carol, dave},
			out:    []xmpp.JID{bob},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			svc := caseService(i)
			r := room("coven", svc)
			create(t, s, r, nil, "v1", initial...)
			res, err := s.ModifyAffUsers(ctx, r, tc.change, "v2", roomstore.Caps{})
			if err != nil {
				t.Fatalf("ModifyAffUsers: %v", err)
			}
			want := roomstore.AffResult{Old: initial, New: tc.want, OldVersion: "v1", NewVersion: "v2"}
			if !sameResult(res, want) {
				t.Errorf("result\n got %+v\nwant %+v", res, want)
			}
			wantAffs(t, s, r, tc.want, "v2")
			for _, u := range tc.in {
				wantUserRooms(t, s, u, svc, r)
			}
			for _, u := range tc.out {
				wantUserRooms(t, s, u, svc)
			}
		})
	}
}

func testModifyAffUsersNoOp(t *testing.T, s roomstore.Store) {
	initial := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	cases := []struct {
		name   string
		change roomstore.AffChange
	}{
		{"identity", func(cur []roomstore.Aff) ([]roomstore.Aff, error) { return cur, nil }},
		{"reordered", func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
			next := slices.Clone(cur)
			slices.Reverse(next)
			return next, nil
		}},
		{"same pairs, other Since", func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
			next := slices.Clone(cur)
			for i := range next {
				next[i].Since += 100
			}
			return next, nil
		}},
		{"add an existing user", addUser(bob, roomstore.Member, 7)},
		{"remove a missing user", removeUser(dave)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			svc := caseService(i)
			r := room("coven", svc)
			create(t, s, r, roomstore.Config{"subject": "s"}, "v1", initial...)
			res, err := s.ModifyAffUsers(ctx, r, tc.change, "v2", roomstore.Caps{})
			if err != nil {
				t.Fatalf("ModifyAffUsers: %v", err)
			}
			want := roomstore.AffResult{Old: initial, New: initial, OldVersion: "v1", NewVersion: "v1"}
			if !sameResult(res, want) {
				t.Errorf("result\n got %+v\nwant %+v", res, want)
			}
			wantAffs(t, s, r, initial, "v1")
			wantConfig(t, s, r, roomstore.Config{"subject": "s"}, "v1")
		})
	}
}

func testModifyAffUsersRefused(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	initial := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	create(t, s, r, nil, "v1", initial...)

	// The change scribbles on its input before refusing; that must not leak
	// into the store either.
	refuse := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		for i := range cur {
			cur[i].Aff = roomstore.Member
		}
		return append(cur, aff(dave, roomstore.Owner, 9)), errRefused
	}
	if _, err := s.ModifyAffUsers(ctx, r, refuse, "v2", roomstore.Caps{}); !errors.Is(err, errRefused) {
		t.Fatalf("ModifyAffUsers: %v, want the change's error", err)
	}
	wantAffs(t, s, r, initial, "v1")
	wantUserRooms(t, s, dave, service)

	// The room still takes changes afterwards.
	if _, err := s.ModifyAffUsers(ctx, r, removeUser(bob), "v3", roomstore.Caps{}); err != nil {
		t.Fatalf("ModifyAffUsers after refusal: %v", err)
	}
	wantAffs(t, s, r, initial[:1], "v3")
}

func testModifyAffUsersLastOccupant(t *testing.T, s roomstore.Store) {
	cases := []struct {
		name    string
		initial []roomstore.Aff
		change  roomstore.AffChange
	}{
		{"alone leaves", []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, removeUser(alice)},
		{"everyone removed", []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)},
			func([]roomstore.Aff) ([]roomstore.Aff, error) { return nil, nil }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			svc := caseService(i)
			r := room("coven", svc)
			create(t, s, r, roomstore.Config{"roomname": "doomed"}, "v1", tc.initial...)
			res, err := s.ModifyAffUsers(ctx, r, tc.change, "v2", roomstore.Caps{})
			if err != nil {
				t.Fatalf("ModifyAffUsers: %v", err)
			}
			want := roomstore.AffResult{Old: tc.initial, New: nil, OldVersion: "v1", NewVersion: "v2"}
			if !sameResult(res, want) {
				t.Errorf("result\n got %+v\nwant %+v", res, want)
			}
			if ok, err := s.RoomExists(ctx, r); err != nil || ok {
				t.Errorf("RoomExists = %v, %v; want false", ok, err)
			}
			if _, _, err := s.GetAffUsers(ctx, r); !errors.Is(err, roomstore.ErrRoomNotFound) {
				t.Errorf("GetAffUsers: %v, want ErrRoomNotFound", err)
			}
			for _, a := range tc.initial {
				wantUserRooms(t, s, a.User, svc)
			}
			// Destroyed means gone: the name can be created afresh.
			create(t, s, r, nil, "v3", aff(dave, roomstore.Owner, 5))
			wantConfig(t, s, r, roomstore.Config{}, "v3")
		})
	}
}

// testModifyAffUsersChangeMayRepeat holds a backend to the result, not to how
// it got there: a conditional-update backend may call a pure change several
// times, and the outcome must still be the change applied once.
func testModifyAffUsersChangeMayRepeat(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	initial := []roomstore.Aff{aff(alice, roomstore.Owner, 1)}
	create(t, s, r, nil, "v1", initial...)

	var calls atomic.Int32
	add := addUser(bob, roomstore.Member, 2)
	change := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		calls.Add(1)
		if !sameAffs(cur, initial) {
			t.Errorf("change saw %+v, want the stored %+v", cur, initial)
		}
		return add(cur)
	}
	res, err := s.ModifyAffUsers(ctx, r, change, "v2", roomstore.Caps{})
	if err != nil {
		t.Fatalf("ModifyAffUsers: %v", err)
	}
	t.Logf("change called %d times", calls.Load())
	want := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	if !sameAffs(res.New, want) {
		t.Errorf("New = %+v, want %+v", res.New, want)
	}
	wantAffs(t, s, r, want, "v2")

	// Calling the same change again is a no-op now, however often it runs.
	res, err = s.ModifyAffUsers(ctx, r, change2(add), "v3", roomstore.Caps{})
	if err != nil || res.NewVersion != "v2" || !sameAffs(res.New, want) {
		t.Errorf("repeat = %+v, %v; want a no-op at v2", res, err)
	}
}

// change2 calls c twice on fresh copies and returns the second answer, as a
// retrying backend might; pure changes give the same answer both times.
func change2(c roomstore.AffChange) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		if _, err := c(slices.Clone(cur)); err != nil {
			return nil, err
		}
		return c(cur)
	}
}

// testNoAliasing checks that slices and maps crossing the interface are
// copies in both directions.
func testNoAliasing(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	cfg := roomstore.Config{"roomname": "Coven"}
	affs := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	create(t, s, r, cfg, "v1", affs...)
	cfg["roomname"] = "changed"
	affs[0].Aff = roomstore.Member

	wantConfig(t, s, r, roomstore.Config{"roomname": "Coven"}, "v1")
	orig := []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}
	wantAffs(t, s, r, orig, "v1")

	got, _, err := s.GetConfig(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	got["roomname"] = "scribbled"
	gotAffs, _, err := s.GetAffUsers(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	gotAffs[0].Aff = roomstore.Member
	infos, err := s.GetUserRooms(ctx, alice, service)
	if err != nil || len(infos) != 1 {
		t.Fatalf("GetUserRooms = %v, %v", infos, err)
	}
	infos[0].Config["roomname"] = "scribbled"
	wantConfig(t, s, r, roomstore.Config{"roomname": "Coven"}, "v1")
	wantAffs(t, s, r, orig, "v1")

	changes := roomstore.Config{"subject": "s"}
	if _, err := s.SetConfig(ctx, r, changes, "v2"); err != nil {
		t.Fatal(err)
	}
	changes["subject"] = "scribbled"
	wantConfig(t, s, r, roomstore.Config{"roomname": "Coven", "subject": "s"}, "v2")

	// A change that edits its input in place is a real change, and Old still
	// shows what was stored before it.
	demote := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		for i := range cur {
			cur[i].Aff = roomstore.Member
		}
		return cur, nil
	}
	res, err := s.ModifyAffUsers(ctx, r, demote, "v3", roomstore.Caps{})
	if err != nil {
		t.Fatal(err)
	}
	demoted := []roomstore.Aff{aff(alice, roomstore.Member, 1), aff(bob, roomstore.Member, 2)}
	if want := (roomstore.AffResult{Old: orig, New: demoted, OldVersion: "v2", NewVersion: "v3"}); !sameResult(res, want) {
		t.Errorf("result\n got %+v\nwant %+v", res, want)
	}
	res.New[0].Aff = roomstore.Owner
	res.Old[1].Aff = roomstore.Owner
	wantAffs(t, s, r, demoted, "v3")
}

func testGetUserRooms(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	type spec struct {
		room    xmpp.JID
		cfg     roomstore.Config
		version string
		affs    []roomstore.Aff
	}
	specs := []spec{
		{room("r3", service), roomstore.Config{"roomname": "three"}, "v3", []roomstore.Aff{aff(alice, roomstore.Member, 1), aff(bob, roomstore.Owner, 1)}},
		{room("r1", service), roomstore.Config{"roomname": "one"}, "v1", []roomstore.Aff{aff(alice, roomstore.Owner, 1)}},
		{room("r2", otherService), roomstore.Config{"roomname": "two"}, "v2", []roomstore.Aff{aff(alice, roomstore.Owner, 1)}},
		{room("r4", service), roomstore.Config{"roomname": "four"}, "v4", []roomstore.Aff{aff(bob, roomstore.Owner, 1)}},
		{room("r0", "muc.a.test.example"), roomstore.Config{"roomname": "zero"}, "v0", []roomstore.Aff{aff(alice, roomstore.Owner, 1)}},
	}
	for _, sp := range specs {
		create(t, s, sp.room, sp.cfg, sp.version, sp.affs...)
	}
	info := func(i int) roomstore.RoomInfo {
		return roomstore.RoomInfo{Room: specs[i].room, Config: specs[i].cfg, Version: specs[i].version}
	}
	cases := []struct {
		user    xmpp.JID
		service string
		want    []roomstore.RoomInfo
	}{
		{alice, service, []roomstore.RoomInfo{info(1), info(0)}},
		{alice, otherService, []roomstore.RoomInfo{info(2)}},
		{bob, service, []roomstore.RoomInfo{info(0), info(3)}},
		{bob, otherService, nil},
		{dave, service, nil},
		{alice, "muc.c.test", nil},
		{xmpp.MustParseJID("alic@a.test"), service, nil},
	}
	for _, tc := range cases {
		t.Run(tc.user.String()+" on "+tc.service, func(t *testing.T) {
			got, err := s.GetUserRooms(ctx, tc.user, tc.service)
			if err != nil {
				t.Fatalf("GetUserRooms: %v", err)
			}
			if !sameInfos(got, tc.want) {
				t.Errorf("GetUserRooms\n got %+v\nwant %+v", got, tc.want)
			}
			n, err := s.GetUserRoomsCount(ctx, tc.user, tc.service)
			if err != nil || n != len(tc.want) {
				t.Errorf("GetUserRoomsCount = %d, %v; want %d", n, err, len(tc.want))
			}
		})
	}
}

func testBlocking(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r0, r1, r2 := room("r0", service), room("r1", service), room("r2", service)
	erin := xmpp.MustParseJID("erin@b.test")
	nobody := xmpp.MustParseJID("nobody@a.test")
	steps := []struct {
		name        string
		deny, allow []roomstore.BlockItem
		want        []roomstore.BlockItem
	}{
		{"empty at first", nil, nil, nil},
		{"deny, given unsorted",
			[]roomstore.BlockItem{blockUser(dave), blockRoom(r2), blockUser(bob), blockRoom(r1)}, nil,
			[]roomstore.BlockItem{blockRoom(r1), blockRoom(r2), blockUser(bob), blockUser(dave)}},
		{"deny again is no duplicate",
			[]roomstore.BlockItem{blockUser(bob), blockRoom(r0), blockRoom(r0)}, nil,
			[]roomstore.BlockItem{blockRoom(r0), blockRoom(r1), blockRoom(r2), blockUser(bob), blockUser(dave)}},
		{"allow removes, missing ones too",
			nil, []roomstore.BlockItem{blockRoom(r1), blockUser(nobody), blockRoom(bob)},
			[]roomstore.BlockItem{blockRoom(r0), blockRoom(r2), blockUser(bob), blockUser(dave)}},
		{"deny and allow at once",
			[]roomstore.BlockItem{blockUser(erin)}, []roomstore.BlockItem{blockUser(dave)},
			[]roomstore.BlockItem{blockRoom(r0), blockRoom(r2), blockUser(bob), blockUser(erin)}},
		{"allow everything",
			nil, []roomstore.BlockItem{blockRoom(r0), blockRoom(r2), blockUser(bob), blockUser(erin)},
			nil},
		{"deny after emptying",
			[]roomstore.BlockItem{blockUser(carol)}, nil,
			[]roomstore.BlockItem{blockUser(carol)}},
	}
	for _, st := range steps {
		if st.deny != nil || st.allow != nil {
			if err := s.SetBlocking(ctx, alice, st.deny, st.allow); err != nil {
				t.Fatalf("%s: SetBlocking: %v", st.name, err)
			}
		}
		wantBlocking(t, s, alice, st.want)
	}
	// Lists are per user.
	wantBlocking(t, s, bob, nil)
	if err := s.SetBlocking(ctx, bob, []roomstore.BlockItem{blockRoom(r1)}, nil); err != nil {
		t.Fatal(err)
	}
	wantBlocking(t, s, bob, []roomstore.BlockItem{blockRoom(r1)})
	wantBlocking(t, s, alice, []roomstore.BlockItem{blockUser(carol)})
}

func testRemoveUser(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r1, r2, r3 := room("r1", service), room("r2", service), room("r3", service)
	r4, r5 := room("r4", otherService), room("r5", service)
	create(t, s, r1, nil, "v1", aff(alice, roomstore.Owner, 1), aff(dave, roomstore.Member, 3), aff(bob, roomstore.Member, 2))
	create(t, s, r2, nil, "v1", aff(carol, roomstore.Owner, 1), aff(alice, roomstore.Member, 2))
	create(t, s, r3, nil, "v1", aff(alice, roomstore.Owner, 1))
	create(t, s, r4, nil, "v1", aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2))
	create(t, s, r5, nil, "v1", aff(bob, roomstore.Owner, 1))
	if err := s.SetBlocking(ctx, alice, []roomstore.BlockItem{blockUser(bob), blockRoom(r5)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBlocking(ctx, bob, []roomstore.BlockItem{blockUser(alice)}, nil); err != nil {
		t.Fatal(err)
	}

	var n atomic.Int32
	version := func() string { return fmt.Sprintf("rm%d", n.Add(1)) }
	removals, err := s.RemoveUser(ctx, alice, service, leave, version, roomstore.Caps{})
	if err != nil {
		t.Fatalf("RemoveUser: %v", err)
	}

	want := map[xmpp.JID]struct {
		old, new  []roomstore.Aff
		destroyed bool
	}{
		r1: {
			old: []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2), aff(dave, roomstore.Member, 3)},
			// Ownership passes to the longest-standing member.
			new: []roomstore.Aff{aff(bob, roomstore.Owner, 2), aff(dave, roomstore.Member, 3)},
		},
		r2: {
			old: []roomstore.Aff{aff(alice, roomstore.Member, 2), aff(carol, roomstore.Owner, 1)},
			new: []roomstore.Aff{aff(carol, roomstore.Owner, 1)},
		},
		r3: {old: []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, destroyed: true},
	}
	if len(removals) != len(want) {
		t.Errorf("got %d removals, want %d: %+v", len(removals), len(want), removals)
	}
	seen := map[xmpp.JID]bool{}
	for _, rm := range removals {
		w, ok := want[rm.Room]
		if !ok || seen[rm.Room] {
			t.Errorf("unexpected removal %+v", rm)
			continue
		}
		seen[rm.Room] = true
		if rm.Destroyed != w.destroyed {
			t.Errorf("%s: Destroyed = %v, want %v", rm.Room, rm.Destroyed, w.destroyed)
		}
		res := rm.Result
		if !sameAffs(res.Old, w.old) || !sameAffs(res.New, w.new) || res.OldVersion != "v1" || res.NewVersion == "v1" || res.NewVersion == "" {
			t.Errorf("%s: result %+v, want old %+v new %+v, from v1 to a version of the version func", rm.Room, res, w.old, w.new)
		}
		if !w.destroyed {
			wantAffs(t, s, rm.Room, w.new, res.NewVersion)
		}
	}
	if ok, err := s.RoomExists(ctx, r3); err != nil || ok {
		t.Errorf("RoomExists(%s) = %v, %v; want false", r3, ok, err)
	}
	wantUserRooms(t, s, alice, service)
	wantUserRooms(t, s, alice, otherService, r4)
	wantUserRooms(t, s, bob, service, r1, r5)
	wantUserRooms(t, s, carol, service, r2)
	wantAffs(t, s, r4, []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}, "v1")
	wantAffs(t, s, r5, []roomstore.Aff{aff(bob, roomstore.Owner, 1)}, "v1")
	wantBlocking(t, s, alice, nil)
	wantBlocking(t, s, bob, []roomstore.BlockItem{blockUser(alice)})
}

func testRemoveUserWithoutRooms(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	create(t, s, room("r1", service), nil, "v1", aff(bob, roomstore.Owner, 1))
	if err := s.SetBlocking(ctx, alice, []roomstore.BlockItem{blockUser(bob)}, nil); err != nil {
		t.Fatal(err)
	}
	removals, err := s.RemoveUser(ctx, alice, service, leave, func() string { return "v2" }, roomstore.Caps{})
	if err != nil || len(removals) != 0 {
		t.Errorf("RemoveUser = %+v, %v; want nothing", removals, err)
	}
	wantBlocking(t, s, alice, nil)
	wantAffs(t, s, room("r1", service), []roomstore.Aff{aff(bob, roomstore.Owner, 1)}, "v1")
}

func testRemoveDomain(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	x1, x2, y1 := room("x1", service), room("x2", service), room("y1", otherService)
	create(t, s, x1, nil, "v1", aff(alice, roomstore.Owner, 1), aff(carol, roomstore.Member, 2))
	create(t, s, x2, nil, "v1", aff(bob, roomstore.Owner, 1))
	create(t, s, y1, roomstore.Config{"roomname": "why"}, "v1", aff(carol, roomstore.Owner, 1), aff(alice, roomstore.Member, 2))
	for _, u := range []xmpp.JID{alice, bob, carol} {
		if err := s.SetBlocking(ctx, u, []roomstore.BlockItem{blockRoom(x2)}, nil); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.RemoveDomain(ctx, "a.test", service); err != nil {
		t.Fatalf("RemoveDomain: %v", err)
	}
	for _, r := range []xmpp.JID{x1, x2} {
		if ok, err := s.RoomExists(ctx, r); err != nil || ok {
			t.Errorf("RoomExists(%s) = %v, %v; want false", r, ok, err)
		}
	}
	wantConfig(t, s, y1, roomstore.Config{"roomname": "why"}, "v1")
	wantAffs(t, s, y1, []roomstore.Aff{aff(alice, roomstore.Member, 2), aff(carol, roomstore.Owner, 1)}, "v1")
	wantUserRooms(t, s, carol, service)
	wantUserRooms(t, s, alice, service)
	wantUserRooms(t, s, alice, otherService, y1)
	wantBlocking(t, s, alice, nil)
	wantBlocking(t, s, bob, nil)
	wantBlocking(t, s, carol, []roomstore.BlockItem{blockRoom(x2)})

	// A room created afresh under a removed name is listed once.
	create(t, s, x1, nil, "v2", aff(carol, roomstore.Owner, 5))
	wantUserRooms(t, s, carol, service, x1)
}

// testConcurrentModifyAffUsers races writers on one room: none may be lost,
// and the versions must form one chain (each change saw the one before).
func testConcurrentModifyAffUsers(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("busy", service)
	create(t, s, r, nil, "v-init", aff(alice, roomstore.Owner, 0))

	const n = 20
	users := make([]xmpp.JID, n)
	results := make([]roomstore.AffResult, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = xmpp.MustParseJID(fmt.Sprintf("user%02d@a.test", i))
		wg.Go(func() {
			res, err := s.ModifyAffUsers(ctx, r, addUser(users[i], roomstore.Member, int64(i+1)), fmt.Sprintf("v%02d", i), roomstore.Caps{})
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			if !slices.ContainsFunc(res.New, func(a roomstore.Aff) bool { return a.User == users[i] }) {
				t.Errorf("writer %d: New %+v lacks %s", i, res.New, users[i])
			}
			results[i] = res
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	got, version, err := s.GetAffUsers(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []roomstore.Aff{aff(alice, roomstore.Owner, 0)}
	for i, u := range users {
		want = append(want, aff(u, roomstore.Member, int64(i+1)))
	}
	if !sameAffs(got, want) {
		t.Errorf("after %d concurrent adds got %d occupants: %+v", n, len(got), got)
	}
	wantVersionChain(t, "ModifyAffUsers", version, func(yield func(old, new string) bool) {
		for _, res := range results {
			if !yield(res.OldVersion, res.NewVersion) {
				return
			}
		}
	})
	for _, u := range users {
		wantUserRooms(t, s, u, service, r)
	}
}

func testConcurrentSetConfig(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("busy", service)
	create(t, s, r, roomstore.Config{"roomname": "Busy"}, "v-init", aff(alice, roomstore.Owner, 0))

	const n = 20
	prevs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			prev, err := s.SetConfig(ctx, r, roomstore.Config{fmt.Sprintf("k%02d", i): fmt.Sprint(i)}, fmt.Sprintf("v%02d", i))
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
			prevs[i] = prev
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	cfg, version, err := s.GetConfig(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	want := roomstore.Config{"roomname": "Busy"}
	for i := range n {
		want[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
	}
	if !maps.Equal(cfg, want) {
		t.Errorf("after %d concurrent merges got %v", n, cfg)
	}
	wantVersionChain(t, "SetConfig", version, func(yield func(old, new string) bool) {
		for i, prev := range prevs {
			if !yield(prev, fmt.Sprintf("v%02d", i)) {
				return
			}
		}
	})
}

func testCanceledContext(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	r := room("coven", service)
	create(t, s, r, nil, "v1", aff(alice, roomstore.Owner, 1))
	done, cancel := context.WithCancel(ctx)
	cancel()

	if err := s.CreateRoom(done, room("late", service), nil, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1", roomstore.Caps{}); err == nil {
		t.Error("CreateRoom with a canceled context succeeded")
	}
	if ok, err := s.RoomExists(ctx, room("late", service)); err != nil || ok {
		t.Errorf("RoomExists after canceled create = %v, %v; want false", ok, err)
	}
	if _, err := s.ModifyAffUsers(done, r, addUser(bob, roomstore.Member, 2), "v2", roomstore.Caps{}); err == nil {
		t.Error("ModifyAffUsers with a canceled context succeeded")
	}
	if _, err := s.SetConfig(done, r, roomstore.Config{"a": "b"}, "v2"); err == nil {
		t.Error("SetConfig with a canceled context succeeded")
	}
	wantAffs(t, s, r, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1")
	wantConfig(t, s, r, roomstore.Config{}, "v1")
}

// wantVersionChain checks that concurrent writes were serialised: each
// write's previous version is the initial one or another write's new one,
// each version is followed exactly once, and the last is the stored one.
func wantVersionChain(t *testing.T, what, final string, writes func(yield func(old, new string) bool)) {
	t.Helper()
	next := map[string]string{}
	for old, nw := range writes {
		if other, dup := next[old]; dup {
			t.Errorf("%s: both %s and %s were written over %s (a lost update)", what, other, nw, old)
		}
		next[old] = nw
	}
	v, steps := "v-init", 0
	for ; steps <= len(next); steps++ {
		nw, ok := next[v]
		if !ok {
			break
		}
		v = nw
	}
	if steps != len(next) || v != final {
		t.Errorf("%s: versions do not form one chain from v-init to the stored %s: %v", what, final, next)
	}
}

// leave is a realistic RemoveUser leave: the user goes, and if they owned
// the room and no owner remains, the longest-standing occupant inherits.
func leave(user xmpp.JID) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		next, _ := removeUser(user)(cur)
		if len(next) == 0 || slices.ContainsFunc(next, func(a roomstore.Aff) bool { return a.Aff == roomstore.Owner }) {
			return next, nil
		}
		heir := 0
		for i, a := range next {
			if a.Since < next[heir].Since {
				heir = i
			}
		}
		next[heir].Aff = roomstore.Owner
		return next, nil
	}
}

func addUser(user xmpp.JID, a roomstore.Affiliation, since int64) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		if slices.ContainsFunc(cur, func(x roomstore.Aff) bool { return x.User == user }) {
			return cur, nil
		}
		return append(cur, aff(user, a, since)), nil
	}
}

func removeUser(user xmpp.JID) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		return slices.DeleteFunc(cur, func(x roomstore.Aff) bool { return x.User == user }), nil
	}
}

func setAff(user xmpp.JID, a roomstore.Affiliation) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		for i := range cur {
			if cur[i].User == user {
				cur[i].Aff = a
			}
		}
		return cur, nil
	}
}

func chain(changes ...roomstore.AffChange) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		var err error
		for _, c := range changes {
			if cur, err = c(cur); err != nil {
				return nil, err
			}
		}
		return cur, nil
	}
}

// caseService gives each case of a table its own MUC service, so the cases
// can share a store without seeing each other's rooms in the room lists.
func caseService(i int) string { return fmt.Sprintf("muc%d.case.test", i) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func room(local, service string) xmpp.JID {
	j, err := xmpp.NewJID(local, service, "")
	if err != nil {
		panic(err)
	}
	return j
}

func aff(user xmpp.JID, a roomstore.Affiliation, since int64) roomstore.Aff {
	return roomstore.Aff{User: user, Aff: a, Since: since}
}

func blockUser(j xmpp.JID) roomstore.BlockItem {
	return roomstore.BlockItem{Kind: roomstore.BlockUser, JID: j}
}
func blockRoom(j xmpp.JID) roomstore.BlockItem {
	return roomstore.BlockItem{Kind: roomstore.BlockRoom, JID: j}
}

func create(t *testing.T, s roomstore.Store, r xmpp.JID, cfg roomstore.Config, version string, affs ...roomstore.Aff) {
	t.Helper()
	if err := s.CreateRoom(testContext(t), r, cfg, affs, version, roomstore.Caps{}); err != nil {
		t.Fatalf("CreateRoom(%s): %v", r, err)
	}
}

func wantConfig(t *testing.T, s roomstore.Store, r xmpp.JID, want roomstore.Config, wantVersion string) {
	t.Helper()
	got, v, err := s.GetConfig(testContext(t), r)
	if err != nil {
		t.Fatalf("GetConfig(%s): %v", r, err)
	}
	if !maps.Equal(got, want) || v != wantVersion {
		t.Errorf("GetConfig(%s) = %v at %q; want %v at %q", r, got, v, want, wantVersion)
	}
}

func wantAffs(t *testing.T, s roomstore.Store, r xmpp.JID, want []roomstore.Aff, wantVersion string) {
	t.Helper()
	got, v, err := s.GetAffUsers(testContext(t), r)
	if err != nil {
		t.Fatalf("GetAffUsers(%s): %v", r, err)
	}
	if !sameAffs(got, want) || v != wantVersion {
		t.Errorf("GetAffUsers(%s) = %+v at %q; want %+v at %q", r, got, v, want, wantVersion)
	}
}

// wantUserRooms checks the room list of user on svc by JID, in order, and
// that the count agrees.
func wantUserRooms(t *testing.T, s roomstore.Store, user xmpp.JID, svc string, want ...xmpp.JID) {
	t.Helper()
	ctx := testContext(t)
	infos, err := s.GetUserRooms(ctx, user, svc)
	if err != nil {
		t.Fatalf("GetUserRooms(%s, %s): %v", user, svc, err)
	}
	var got []xmpp.JID
	for _, in := range infos {
		got = append(got, in.Room)
	}
	if !slices.Equal(got, want) {
		t.Errorf("GetUserRooms(%s, %s) = %v, want %v", user, svc, got, want)
	}
	if n, err := s.GetUserRoomsCount(ctx, user, svc); err != nil || n != len(want) {
		t.Errorf("GetUserRoomsCount(%s, %s) = %d, %v; want %d", user, svc, n, err, len(want))
	}
}

func wantBlocking(t *testing.T, s roomstore.Store, user xmpp.JID, want []roomstore.BlockItem) {
	t.Helper()
	got, err := s.GetBlocking(testContext(t), user)
	if err != nil {
		t.Fatalf("GetBlocking(%s): %v", user, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("GetBlocking(%s) = %v, want %v", user, got, want)
	}
}

// sameAffs compares lists in order, Since included; nil equals empty.
func sameAffs(a, b []roomstore.Aff) bool { return slices.Equal(a, b) }

func sameResult(a, b roomstore.AffResult) bool {
	return sameAffs(a.Old, b.Old) && sameAffs(a.New, b.New) &&
		a.OldVersion == b.OldVersion && a.NewVersion == b.NewVersion
}

func sameInfos(a, b []roomstore.RoomInfo) bool {
	return slices.EqualFunc(a, b, func(x, y roomstore.RoomInfo) bool {
		return x.Room == y.Room && x.Version == y.Version && maps.Equal(x.Config, y.Config)
	})
}

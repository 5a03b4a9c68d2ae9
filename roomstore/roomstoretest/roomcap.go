package roomstoretest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// The rooms_per_user cases: the cap holds however writers interleave, it
// refuses only users a write adds, and it counts the rooms a user is in now.

// testRoomCapConcurrentCreates races one user's creates with a cap of 3:
// exactly three rooms exist afterwards, and each refused create wrote nothing.
func testRoomCapConcurrentCreates(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	caps := roomstore.Caps{RoomsPerUser: 3}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateRoom(ctx, room(fmt.Sprintf("c%02d", i), service), nil, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1", caps)
		})
	}
	wg.Wait()
	var made []xmpp.JID
	for i, err := range errs {
		r := room(fmt.Sprintf("c%02d", i), service)
		if err == nil {
			made = append(made, r)
			continue
		}
		wantCapError(t, err, alice)
		if ok, err := s.RoomExists(ctx, r); err != nil || ok {
			t.Errorf("refused create of %s: RoomExists = %v, %v", r, ok, err)
		}
	}
	if len(made) != 3 {
		t.Errorf("%d of %d concurrent creates succeeded with a cap of 3", len(made), n)
	}
	wantUserRooms(t, s, alice, service, made...)
}

// testRoomCapConcurrentAdds has three owners add one user to three rooms each
// at once, with a cap of 3 and the user already in one room: two additions
// pass, the others are refused and leave their room as it was.
func testRoomCapConcurrentAdds(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	caps := roomstore.Caps{RoomsPerUser: 3}
	home := room("home", service)
	create(t, s, home, nil, "v1", aff(dave, roomstore.Owner, 1))
	var rs, owners []xmpp.JID
	for _, o := range []xmpp.JID{alice, bob, carol} {
		for j := range 3 {
			r := room(fmt.Sprintf("%s%d", o.Local, j), service)
			create(t, s, r, nil, "v1", aff(o, roomstore.Owner, 1))
			rs, owners = append(rs, r), append(owners, o)
		}
	}
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			_, errs[i] = s.ModifyAffUsers(ctx, r, addUser(dave, roomstore.Member, 2), "v2", caps)
		})
	}
	wg.Wait()
	joined := []xmpp.JID{home}
	for i, err := range errs {
		if err == nil {
			joined = append(joined, rs[i])
			continue
		}
		wantCapError(t, err, dave)
		wantAffs(t, s, rs[i], []roomstore.Aff{aff(owners[i], roomstore.Owner, 1)}, "v1")
	}
	if len(joined) != 3 {
		t.Errorf("dave joined %d rooms by concurrent additions, on top of one, with a cap of 3", len(joined)-1)
	}
	slices.SortFunc(joined, compareJIDs)
	wantUserRooms(t, s, dave, service, joined...)
}

// testRoomCapRefusesJoinersOnly checks what a write at the cap does: it names
// exactly the users it would add who are at the cap, writes nothing (and
// keeps no place for the others), never refuses users already in the room,
// and counts per service.
func testRoomCapRefusesJoinersOnly(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	one := roomstore.Caps{RoomsPerUser: 1}
	r1, r2, r3 := room("r1", service), room("r2", service), room("r3", service)
	if err := s.CreateRoom(ctx, r1, nil, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1", one); err != nil {
		t.Fatal(err)
	}

	err := s.CreateRoom(ctx, r2, nil, []roomstore.Aff{aff(bob, roomstore.Owner, 1), aff(alice, roomstore.Member, 2)}, "v1", one)
	wantCapError(t, err, alice)
	if ok, err := s.RoomExists(ctx, r2); err != nil || ok {
		t.Errorf("refused create: RoomExists = %v, %v", ok, err)
	}
	// bob's place in the refused room was not kept.
	if err := s.CreateRoom(ctx, r2, nil, []roomstore.Aff{aff(bob, roomstore.Owner, 1)}, "v1", one); err != nil {
		t.Fatalf("bob's first room after a refused create: %v", err)
	}

	_, err = s.ModifyAffUsers(ctx, r1, chain(addUser(bob, roomstore.Member, 2), addUser(dave, roomstore.Member, 3)), "v2", one)
	wantCapError(t, err, bob)
	wantAffs(t, s, r1, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1")
	if _, err := s.ModifyAffUsers(ctx, r1, addUser(dave, roomstore.Member, 3), "v2", one); err != nil {
		t.Fatalf("adding dave alone: %v", err)
	}
	// Everyone in r1 is at the cap; changing their affiliations adds nobody.
	if _, err := s.ModifyAffUsers(ctx, r1, chain(setAff(alice, roomstore.Member), setAff(dave, roomstore.Owner)), "v3", one); err != nil {
		t.Fatalf("promoting an occupant at the cap: %v", err)
	}
	wantAffs(t, s, r1, []roomstore.Aff{aff(alice, roomstore.Member, 1), aff(dave, roomstore.Owner, 3)}, "v3")

	// A create that finds the room taken keeps no place either.
	err = s.CreateRoom(ctx, r1, nil, []roomstore.Aff{aff(carol, roomstore.Owner, 1)}, "v1", one)
	if !errors.Is(err, roomstore.ErrRoomExists) {
		t.Fatalf("CreateRoom of an existing room = %v, want ErrRoomExists", err)
	}
	if err := s.CreateRoom(ctx, r3, nil, []roomstore.Aff{aff(carol, roomstore.Owner, 1)}, "v1", one); err != nil {
		t.Fatalf("carol's first room after a conflict: %v", err)
	}

	// The cap counts rooms of one service.
	if err := s.CreateRoom(ctx, room("x", otherService), nil, []roomstore.Aff{aff(alice, roomstore.Owner, 1)}, "v1", one); err != nil {
		t.Fatalf("alice's first room of another service: %v", err)
	}
	wantUserRooms(t, s, alice, service, r1)
	wantUserRooms(t, s, bob, service, r2)
}

// testRoomCapCountsDown checks that every way of leaving a room gives its
// place back: leaving, being the last to leave, destroy, RemoveUser and
// RemoveDomain.
func testRoomCapCountsDown(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	two := roomstore.Caps{RoomsPerUser: 2}
	mk := func(name string, affs ...roomstore.Aff) error {
		return s.CreateRoom(ctx, room(name, service), nil, affs, "v1", two)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("a1", mk("a1", aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)))
	must("a2", mk("a2", aff(alice, roomstore.Owner, 1)))
	wantCapError(t, mk("a3", aff(alice, roomstore.Owner, 1)), alice)

	_, err := s.ModifyAffUsers(ctx, room("a1", service), leave(alice), "v2", two)
	must("leave a1", err)
	must("a3 after leaving a1", mk("a3", aff(alice, roomstore.Owner, 1)))

	_, err = s.ModifyAffUsers(ctx, room("a2", service), leave(alice), "v2", two)
	must("last to leave a2", err)
	must("a4 after a2 went", mk("a4", aff(alice, roomstore.Owner, 1)))

	must("destroy a3", s.DestroyRoom(ctx, room("a3", service), two))
	must("a5 after destroying a3", mk("a5", aff(alice, roomstore.Owner, 1)))
	wantCapError(t, mk("a6", aff(alice, roomstore.Owner, 1)), alice)

	_, err = s.RemoveUser(ctx, alice, service, leave, func() string { return "v9" }, two)
	must("RemoveUser", err)
	must("b1 after RemoveUser", mk("b1", aff(alice, roomstore.Owner, 1)))
	must("b2 after RemoveUser", mk("b2", aff(alice, roomstore.Owner, 1)))

	must("RemoveDomain", s.RemoveDomain(ctx, "a.test", service))
	must("c1 after RemoveDomain", mk("c1", aff(alice, roomstore.Owner, 1)))
	must("c2 after RemoveDomain", mk("c2", aff(alice, roomstore.Owner, 1)))
	wantCapError(t, mk("c3", aff(alice, roomstore.Owner, 1)), alice)
	wantUserRooms(t, s, alice, service, room("c1", service), room("c2", service))
	wantUserRooms(t, s, bob, service)
}

// wantCapError checks err is a *roomstore.RoomCapError naming exactly users.
func wantCapError(t *testing.T, err error, users ...xmpp.JID) {
	t.Helper()
	var ce *roomstore.RoomCapError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *roomstore.RoomCapError for %v", err, users)
	}
	if !slices.Equal(ce.Users, users) {
		t.Errorf("RoomCapError.Users = %v, want %v", ce.Users, users)
	}
}

func compareJIDs(a, b xmpp.JID) int {
	switch x, y := a.String(), b.String(); {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// testRoomCapOffAndOn checks that writes without a cap still count once a
// write with one has run, so that turning the cap off and on again (writers
// with other caps) finds the true number of rooms.
func testRoomCapOffAndOn(t *testing.T, s roomstore.Store) {
	ctx := testContext(t)
	two, off := roomstore.Caps{RoomsPerUser: 2}, roomstore.Caps{}
	mk := func(name string, caps roomstore.Caps) error {
		return s.CreateRoom(ctx, room(name, service), nil, []roomstore.Aff{aff(alice, roomstore.Owner, 1), aff(bob, roomstore.Member, 2)}, "v1", caps)
	}
	for _, step := range []struct {
		name string
		caps roomstore.Caps
	}{{"a1", two}, {"a2", off}, {"a3", off}} {
		if err := mk(step.name, step.caps); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	wantCapError(t, mk("a4", two), alice, bob)
	for _, r := range []string{"a2", "a3"} {
		if _, err := s.ModifyAffUsers(ctx, room(r, service), leave(alice), "v2", off); err != nil {
			t.Fatalf("leave %s: %v", r, err)
		}
	}
	if err := s.DestroyRoom(ctx, room("a2", service), off); err != nil {
		t.Fatal(err)
	}
	wantCapError(t, mk("a4", two), bob) // alice is in one room, bob in two
	if _, err := s.ModifyAffUsers(ctx, room("a3", service), leave(bob), "v3", off); err != nil {
		t.Fatal(err)
	}
	if err := mk("a4", two); err != nil {
		t.Fatalf("a4 with both under the cap: %v", err)
	}
	wantCapError(t, mk("a5", two), alice, bob)
}

package boltstore

import (
	"context"
	"errors"
	"testing"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/rooms/roomstest"
	"github.com/wschat/xmppws/xmpp"
)

func TestRoomStoreContract(t *testing.T) {
	roomstest.Run(t, func(t *testing.T) rooms.Store {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestRoomsPersist checks that rooms, the user index and blocking lists
// survive closing and reopening the file.
func TestRoomsPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice := xmpp.MustParseJID("alice@a.test")
	room := xmpp.MustParseJID("coven@muc.a.test")
	affs := []rooms.Aff{{User: alice, Aff: rooms.Owner, Since: 42}}
	if err := s.CreateRoom(ctx, room, rooms.Config{"roomname": "Coven"}, affs, "v1"); err != nil {
		t.Fatal(err)
	}
	block := []rooms.BlockItem{{Kind: rooms.BlockUser, JID: xmpp.MustParseJID("bob@a.test")}}
	if err := s.SetBlocking(ctx, alice, block, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg, v, err := s.GetConfig(ctx, room)
	if err != nil || cfg["roomname"] != "Coven" || v != "v1" {
		t.Errorf("GetConfig after reopen = %v, %q, %v", cfg, v, err)
	}
	got, _, err := s.GetAffUsers(ctx, room)
	if err != nil || len(got) != 1 || got[0] != affs[0] {
		t.Errorf("GetAffUsers after reopen = %+v, %v", got, err)
	}
	if infos, err := s.GetUserRooms(ctx, alice, "muc.a.test"); err != nil || len(infos) != 1 || infos[0].Room != room {
		t.Errorf("GetUserRooms after reopen = %+v, %v", infos, err)
	}
	if items, err := s.GetBlocking(ctx, alice); err != nil || len(items) != 1 || items[0] != block[0] {
		t.Errorf("GetBlocking after reopen = %+v, %v", items, err)
	}
}

// TestRoomInvariants checks that lists that would break the store's
// invariants are refused and leave the room as it was.
func TestRoomInvariants(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := xmpp.MustParseJID("alice@a.test")
	room := xmpp.MustParseJID("coven@muc.a.test")
	owner := rooms.Aff{User: alice, Aff: rooms.Owner, Since: 1}

	creates := []struct {
		name string
		affs []rooms.Aff
	}{
		{"no occupants", nil},
		{"duplicate user", []rooms.Aff{owner, {User: alice, Aff: rooms.Member}}},
		{"affiliation none", []rooms.Aff{{User: alice, Aff: rooms.None}}},
		{"empty JID", []rooms.Aff{owner, {Aff: rooms.Member}}},
	}
	for _, tc := range creates {
		t.Run("create/"+tc.name, func(t *testing.T) {
			if err := s.CreateRoom(ctx, room, nil, tc.affs, "v1"); !errors.Is(err, errInvalidAffs) {
				t.Errorf("CreateRoom: %v, want errInvalidAffs", err)
			}
			if ok, _ := s.RoomExists(ctx, room); ok {
				t.Error("room was created")
			}
		})
	}

	if err := s.CreateRoom(ctx, room, nil, []rooms.Aff{owner}, "v1"); err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name string
		next []rooms.Aff
	}{
		{"duplicate user", []rooms.Aff{owner, {User: alice, Aff: rooms.Member}}},
		{"affiliation none", []rooms.Aff{owner, {User: xmpp.MustParseJID("bob@a.test"), Aff: rooms.None}}},
	}
	for _, tc := range changes {
		t.Run("modify/"+tc.name, func(t *testing.T) {
			change := func([]rooms.Aff) ([]rooms.Aff, error) { return tc.next, nil }
			if _, err := s.ModifyAffUsers(ctx, room, change, "v2"); !errors.Is(err, errInvalidAffs) {
				t.Errorf("ModifyAffUsers: %v, want errInvalidAffs", err)
			}
			got, v, err := s.GetAffUsers(ctx, room)
			if err != nil || len(got) != 1 || got[0] != owner || v != "v1" {
				t.Errorf("room after refusal = %+v at %q, %v", got, v, err)
			}
		})
	}
}

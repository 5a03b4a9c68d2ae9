package boltstore

import (
	"context"
	"testing"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
	"github.com/wschat/xmppws/xmpp"
)

func TestRoomStoreContract(t *testing.T) {
	roomstoretest.Run(t, func(t *testing.T) roomstore.Store { return openTemp(t) })
}

// TestRoomsPersist checks that rooms, the user index and blocking lists
// survive closing and reopening the file.
func TestRoomsPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	alice := xmpp.MustParseJID("alice@a.test")
	room := xmpp.MustParseJID("coven@muc.a.test")
	affs := []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 42}}
	if err := s.CreateRoom(ctx, room, roomstore.Config{"roomname": "Coven"}, affs, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	block := []roomstore.BlockItem{{Kind: roomstore.BlockUser, JID: xmpp.MustParseJID("bob@a.test")}}
	if err := s.SetBlocking(ctx, alice, block, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDir(t, dir)
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
	roomstoretest.RunInvariants(t, func(t *testing.T) roomstore.Store { return openTemp(t) }, errInvalidAffs)
}

func TestListRooms(t *testing.T) {
	roomstoretest.RunList(t, func(t *testing.T) roomstoretest.ListStore { return openTemp(t) })
}

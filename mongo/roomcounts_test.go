package mongo

import (
	"errors"
	"slices"
	"testing"

	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// TestRoomCapAcrossStores plays another node taking a user's last place
// under rooms_per_user between this store's read of a room and its write.
// The second store shares nothing in memory with the first (its own locks,
// its own countsUsed), so only what is in the database can refuse the write.
func TestRoomCapAcrossStores(t *testing.T) {
	uri := mongotest.URI(t)
	ctx := testContext(t)
	s := openTemp(t, uri)
	other := open(t, uri, s.rooms.Database().Name())
	two := roomstore.Caps{RoomsPerUser: 2}
	r1, r2, r3 := xmpp.MustParseJID("r1@muc.a.test"), xmpp.MustParseJID("r2@muc.a.test"), xmpp.MustParseJID("r3@muc.a.test")
	if err := s.CreateRoom(ctx, r1, nil, []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 1}}, "v1", two); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(ctx, r2, nil, []roomstore.Aff{{User: bob, Aff: roomstore.Owner, Since: 1}}, "v1", two); err != nil {
		t.Fatal(err)
	}
	calls := 0
	change := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		if calls++; calls == 1 {
			if err := other.CreateRoom(ctx, r3, nil, []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 2}}, "v1", two); err != nil {
				t.Errorf("the other node's create: %v", err)
			}
		}
		return addUser(alice, roomstore.Member, 3)(cur)
	}
	_, err := s.ModifyAffUsers(ctx, r2, change, "v2", two)
	var ce *roomstore.RoomCapError
	if !errors.As(err, &ce) || len(ce.Users) != 1 || ce.Users[0] != alice {
		t.Fatalf("adding alice after the other node took her last place: %v, want a RoomCapError for her", err)
	}
	if n, err := s.GetUserRoomsCount(ctx, alice, "muc.a.test"); err != nil || n != 2 {
		t.Errorf("alice is in %d rooms (%v); the cap is 2", n, err)
	}
	// The other way round: a place given back on one node is free on the other.
	if err := other.DestroyRoom(ctx, r3, two); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyAffUsers(ctx, r2, addUser(alice, roomstore.Member, 4), "v3", two); err != nil {
		t.Fatalf("adding alice after the other node destroyed her room: %v", err)
	}
	if _, err := other.ModifyAffUsers(ctx, r2, removeUser(alice), "v4", two); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(ctx, r3, nil, []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 5}}, "v1", two); err != nil {
		t.Fatalf("creating after leaving a room through the other node: %v", err)
	}
}

func removeUser(user xmpp.JID) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		return slices.DeleteFunc(cur, func(a roomstore.Aff) bool { return a.User == user }), nil
	}
}

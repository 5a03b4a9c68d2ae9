package roomstoretest

import (
	"errors"
	"testing"

	"github.com/wschat/xmppws/roomstore"
)

// RunInvariants checks what both backends enforce beyond the roomstore.Store
// contract (the hub never asks for such lists, so Run leaves it out): a
// list that would break a stored room's invariants (no occupants at
// creation, a user twice, an affiliation other than owner or member, an
// empty user JID) is refused with an error wrapping invalid, the backend's
// own sentinel, and leaves the room as it was. open is called once; the
// subtests share the store.
func RunInvariants(t *testing.T, open func(t *testing.T) roomstore.Store, invalid error) {
	s := open(t)
	ctx := testContext(t)
	r := room("coven", service)
	owner := aff(alice, roomstore.Owner, 1)

	creates := []struct {
		name string
		affs []roomstore.Aff
	}{
		{"no occupants", nil},
		{"duplicate user", []roomstore.Aff{owner, {User: alice, Aff: roomstore.Member}}},
		{"affiliation none", []roomstore.Aff{{User: alice, Aff: roomstore.None}}},
		{"empty JID", []roomstore.Aff{owner, {Aff: roomstore.Member}}},
	}
	for _, tc := range creates {
		t.Run("create/"+tc.name, func(t *testing.T) {
			if err := s.CreateRoom(ctx, r, nil, tc.affs, "v1", roomstore.Caps{}); !errors.Is(err, invalid) {
				t.Errorf("CreateRoom: %v, want %v", err, invalid)
			}
			if ok, _ := s.RoomExists(ctx, r); ok {
				t.Error("room was created")
			}
		})
	}

	if err := s.CreateRoom(ctx, r, nil, []roomstore.Aff{owner}, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name string
		next []roomstore.Aff
	}{
		{"duplicate user", []roomstore.Aff{owner, {User: alice, Aff: roomstore.Member}}},
		{"affiliation none", []roomstore.Aff{owner, {User: bob, Aff: roomstore.None}}},
	}
	for _, tc := range changes {
		t.Run("modify/"+tc.name, func(t *testing.T) {
			change := func([]roomstore.Aff) ([]roomstore.Aff, error) { return tc.next, nil }
			if _, err := s.ModifyAffUsers(ctx, r, change, "v2", roomstore.Caps{}); !errors.Is(err, invalid) {
				t.Errorf("ModifyAffUsers: %v, want %v", err, invalid)
			}
			got, v, err := s.GetAffUsers(ctx, r)
			if err != nil || len(got) != 1 || got[0] != owner || v != "v1" {
				t.Errorf("room after refusal = %+v at %q, %v", got, v, err)
			}
		})
	}
}

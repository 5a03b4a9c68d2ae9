package roomstest

import (
	"errors"
	"testing"

	"github.com/wschat/xmppws/rooms"
)

// RunInvariants checks what both backends enforce beyond the rooms.Store
// contract (the hub never asks for such lists, so Run leaves it out): a
// list that would break a stored room's invariants (no occupants at
// creation, a user twice, an affiliation other than owner or member, an
// empty user JID) is refused with an error wrapping invalid, the backend's
// own sentinel, and leaves the room as it was. open is called once; the
// subtests share the store.
func RunInvariants(t *testing.T, open func(t *testing.T) rooms.Store, invalid error) {
	s := open(t)
	ctx := testContext(t)
	r := room("coven", service)
	owner := aff(alice, rooms.Owner, 1)

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
			if err := s.CreateRoom(ctx, r, nil, tc.affs, "v1", rooms.Caps{}); !errors.Is(err, invalid) {
				t.Errorf("CreateRoom: %v, want %v", err, invalid)
			}
			if ok, _ := s.RoomExists(ctx, r); ok {
				t.Error("room was created")
			}
		})
	}

	if err := s.CreateRoom(ctx, r, nil, []rooms.Aff{owner}, "v1", rooms.Caps{}); err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name string
		next []rooms.Aff
	}{
		{"duplicate user", []rooms.Aff{owner, {User: alice, Aff: rooms.Member}}},
		{"affiliation none", []rooms.Aff{owner, {User: bob, Aff: rooms.None}}},
	}
	for _, tc := range changes {
		t.Run("modify/"+tc.name, func(t *testing.T) {
			change := func([]rooms.Aff) ([]rooms.Aff, error) { return tc.next, nil }
			if _, err := s.ModifyAffUsers(ctx, r, change, "v2", rooms.Caps{}); !errors.Is(err, invalid) {
				t.Errorf("ModifyAffUsers: %v, want %v", err, invalid)
			}
			got, v, err := s.GetAffUsers(ctx, r)
			if err != nil || len(got) != 1 || got[0] != owner || v != "v1" {
				t.Errorf("room after refusal = %+v at %q, %v", got, v, err)
			}
		})
	}
}

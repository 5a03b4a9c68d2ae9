package roomhub

import (
	"context"
	"errors"
	"github.com/wschat/xmppws/room"

	"github.com/wschat/xmppws/xmpp"
)

// RemoveUser takes a deleted account out of every room on the services of
// its domain, as if it had left each one (owner handover included; a room it
// was alone in is destroyed), announces each change to the remaining
// occupants, and deletes its blocking list.
func (h *Hub) RemoveUser(ctx context.Context, user xmpp.JID) error {
	user = user.Bare()
	rules := room.AffRules{EqualOccupants: h.opts.EqualOccupants}
	leave := func(u xmpp.JID) room.AffChange {
		return func(cur []room.Aff) ([]room.Aff, error) {
			return room.ApplyAffChanges(cur, []room.AffItem{{User: u, Aff: room.None}}, rules)
		}
	}
	var errs []error
	for svc, host := range h.services {
		if host != user.Domain {
			continue
		}
		removals, err := h.store.RemoveUser(ctx, user, svc, leave, room.NewVersion, h.caps())
		errs = append(errs, err)
		id := room.RandomHex(8)
		// The actors must learn of every change (their cached occupants
		// would let the removed user talk), so these wait for room in a
		// full mailbox as long as the hub runs.
		for i := range removals {
			res := removals[i].Result
			h.dispatch(context.Background(), &mail{req: &room.Removed{Head: room.Head{Room: removals[i].Room}, Result: res, NoticeID: id}})
		}
	}
	return errors.Join(errs...)
}

// RemoveDomain deletes every room of the domain's services and the blocking
// lists of its users.
func (h *Hub) RemoveDomain(ctx context.Context, domain string) error {
	var errs []error
	for svc, host := range h.services {
		if host == domain {
			errs = append(errs, h.store.RemoveDomain(ctx, domain, svc))
			if h.archive != nil {
				errs = append(errs, h.archive.RemoveDomain(ctx, svc))
			}
		}
	}
	// Loaded actors of the removed rooms would otherwise serve stale state.
	// They are told outside the lock, waiting for room in full mailboxes.
	var loaded []xmpp.JID
	h.mu.RLock()
	for j := range h.rooms {
		if h.services[j.Domain] == domain {
			loaded = append(loaded, j)
		}
	}
	h.mu.RUnlock()
	for _, j := range loaded {
		h.dispatch(context.Background(), &mail{req: &room.Removed{Head: room.Head{Room: j}}})
	}
	return errors.Join(errs...)
}

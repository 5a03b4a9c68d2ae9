package roomhub

import (
	"github.com/wschat/xmppws/room"
	"slices"

	"github.com/wschat/xmppws/xmpp"
)

// DefaultMaxEntered bounds a room's XEP-0045 occupant set when
// max_occupants is unlimited.
const DefaultMaxEntered = 10000

// join lets a XEP-0045 session enter: it must be affiliated; its nick and
// the room's rate are checked as for any event.
func (r *actor) join(q *room.Join, sender xmpp.JID, aff room.Affiliation) error {
	if err := r.limitNick(sender, aff, q.Nick); err != nil {
		return err
	}
	if err := r.limit(sender, aff, ""); err != nil {
		return err
	}
	return r.enter(q, sender, aff, false)
}

// enter adds the session to the occupant set and emits OccupantJoined: from
// now on that session gets this room's events in XEP-0045 form.
func (r *actor) enter(q *room.Join, sender xmpp.JID, aff room.Affiliation, created bool) error {
	o := room.Occupant{JID: q.Origin.From, Session: q.Origin.Session, Nick: q.Nick}
	i := slices.IndexFunc(r.occupants, func(e room.Occupant) bool { return e.JID == o.JID })
	max := r.hub.opts.MaxOccupants
	if max <= 0 {
		max = DefaultMaxEntered
	}
	if i < 0 && len(r.occupants) >= max {
		return xmpp.NewError(xmpp.ResourceConstraint, "the room has as many present occupants as it may hold")
	}
	// Copy on write: events already emitted share the old slice.
	next := slices.Clone(r.occupants)
	if i >= 0 {
		next[i] = o // a newer session of the same resource, or a nick change
	} else {
		next = append(next, o)
	}
	r.occupants = next
	subject := ""
	if f, ok := r.hub.opts.Schema.Lookup("subject"); ok {
		subject = r.cfg[f.InternalKey]
	}
	r.hub.sink.Event(&room.OccupantJoined{EventHead: r.eventHead(&q.Head), Occupant: o, Aff: aff, Affs: r.affs,
		Subject: subject, Created: created})
	return nil
}

// leave ends an occupancy. An unavailable presence is answered (the
// occupant's own unavailable presence) when the sender is affiliated, as
// every XEP-0045 client expects; a leave for a session that is not in the
// set, or an older session of that resource, only loses its entry if any.
func (r *actor) leave(q *room.Leave) {
	i := slices.IndexFunc(r.occupants, func(e room.Occupant) bool {
		return e.JID == q.Occupant && (q.Session == 0 || e.Session == q.Session)
	})
	var o room.Occupant
	if i >= 0 {
		o = r.occupants[i]
		r.occupants = slices.Delete(slices.Clone(r.occupants), i, i+1)
	}
	if q.Reason != room.LeftUnavailable || q.Origin.Internal() {
		if i >= 0 {
			r.hub.sink.Event(&room.OccupantLeft{EventHead: r.eventHead(&q.Head), Occupant: o, Reason: q.Reason})
		}
		return
	}
	if err := r.load(); err != nil {
		r.loaded = false
		r.hub.fail(q, err)
		return
	}
	aff := room.AffOf(r.affs, q.Occupant.Bare())
	if !r.exists || aff == room.None {
		r.hub.fail(q, xmpp.NewError(xmpp.ItemNotFound, "you are not an occupant of this room"))
		return
	}
	if i < 0 {
		o = room.Occupant{JID: q.Occupant, Session: q.Session}
	}
	r.hub.sink.Event(&room.OccupantLeft{EventHead: r.eventHead(&q.Head), Occupant: o, Aff: aff, Reason: q.Reason})
}

// pruneOccupants drops the entries of users no longer affiliated; the
// event that removed them still lists them, so they are told in XEP-0045
// form.
func (r *actor) pruneOccupants(affs []room.Aff) {
	if len(r.occupants) == 0 {
		return
	}
	keep := slices.DeleteFunc(slices.Clone(r.occupants), func(o room.Occupant) bool { return room.AffOf(affs, o.JID.Bare()) == room.None })
	if len(keep) == 0 {
		keep = nil
	}
	r.occupants = keep
}

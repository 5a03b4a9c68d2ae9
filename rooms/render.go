package rooms

import (
	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/muc"
	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// sink renders the core's replies and events for each recipient: a
// session that entered a room with XEP-0045 presence gets that room's
// events in XEP-0045 form (the event lists those sessions), every other
// session MUC Light's; in legacy mode everyone gets XEP-0045's. Groupchat
// is the same in both and is delivered as the core framed it.
type sink struct{ h *Hub }

// Reply implements roomhub.Sink.
func (s sink) Reply(rep room.Reply) {
	h, o := s.h, rep.Origin
	switch {
	case rep.Err != nil:
		h.out.Deliver(o.From, xmpp.ErrorFrame(o.Kind, o.ID, o.To, o.Echo, rep.Err.Stanza()))
	case rep.History != nil:
		for _, out := range mam.Render(rep, h.log, h.occupantID) {
			h.out.Deliver(o.From, out)
		}
	case o.Dialect == room.MUC:
		if out := muc.Reply(rep, h.conferenceInfo); out != nil {
			h.out.Deliver(o.From, out)
		}
	default:
		h.out.Deliver(o.From, muclight.Reply(rep))
	}
}

// Event implements roomhub.Sink.
func (s sink) Event(ev room.Event) {
	h := s.h
	switch ev := ev.(type) {
	case *room.Posted:
		out := ev.Outbound()
		for _, a := range ev.Audience {
			h.out.DeliverPaced(ev.Origin.From, a.User, out)
		}
	case *room.AffsChanged:
		h.forgetLeavers(ev.Room, ev.MUC, ev.New)
		h.affsChanged(ev)
	case *room.ConfigChanged:
		h.configChanged(ev)
	case *room.Destroyed:
		h.forgetLeavers(ev.Room, ev.MUC, nil)
		h.destroyed(ev)
	case *room.OccupantJoined:
		for _, out := range muc.Joined(ev, h.occupantID) {
			h.toOccupant(ev.Occupant, out)
		}
	case *room.OccupantLeft:
		h.entered.remove(ev.Occupant.JID, ev.Occupant.Session, ev.Room)
		if ev.Reason == room.LeftUnavailable {
			h.out.Deliver(ev.Origin.From, muc.Left(ev, h.occupantID))
		}
	}
}

// forgetLeavers drops from the session index the occupancies the event
// ended: those of users who are not in keep (the room's new list; nil when
// the room went). The room dropped them from its set already.
func (h *Hub) forgetLeavers(rm xmpp.JID, occupants []room.Occupant, keep []room.Aff) {
	for _, o := range occupants {
		if room.AffOf(keep, o.JID.Bare()) == room.None {
			h.entered.remove(o.JID, o.Session, rm)
		}
	}
}

// audience splits an event's recipients: for a user, its XEP-0045 sessions
// in the room, each named by full JID and bind epoch (a newer session with
// the same full JID has not entered).
type audience map[xmpp.JID][]xmpp.SessionRef

func audienceOf(muc []room.Occupant) audience {
	if len(muc) == 0 {
		return nil
	}
	a := make(audience, len(muc))
	for _, o := range muc {
		u := o.JID.Bare()
		a[u] = append(a[u], xmpp.SessionRef{JID: o.JID, Session: o.Session})
	}
	return a
}

// toOccupant delivers a XEP-0045 form to the session that entered, not to
// a newer one that took its resource since.
func (h *Hub) toOccupant(o room.Occupant, out *xmpp.Outbound) {
	h.toSession(xmpp.SessionRef{JID: o.JID, Session: o.Session}, out)
}

func (h *Hub) toSession(s xmpp.SessionRef, out *xmpp.Outbound) {
	if h.except != nil {
		h.except.DeliverSession(s, out)
		return
	}
	h.out.Deliver(s.JID, out)
}

// native delivers the MUC Light form to a user's sessions but its
// XEP-0045 ones; paced by cause when cause is set.
func (h *Hub) native(cause, user xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) {
	switch {
	case len(except) > 0 && h.except != nil && cause.IsZero():
		h.except.DeliverExcept(user, except, out)
	case len(except) > 0 && h.except != nil:
		h.except.DeliverPacedExcept(cause, user, except, out)
	case cause.IsZero():
		h.out.Deliver(user, out)
	default:
		h.out.DeliverPaced(cause, user, out)
	}
}

func (h *Hub) affsChanged(ev *room.AffsChanged) {
	changed := room.AffDiff(ev.Old, ev.New)
	mc := muc.NewAffsRender(ev, changed, h.occupantID)
	if h.opts.LegacyMode {
		if ev.Created {
			return // a join created the room: the joiner is told as it enters
		}
		for _, a := range ev.New {
			if room.AffOf(ev.Old, a.User) == room.None {
				h.out.Deliver(a.User, mc.Invitation())
				continue
			}
			for _, u := range mc.Stay() {
				h.out.Deliver(a.User, u)
			}
		}
		for _, a := range ev.Old {
			if room.AffOf(ev.New, a.User) == room.None {
				h.out.Deliver(a.User, mc.Left(a.User))
			}
		}
		return
	}
	if ev.Created {
		var joiner []xmpp.SessionRef
		if ev.Origin.Dialect == room.MUC {
			// A XEP-0045 join created it: that session is told as it enters.
			joiner = []xmpp.SessionRef{{JID: ev.Origin.From, Session: ev.Origin.Session}}
		}
		for _, a := range ev.New {
			if a.User == ev.Origin.From.Bare() {
				h.native(xmpp.JID{}, a.User, joiner, muclight.Created(ev, a))
			} else {
				h.out.Deliver(a.User, muclight.Created(ev, a))
			}
		}
		return
	}
	ml := muclight.NewAffsRender(ev, changed)
	aud := audienceOf(ev.MUC)
	for _, a := range ev.New {
		if room.AffOf(ev.Old, a.User) == room.None {
			h.out.Deliver(a.User, ml.Joined(a))
			if ev.Origin.Dialect == room.MUC {
				// Its inviter expects XEP-0045's mediated invitation.
				h.out.Deliver(a.User, mc.Invitation())
			}
			continue
		}
		h.native(xmpp.JID{}, a.User, aud[a.User], ml.Stay())
		for _, s := range aud[a.User] {
			for _, u := range mc.Stay() {
				h.toSession(s, u)
			}
		}
	}
	for _, a := range ev.Old {
		if room.AffOf(ev.New, a.User) == room.None {
			h.native(xmpp.JID{}, a.User, aud[a.User], ml.Left(a.User))
			for _, s := range aud[a.User] {
				h.toSession(s, mc.Left(a.User))
			}
		}
	}
}

func (h *Hub) configChanged(ev *room.ConfigChanged) {
	if h.opts.LegacyMode {
		outs := muc.ConfigChanged(ev)
		for _, a := range ev.Audience {
			for _, out := range outs {
				h.out.Deliver(a.User, out)
			}
		}
		return
	}
	out := muclight.ConfigChanged(ev)
	aud := audienceOf(ev.MUC)
	for _, a := range ev.Audience {
		h.native(ev.Origin.From, a.User, aud[a.User], out)
	}
	if len(ev.MUC) > 0 {
		outs := muc.ConfigChanged(ev)
		for _, o := range ev.MUC {
			for _, out := range outs {
				h.toOccupant(o, out)
			}
		}
	}
}

func (h *Hub) destroyed(ev *room.Destroyed) {
	if h.opts.LegacyMode {
		for _, a := range ev.Former {
			h.out.Deliver(a.User, muc.Destroyed(ev, a.User, h.occupantID))
		}
		return
	}
	aud := audienceOf(ev.MUC)
	for _, a := range ev.Former {
		h.native(xmpp.JID{}, a.User, aud[a.User], muclight.Destroyed(ev, a.User))
		for _, s := range aud[a.User] {
			h.toSession(s, muc.Destroyed(ev, a.User, h.occupantID))
		}
	}
}

package muc

import (
	"github.com/beevik/etree"

	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// Role is the XEP-0045 role an affiliation shows as.
func Role(a room.Affiliation) string {
	switch a {
	case room.Owner:
		return "moderator"
	case room.Member:
		return "participant"
	}
	return "none"
}

// OccupantIDs gives a user's XEP-0421 occupant id in a room, which every
// presence from the room carries (nil: none).
type OccupantIDs func(rm, user xmpp.JID) string

// presence is the presence of one occupant as XEP-0045 clients see it:
// from room/user-bare-JID, with affiliation, role, status codes and the
// occupant id.
func presence(ids OccupantIDs, rm, user xmpp.JID, aff room.Affiliation, typ string, codes ...string) *etree.Element {
	p := xmpp.NewStanzaElement(xmpp.KindPresence, typ, "", rm.WithResource(user.String()), xmpp.JID{})
	x := p.CreateElement("x")
	x.CreateAttr("xmlns", NSUser)
	it := x.CreateElement("item")
	it.CreateAttr("affiliation", string(aff))
	it.CreateAttr("role", Role(aff))
	it.CreateAttr("jid", user.String())
	for _, c := range codes {
		x.CreateElement("status").CreateAttr("code", c)
	}
	if ids != nil {
		o := p.CreateElement("occupant-id")
		o.CreateAttr("xmlns", "urn:xmpp:occupant-id:0")
		o.CreateAttr("id", ids(rm, user))
	}
	return p
}

// statusMessage is a groupchat message from the room carrying status codes.
func statusMessage(rm xmpp.JID, codes ...string) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", room.RandomHex(8), rm, xmpp.JID{})
	x := m.CreateElement("x")
	x.CreateAttr("xmlns", NSUser)
	for _, c := range codes {
		x.CreateElement("status").CreateAttr("code", c)
	}
	return m
}

// subjectMessage announces the subject, from room/changer (or the room).
func subjectMessage(from xmpp.JID, subject string) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", room.RandomHex(8), from, xmpp.JID{})
	muclight.TextElem(m, "subject", subject)
	return m
}

// Reply renders a successful reply in XEP-0045 form; nil when a message or
// presence asked (they get no result) or the answer is an event's.
func Reply(rep room.Reply, features func(name string, features ...string) *etree.Element) *xmpp.Outbound {
	o := rep.Origin
	if o.Kind != xmpp.KindIQ {
		return nil
	}
	var payload *etree.Element
	switch rep.Op {
	case "get_config":
		payload = configForm(rep)
	case "get_affs":
		payload = xmpp.Elem("query", NSAdmin)
		for _, a := range rep.Affs {
			it := payload.CreateElement("item")
			it.CreateAttr("affiliation", string(a.Aff))
			it.CreateAttr("jid", a.User.String())
			it.CreateAttr("nick", a.User.String())
			it.CreateAttr("role", Role(a.Aff))
		}
	case "get_info":
		payload = features(rep.Name, RoomFeatures...)
	}
	res := xmpp.NewStanzaElement(xmpp.KindIQ, "result", o.ID, o.To, xmpp.JID{})
	if payload != nil {
		res.AddChild(payload)
	}
	return xmpp.NewOutbound(res)
}

// RoomFeatures are a room's XEP-0045 disco#info features.
var RoomFeatures = []string{NS, "muc_persistent", "muc_membersonly", "muc_nonanonymous", "muc_unsecured"}

// configForm is the muc#owner configuration form.
func configForm(rep room.Reply) *etree.Element {
	q := xmpp.Elem("query", NSOwner)
	x := q.CreateElement("x")
	x.CreateAttr("xmlns", xmpp.NSDataForm)
	x.CreateAttr("type", "form")
	muclight.TextElem(x, "title", "Configuration of "+rep.Room.String())
	ft := x.CreateElement("field")
	ft.CreateAttr("var", "FORM_TYPE")
	ft.CreateAttr("type", "hidden")
	muclight.TextElem(ft, "value", nsRoomConfg)
	for _, f := range rep.Config {
		fe := x.CreateElement("field")
		fe.CreateAttr("var", formVarOf(f.Name))
		fe.CreateAttr("type", "text-single")
		fe.CreateAttr("label", f.Name)
		muclight.TextElem(fe, "value", f.Value)
	}
	return q
}

// Joined is what an entering session is told, in order: the other
// occupants' presences (MUC Light rooms have no presence, so every
// affiliated user shows as present), its own presence with 110 (210 when
// its nick was replaced by its bare JID, 201 when it created the room),
// then the subject.
func Joined(ev *room.OccupantJoined, ids OccupantIDs) []*xmpp.Outbound {
	user := ev.Occupant.JID.Bare()
	out := make([]*xmpp.Outbound, 0, len(ev.Affs)+1)
	for _, a := range ev.Affs {
		if a.User != user {
			out = append(out, xmpp.NewOutbound(presence(ids, ev.Room, a.User, a.Aff, "")))
		}
	}
	codes := []string{"110"}
	if ev.Occupant.Nick != "" && ev.Occupant.Nick != user.String() {
		codes = append(codes, "210")
	}
	if ev.Created {
		codes = append(codes, "201")
		// A room created by a join has nothing else to tell yet.
		return append(out, xmpp.NewOutbound(presence(ids, ev.Room, user, ev.Aff, "", codes...)))
	}
	out = append(out, xmpp.NewOutbound(presence(ids, ev.Room, user, ev.Aff, "", codes...)))
	return append(out, xmpp.NewOutbound(subjectMessage(ev.Room, ev.Subject)))
}

// Left is the leaving session's own unavailable presence.
func Left(ev *room.OccupantLeft, ids OccupantIDs) *xmpp.Outbound {
	return xmpp.NewOutbound(presence(ids, ev.Room, ev.Occupant.JID.Bare(), ev.Aff, "unavailable", "110"))
}

// Destroyed is a former occupant's own unavailable presence with <destroy/>.
func Destroyed(ev *room.Destroyed, user xmpp.JID, ids OccupantIDs) *xmpp.Outbound {
	p := presence(ids, ev.Room, user, room.None, "unavailable")
	xmpp.Child(p, "x", NSUser).CreateElement("destroy")
	return xmpp.NewOutbound(p)
}

// ConfigChanged is a configuration change for occupants: status 104 when
// anything but the subject changed, the subject message (from room/changer)
// when it did.
func ConfigChanged(ev *room.ConfigChanged) []*xmpp.Outbound {
	var out []*xmpp.Outbound
	other, subject := false, -1
	for i, f := range ev.Changed {
		if f.Name == "subject" {
			subject = i
		} else {
			other = true
		}
	}
	if other {
		out = append(out, xmpp.NewOutbound(statusMessage(ev.Room, "104")))
	}
	if subject >= 0 {
		from := ev.Room
		if !ev.By.IsZero() {
			from = ev.Room.WithResource(ev.By.String())
		}
		out = append(out, xmpp.NewOutbound(subjectMessage(from, ev.Changed[subject].Value)))
	}
	return out
}

// AffsRender renders an affiliation change the XEP-0045 way: occupants who
// stay see a presence per changed user (unavailable with 321 for those
// removed); newcomers get a mediated invitation; removed users their own
// unavailable presence with 321 and 110.
type AffsRender struct {
	ev      *room.AffsChanged
	changed []room.AffItem
	updates []*xmpp.Outbound
	ids     OccupantIDs
}

// NewAffsRender prepares the XEP-0045 form of ev; changed is the change
// list.
func NewAffsRender(ev *room.AffsChanged, changed []room.AffItem, ids OccupantIDs) *AffsRender {
	return &AffsRender{ev: ev, changed: changed, ids: ids}
}

// Stay are the presences of the changed users.
func (r *AffsRender) Stay() []*xmpp.Outbound {
	if r.updates == nil {
		r.updates = make([]*xmpp.Outbound, 0, len(r.changed))
		for _, c := range r.changed {
			if c.Aff == room.None {
				r.updates = append(r.updates, xmpp.NewOutbound(presence(r.ids, r.ev.Room, c.User, room.None, "unavailable", "321")))
			} else {
				r.updates = append(r.updates, xmpp.NewOutbound(presence(r.ids, r.ev.Room, c.User, c.Aff, "")))
			}
		}
	}
	return r.updates
}

// Invitation is a newcomer's mediated invitation from whoever changed the
// room.
func (r *AffsRender) Invitation() *xmpp.Outbound {
	inv := xmpp.NewStanzaElement(xmpp.KindMessage, "", room.RandomHex(8), r.ev.Room, xmpp.JID{})
	x := inv.CreateElement("x")
	x.CreateAttr("xmlns", NSUser)
	x.CreateElement("invite").CreateAttr("from", r.ev.By.String())
	return xmpp.NewOutbound(inv)
}

// Left is a removed user's own unavailable presence.
func (r *AffsRender) Left(user xmpp.JID) *xmpp.Outbound {
	return xmpp.NewOutbound(presence(r.ids, r.ev.Room, user, room.None, "unavailable", "321", "110"))
}

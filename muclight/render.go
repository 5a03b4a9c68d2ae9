package muclight

import (
	"github.com/beevik/etree"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// NSSID is XEP-0359's namespace.
const NSSID = "urn:xmpp:sid:0"

// notification builds the groupchat message that carries a room event: from
// the room's bare JID, with the request's id, the payload elements, and the
// empty <body/> that lets archives keep it.
func notification(rm xmpp.JID, id string, payload ...*etree.Element) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", id, rm, xmpp.JID{})
	for _, p := range payload {
		m.AddChild(p)
	}
	m.CreateElement("body")
	return m
}

// affsPayload is <x xmlns='#affiliations'> with optional versions.
func affsPayload(prev, version string, items []room.AffItem) *etree.Element {
	x := xmpp.Elem("x", NSAffiliations)
	if prev != "" {
		TextElem(x, "prev-version", prev)
	}
	if version != "" {
		TextElem(x, "version", version)
	}
	addUsers(x, items)
	return x
}

// withStanzaID adds the room's XEP-0359 stanza-id to a message (nothing
// when id is empty) and returns it.
func withStanzaID(m *etree.Element, rm xmpp.JID, id string) *etree.Element {
	if id != "" {
		sid := m.CreateElement("stanza-id")
		sid.CreateAttr("xmlns", NSSID)
		sid.CreateAttr("by", rm.String())
		sid.CreateAttr("id", id)
	}
	return m
}

// Notices is the room core's NoticeForm: room events are archived in the
// form MUC Light occupants receive them, without prev-version.
type Notices struct{}

// AffsNotice implements room.NoticeForm.
func (Notices) AffsNotice(rm xmpp.JID, id, version string, items []room.AffItem, archiveID string) []byte {
	return xmpp.Marshal(withStanzaID(notification(rm, id, affsPayload("", version, items)), rm, archiveID))
}

// Reply renders a successful reply (rep.Err nil): the iq result and the
// address it comes from.
func Reply(rep room.Reply) *xmpp.Outbound {
	o := rep.Origin
	from := rep.Room
	var payload *etree.Element
	switch rep.Op {
	case "create":
		if rep.Generated {
			from = o.To
		}
	case "get_config", "get_affs", "get_info":
		from = o.To
		if rep.Unchanged {
			break
		}
		ns := map[string]string{"get_config": NSConfiguration, "get_affs": NSAffiliations, "get_info": NSInfo}[rep.Op]
		payload = xmpp.Elem("query", ns)
		TextElem(payload, "version", rep.Version)
		switch rep.Op {
		case "get_config":
			addFields(payload, rep.Config)
		case "get_affs":
			addUsers(payload, rep.Affs)
		default:
			addFields(payload.CreateElement("configuration"), rep.Config)
			addUsers(payload.CreateElement("occupants"), rep.Affs)
		}
	case "ping", "accept_defaults":
		from = o.To
	}
	res := xmpp.NewStanzaElement(xmpp.KindIQ, "result", o.ID, from, xmpp.JID{})
	if payload != nil {
		res.AddChild(payload)
	}
	return xmpp.NewOutbound(res)
}

// Created is what each occupant of a new room is told: its own affiliation
// and the version.
func Created(ev *room.AffsChanged, a room.Aff) *xmpp.Outbound {
	return xmpp.NewOutbound(withStanzaID(notification(ev.Room, ev.Origin.ID,
		affsPayload("", ev.Version, []room.AffItem{{User: a.User, Aff: a.Aff}})), ev.Room, ev.NoticeID))
}

// AffsRender renders an affiliation change for its three kinds of
// recipient, memoising the one stanza all who stay share.
type AffsRender struct {
	ev      *room.AffsChanged
	changed []room.AffItem
	stay    *xmpp.Outbound
}

// NewAffsRender prepares the notifications of ev; changed is the change
// list (room.AffDiff of the old and new lists).
func NewAffsRender(ev *room.AffsChanged, changed []room.AffItem) *AffsRender {
	return &AffsRender{ev: ev, changed: changed}
}

// Stay is the full change list with both versions, for those who stay.
func (r *AffsRender) Stay() *xmpp.Outbound {
	if r.stay == nil {
		ev := r.ev
		r.stay = xmpp.NewOutbound(withStanzaID(notification(ev.Room, ev.Origin.ID,
			affsPayload(ev.PrevVersion, ev.Version, r.changed)), ev.Room, ev.NoticeID))
	}
	return r.stay
}

// Joined is a newcomer's own item with the version.
func (r *AffsRender) Joined(a room.Aff) *xmpp.Outbound { return Created(r.ev, a) }

// Left is a leaver's own none, without version.
func (r *AffsRender) Left(user xmpp.JID) *xmpp.Outbound {
	return xmpp.NewOutbound(notification(r.ev.Room, r.ev.Origin.ID,
		affsPayload("", "", []room.AffItem{{User: user, Aff: room.None}})))
}

// ConfigChanged is the configuration notification every occupant gets.
func ConfigChanged(ev *room.ConfigChanged) *xmpp.Outbound {
	x := xmpp.Elem("x", NSConfiguration)
	TextElem(x, "prev-version", ev.PrevVersion)
	TextElem(x, "version", ev.Version)
	addFields(x, ev.Changed)
	return xmpp.NewOutbound(notification(ev.Room, ev.Origin.ID, x))
}

// Destroyed is a former occupant's destroy notice.
func Destroyed(ev *room.Destroyed, user xmpp.JID) *xmpp.Outbound {
	return xmpp.NewOutbound(notification(ev.Room, ev.Origin.ID, xmpp.Elem("x", NSDestroy),
		affsPayload("", "", []room.AffItem{{User: user, Aff: room.None}})))
}

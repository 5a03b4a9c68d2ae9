package rooms

import (
	"context"
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// XEP-0045 namespaces spoken in legacy mode.
const (
	NSMUC       = "http://jabber.org/protocol/muc"
	NSMUCUser   = NSMUC + "#user"
	NSMUCOwner  = NSMUC + "#owner"
	NSMUCAdmin  = NSMUC + "#admin"
	NSPrivacy   = "jabber:iq:privacy"
	nsRoomConfg = NSMUC + "#roomconfig"
)

// legacyFormVar maps schema field names to the muc#roomconfig form fields
// XEP-0045 clients know; other fields keep their own names.
var legacyFormVar = map[string]string{
	"roomname": "muc#roomconfig_roomname",
	"subject":  "muc#roomconfig_subject",
}

func formVarOf(field string) string {
	if v, ok := legacyFormVar[field]; ok {
		return v
	}
	return field
}

func fieldOfFormVar(v string) string {
	for f, fv := range legacyFormVar {
		if fv == v {
			return f
		}
	}
	return v
}

// DiscoNode is the node the server's disco#items announces the service
// with: MUC Light's namespace, or XEP-0045's in legacy mode.
func (h *Hub) DiscoNode() string {
	if h.opts.LegacyMode {
		return NSMUC
	}
	return NS
}

// handleLegacy serves the XEP-0045 subset of section 8.1 of the MUC Light
// protocol: the same rooms, store and limiter, spoken as MUC.
func (h *Hub) handleLegacy(ctx context.Context, st *xmpp.Stanza) {
	if st.Type == "error" || (st.Kind == xmpp.KindIQ && st.Type == "result") {
		return
	}
	isRoom := st.To.Local != ""
	switch st.Kind {
	case xmpp.KindPresence:
		h.legacyPresence(ctx, st, isRoom)
	case xmpp.KindMessage:
		h.legacyMessage(ctx, st, isRoom)
	default:
		h.legacyIQ(ctx, st, isRoom)
	}
}

func (h *Hub) legacyPresence(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	if !isRoom {
		return // presence to the service itself means nothing
	}
	if st.To.Resource == "" {
		h.replyError(st, xmpp.NewError(xmpp.JIDMalformed, "join a room as room@service/nick"))
		return
	}
	room := st.To.Bare()
	switch st.Type {
	case "":
		h.dispatch(ctx, room, request{st: st, op: opJoin, legacy: true, nick: st.To.Resource})
	case "unavailable":
		h.dispatch(ctx, room, request{st: st, op: opLeave, legacy: true})
	}
}

func (h *Hub) legacyMessage(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	switch {
	case !isRoom:
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, ""))
	case st.To.Resource != "":
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "private messages are not supported"))
	case st.Type == "groupchat":
		subj := xmpp.Child(st.El, "subject", xmpp.NSClient)
		if subj != nil && xmpp.Child(st.El, "body", xmpp.NSClient) == nil {
			h.dispatch(ctx, st.To, request{st: st, op: opSetConfig, legacy: true, fields: []configField{{Name: "subject", Value: subj.Text()}}})
			return
		}
		h.dispatch(ctx, st.To, request{st: st, op: opGroupchat, legacy: true})
	default:
		// A mediated invitation is how XEP-0045 clients add members.
		x := xmpp.Child(st.El, "x", NSMUCUser)
		var items []AffItem
		for _, inv := range xmpp.Children(x, "invite", NSMUCUser) {
			u, err := parseUserJID(xmpp.Attr(inv, "to"))
			if err != nil {
				h.replyError(st, err)
				return
			}
			items = append(items, AffItem{User: u, Aff: Member})
		}
		if len(items) == 0 {
			h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, ""))
			return
		}
		h.dispatch(ctx, st.To, request{st: st, op: opSetAffs, legacy: true, items: items})
	}
}

func (h *Hub) legacyIQ(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	notImplemented := func() { h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "")) }
	if st.To.Domain == "" || h.services[st.To.Domain] == "" {
		// An iq to the user's own account: the privacy-list form of blocking.
		h.legacyPrivacy(ctx, st, payload)
		return
	}
	switch {
	case ns == xmpp.NSPing && isRoom:
		h.dispatch(ctx, st.To.Bare(), request{st: st, op: opPing, legacy: true})
	case st.To.Resource != "":
		notImplemented()
	case payload.Tag == "query" && ns == xmpp.NSDiscoInfo && st.Type == "get":
		if !isRoom {
			h.reply(st, h.legacyServiceInfo())
			return
		}
		h.dispatch(ctx, st.To, request{st: st, op: opGetInfo, legacy: true})
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get":
		if isRoom {
			h.reply(st, xmpp.Elem("query", xmpp.NSDiscoItems)) // occupants are not listed
			return
		}
		h.discoItems(ctx, st, payload)
	case payload.Tag == "query" && (ns == NSMAM2 || ns == NSMAM1) && h.archive != nil && isRoom:
		h.mamRequest(ctx, st, payload)
	case payload.Tag == "query" && ns == NSMUCOwner && isRoom:
		h.legacyOwner(ctx, st, payload)
	case payload.Tag == "query" && ns == NSMUCAdmin && isRoom:
		h.legacyAdmin(ctx, st, payload)
	default:
		notImplemented()
	}
}

func (h *Hub) legacyServiceInfo() *etree.Element {
	return h.conferenceInfo("MUC Light (legacy)", NSMUC)
}

// legacyOwner maps muc#owner: the configuration form, and destroy.
func (h *Hub) legacyOwner(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	if st.Type == "get" {
		h.dispatch(ctx, st.To, request{st: st, op: opGetConfig, legacy: true})
		return
	}
	if xmpp.Child(q, "destroy", NSMUCOwner) != nil {
		h.dispatch(ctx, st.To, request{st: st, op: opDestroy, legacy: true})
		return
	}
	x := xmpp.Child(q, "x", xmpp.NSDataForm)
	if x == nil {
		h.replyError(st, badRequest("expected a data form or <destroy/>"))
		return
	}
	switch xmpp.Attr(x, "type") {
	case "cancel":
		h.reply(st, nil)
		return
	case "submit":
	default:
		h.replyError(st, badRequest("the configuration form must be submitted"))
		return
	}
	var fields []configField
	for _, f := range xmpp.Children(x, "field", xmpp.NSDataForm) {
		v := xmpp.Attr(f, "var")
		if v == "FORM_TYPE" {
			continue
		}
		var vals []string
		for _, val := range xmpp.Children(f, "value", xmpp.NSDataForm) {
			vals = append(vals, val.Text())
		}
		fields = append(fields, configField{Name: fieldOfFormVar(v), Value: strings.Join(vals, "\n")})
	}
	if len(fields) == 0 { // an instant room: accept the defaults
		h.dispatch(ctx, st.To, request{st: st, op: opPing, legacy: true})
		return
	}
	h.dispatch(ctx, st.To, request{st: st, op: opSetConfig, legacy: true, fields: fields})
}

// legacyAdmin maps muc#admin: affiliation lists and changes. Role changes
// (kick, voice) have no meaning without presence and are not implemented.
func (h *Hub) legacyAdmin(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	items := xmpp.Children(q, "item", NSMUCAdmin)
	if len(items) == 0 {
		h.replyError(st, badRequest("expected <item/>"))
		return
	}
	if st.Type == "get" {
		aff := Affiliation(xmpp.Attr(items[0], "affiliation"))
		if aff != Owner && aff != Member {
			h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only owner and member lists exist"))
			return
		}
		h.dispatch(ctx, st.To, request{st: st, op: opGetAffs, legacy: true, nick: string(aff)})
		return
	}
	var changes []AffItem
	for _, it := range items {
		if xmpp.Attr(it, "role") != "" && xmpp.Attr(it, "affiliation") == "" {
			h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "roles do not exist in MUC Light rooms"))
			return
		}
		aff := Affiliation(xmpp.Attr(it, "affiliation"))
		if aff != Owner && aff != Member && aff != None {
			h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only owner, member and none exist"))
			return
		}
		u, err := parseUserJID(xmpp.Attr(it, "jid"))
		if err != nil {
			h.replyError(st, err)
			return
		}
		changes = append(changes, AffItem{User: u, Aff: aff})
	}
	h.dispatch(ctx, st.To, request{st: st, op: opSetAffs, legacy: true, items: changes})
}

// legacyPrivacy maps blocking onto the privacy list named after MUC Light's
// namespace: a room is an item whose value is the room JID, a user one whose
// value is service/user-bare-JID.
func (h *Hub) legacyPrivacy(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	user := st.From.Bare()
	svc := h.opts.ServiceDomain(user.Domain)
	lists := xmpp.Children(q, "list", NSPrivacy)
	if !h.opts.Blocking || len(lists) != 1 || xmpp.Attr(lists[0], "name") != NS {
		if st.Type == "get" && len(lists) == 0 && len(q.ChildElements()) == 0 {
			res := xmpp.Elem("query", NSPrivacy)
			if h.opts.Blocking {
				res.CreateElement("list").CreateAttr("name", NS)
			}
			h.reply(st, res)
			return
		}
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only the "+NS+" list exists"))
		return
	}
	if st.Type == "get" {
		items, err := h.store.GetBlocking(ctx, user)
		if err != nil {
			h.replyError(st, err)
			return
		}
		res := xmpp.Elem("query", NSPrivacy)
		l := res.CreateElement("list")
		l.CreateAttr("name", NS)
		for _, it := range items {
			v := it.JID.String()
			if it.Kind == BlockUser {
				v = svc + "/" + v
			}
			e := l.CreateElement("item")
			e.CreateAttr("type", "jid")
			e.CreateAttr("value", v)
			e.CreateAttr("action", "deny")
			e.CreateAttr("order", "1")
		}
		h.reply(st, res)
		return
	}
	var deny, allow []BlockItem
	for _, it := range xmpp.Children(lists[0], "item", NSPrivacy) {
		j, err := xmpp.ParseJID(xmpp.Attr(it, "value"))
		var bi BlockItem
		switch {
		case err != nil || xmpp.Attr(it, "type") != "jid":
			h.replyError(st, badRequest("items are of type jid"))
			return
		case j.Domain == svc && j.Local == "" && j.Resource != "":
			u, err := parseUserJID(j.Resource)
			if err != nil {
				h.replyError(st, err)
				return
			}
			bi = BlockItem{Kind: BlockUser, JID: u}
		case j.Local != "" && j.Resource == "":
			bi = BlockItem{Kind: BlockRoom, JID: j}
		default:
			h.replyError(st, badRequest("value is a room JID or service/user-JID"))
			return
		}
		switch xmpp.Attr(it, "action") {
		case "deny":
			deny = append(deny, bi)
		case "allow":
			allow = append(allow, bi)
		default:
			h.replyError(st, badRequest("action is deny or allow"))
			return
		}
	}
	if err := h.store.SetBlocking(ctx, user, deny, allow); err != nil {
		h.replyError(st, err)
		return
	}
	h.reply(st, nil)
}

// mucRole is the XEP-0045 role an affiliation shows as.
func mucRole(a Affiliation) string {
	switch a {
	case Owner:
		return "moderator"
	case Member:
		return "participant"
	}
	return "none"
}

// occupantPresence is the presence of one occupant as XEP-0045 clients see
// it: from room/user-bare-JID, with affiliation, role and status codes.
func occupantPresence(room, user xmpp.JID, aff Affiliation, typ string, codes ...string) *etree.Element {
	p := xmpp.NewStanzaElement(xmpp.KindPresence, typ, "", room.WithResource(user.String()), xmpp.JID{})
	x := p.CreateElement("x")
	x.CreateAttr("xmlns", NSMUCUser)
	it := x.CreateElement("item")
	it.CreateAttr("affiliation", string(aff))
	it.CreateAttr("role", mucRole(aff))
	it.CreateAttr("jid", user.String())
	for _, c := range codes {
		x.CreateElement("status").CreateAttr("code", c)
	}
	return p
}

// statusMessage is a groupchat message from the room carrying status codes.
func statusMessage(room xmpp.JID, codes ...string) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", randomHex(8), room, xmpp.JID{})
	x := m.CreateElement("x")
	x.CreateAttr("xmlns", NSMUCUser)
	for _, c := range codes {
		x.CreateElement("status").CreateAttr("code", c)
	}
	return m
}

// subjectMessage announces the subject, from room/changer (or the room).
func subjectMessage(from xmpp.JID, subject string) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", randomHex(8), from, xmpp.JID{})
	textElem(m, "subject", subject)
	return m
}

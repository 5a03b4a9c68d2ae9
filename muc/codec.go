package muc

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// XEP-0045 namespaces.
const (
	NS          = "http://jabber.org/protocol/muc"
	NSUser      = NS + "#user"
	NSOwner     = NS + "#owner"
	NSAdmin     = NS + "#admin"
	nsRoomConfg = NS + "#roomconfig"
)

// formVars maps schema field names to the muc#roomconfig form fields
// XEP-0045 clients know; other fields keep their own names.
var formVars = map[string]string{
	"roomname": "muc#roomconfig_roomname",
	"subject":  "muc#roomconfig_subject",
}

func formVarOf(field string) string {
	if v, ok := formVars[field]; ok {
		return v
	}
	return field
}

func fieldOfFormVar(v string) string {
	for f, fv := range formVars {
		if fv == v {
			return f
		}
	}
	return v
}

func head(st *xmpp.Stanza) room.Head {
	return room.Head{Room: st.To.Bare(), Origin: room.OriginOf(st, room.MUC)}
}

func notImplemented(text string) error { return xmpp.NewError(xmpp.FeatureNotImplemented, text) }

// DecodePresence reads a presence to room/nick: a join when available, a
// leave when unavailable; nil for other types.
func DecodePresence(st *xmpp.Stanza) (room.Request, error) {
	if st.To.Resource == "" {
		return nil, xmpp.NewError(xmpp.JIDMalformed, "join a room as room@service/nick")
	}
	switch st.Type {
	case "":
		return &room.Join{Head: head(st), Nick: st.To.Resource}, nil
	case "unavailable":
		return &room.Leave{Head: head(st), Occupant: st.From, Session: st.Session, Reason: room.LeftUnavailable}, nil
	}
	return nil, nil
}

// IsSubjectChange reports whether a groupchat message sets the subject: a
// <subject/> and no <body/>.
func IsSubjectChange(st *xmpp.Stanza) bool {
	return xmpp.Child(st.El, "subject", xmpp.NSClient) != nil && xmpp.Child(st.El, "body", xmpp.NSClient) == nil
}

// DecodeSubject reads a subject change.
func DecodeSubject(st *xmpp.Stanza) room.Request {
	subj := xmpp.Child(st.El, "subject", xmpp.NSClient)
	return &room.SetConfig{Head: head(st), Fields: []room.Field{{Name: "subject", Value: subj.Text()}}}
}

// IsInvitation reports whether a message carries mediated invitations.
func IsInvitation(st *xmpp.Stanza) bool {
	x := xmpp.Child(st.El, "x", NSUser)
	return x != nil && xmpp.Child(x, "invite", NSUser) != nil
}

// DecodeInvitation reads mediated invitations: how XEP-0045 clients add
// members.
func DecodeInvitation(st *xmpp.Stanza) (room.Request, error) {
	x := xmpp.Child(st.El, "x", NSUser)
	var items []room.AffItem
	for _, inv := range xmpp.Children(x, "invite", NSUser) {
		u, err := muclight.ParseUserJID(xmpp.Attr(inv, "to"))
		if err != nil {
			return nil, err
		}
		items = append(items, room.AffItem{User: u, Aff: room.Member})
	}
	if len(items) == 0 {
		return nil, notImplemented("")
	}
	return &room.ChangeAffs{Head: head(st), Items: items}, nil
}

// DecodePing reads a XEP-0199 ping of the room.
func DecodePing(st *xmpp.Stanza) room.Request { return &room.Ping{Head: head(st)} }

// DecodeInfo reads a disco#info get of a room.
func DecodeInfo(st *xmpp.Stanza) room.Request { return &room.GetInfo{Head: head(st)} }

// DecodeOwner reads muc#owner: the configuration form, its submission,
// instant-room acceptance and destroy. A cancelled form is answered at once
// (answered true, nil request).
func DecodeOwner(st *xmpp.Stanza, q *etree.Element) (req room.Request, answered bool, err error) {
	if st.Type == "get" {
		return &room.GetConfig{Head: head(st)}, false, nil
	}
	if xmpp.Child(q, "destroy", NSOwner) != nil {
		return &room.Destroy{Head: head(st)}, false, nil
	}
	x := xmpp.Child(q, "x", xmpp.NSDataForm)
	if x == nil {
		return nil, false, muclight.BadRequest("expected a data form or <destroy/>")
	}
	switch xmpp.Attr(x, "type") {
	case "cancel":
		return nil, true, nil
	case "submit":
	default:
		return nil, false, muclight.BadRequest("the configuration form must be submitted")
	}
	var fields []room.Field
	for _, f := range xmpp.Children(x, "field", xmpp.NSDataForm) {
		v := xmpp.Attr(f, "var")
		if v == "FORM_TYPE" {
			continue
		}
		var vals []string
		for _, val := range xmpp.Children(f, "value", xmpp.NSDataForm) {
			vals = append(vals, val.Text())
		}
		fields = append(fields, room.Field{Name: fieldOfFormVar(v), Value: strings.Join(vals, "\n")})
	}
	if len(fields) == 0 { // an instant room: accept the defaults
		return &room.AcceptDefaults{Head: head(st)}, false, nil
	}
	return &room.SetConfig{Head: head(st), Fields: fields}, false, nil
}

// DecodeAdmin reads muc#admin: affiliation lists and changes. Role changes
// (kick, voice) have no meaning without presence and are not implemented.
func DecodeAdmin(st *xmpp.Stanza, q *etree.Element) (room.Request, error) {
	items := xmpp.Children(q, "item", NSAdmin)
	if len(items) == 0 {
		return nil, muclight.BadRequest("expected <item/>")
	}
	if st.Type == "get" {
		aff := room.Affiliation(xmpp.Attr(items[0], "affiliation"))
		if aff != room.Owner && aff != room.Member {
			return nil, notImplemented("only owner and member lists exist")
		}
		return &room.GetAffs{Head: head(st), List: aff}, nil
	}
	var changes []room.AffItem
	for _, it := range items {
		if xmpp.Attr(it, "role") != "" && xmpp.Attr(it, "affiliation") == "" {
			return nil, notImplemented("roles do not exist in MUC Light rooms")
		}
		aff := room.Affiliation(xmpp.Attr(it, "affiliation"))
		if aff != room.Owner && aff != room.Member && aff != room.None {
			return nil, notImplemented("only owner, member and none exist")
		}
		u, err := muclight.ParseUserJID(xmpp.Attr(it, "jid"))
		if err != nil {
			return nil, err
		}
		changes = append(changes, room.AffItem{User: u, Aff: aff})
	}
	return &room.ChangeAffs{Head: head(st), Items: changes}, nil
}

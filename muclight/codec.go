package muclight

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// MUC Light namespaces.
const (
	NS              = "urn:xmpp:muclight:0"
	NSCreate        = NS + "#create"
	NSDestroy       = NS + "#destroy"
	NSConfiguration = NS + "#configuration"
	NSAffiliations  = NS + "#affiliations"
	NSInfo          = NS + "#info"
	NSBlocking      = NS + "#blocking"
)

// BadRequest is a bad-request refusal with a text.
func BadRequest(text string) error { return xmpp.NewError(xmpp.BadRequest, text) }

// IsRoomRequest reports whether ns is one of the per-room request
// namespaces (configuration, affiliations, info, destroy).
func IsRoomRequest(ns string) bool {
	return ns == NSConfiguration || ns == NSAffiliations || ns == NSInfo || ns == NSDestroy
}

// ElementChildren returns the child elements, refusing non-whitespace text
// between them.
func ElementChildren(e *etree.Element) ([]*etree.Element, error) {
	var out []*etree.Element
	for _, t := range e.Child {
		switch t := t.(type) {
		case *etree.Element:
			out = append(out, t)
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, BadRequest("unexpected text in <" + e.Tag + "/>")
			}
		}
	}
	return out, nil
}

// parseFields reads configuration fields: each child element is a field
// named by its tag with its text as value. An empty element sets the empty
// string (so a subject can be cleared).
func parseFields(e *etree.Element) ([]room.Field, error) {
	kids, err := ElementChildren(e)
	if err != nil {
		return nil, err
	}
	out := make([]room.Field, 0, len(kids))
	for _, k := range kids {
		if len(k.ChildElements()) > 0 {
			return nil, BadRequest("configuration field <" + k.Tag + "/> must hold text only")
		}
		out = append(out, room.Field{Name: k.Tag, Value: k.Text()})
	}
	return out, nil
}

// parseUsers reads <user affiliation='..'>jid</user> items.
func parseUsers(e *etree.Element) ([]room.AffItem, error) {
	kids, err := ElementChildren(e)
	if err != nil {
		return nil, err
	}
	out := make([]room.AffItem, 0, len(kids))
	for _, k := range kids {
		if k.Tag != "user" || len(k.ChildElements()) > 0 {
			return nil, BadRequest("expected <user affiliation='...'>JID</user>")
		}
		aff := room.Affiliation(xmpp.Attr(k, "affiliation"))
		if aff != room.Owner && aff != room.Member && aff != room.None {
			return nil, BadRequest("affiliation must be owner, member or none")
		}
		u, err := ParseUserJID(k.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, room.AffItem{User: u, Aff: aff})
	}
	return out, nil
}

// ParseUserJID reads a user's JID from item text: bare (a resource is
// dropped), with a local part.
func ParseUserJID(s string) (xmpp.JID, error) {
	u, err := xmpp.ParseJID(strings.TrimSpace(s))
	if err != nil || u.Local == "" {
		return xmpp.JID{}, BadRequest("not a user JID: " + s)
	}
	return u.Bare(), nil
}

// TextElem creates <name>text</name> in the parent's namespace.
func TextElem(parent *etree.Element, name, text string) *etree.Element {
	e := parent.CreateElement(name)
	if text != "" {
		e.SetText(text)
	}
	return e
}

func addFields(parent *etree.Element, fields []room.Field) {
	for _, f := range fields {
		TextElem(parent, f.Name, f.Value)
	}
}

func addUsers(parent *etree.Element, items []room.AffItem) {
	for _, it := range items {
		u := TextElem(parent, "user", it.User.String())
		u.CreateAttr("affiliation", string(it.Aff))
	}
}

// versionOf returns the text of a request's <version/>, if any.
func versionOf(q *etree.Element) string {
	if v := xmpp.Child(q, "version", q.NamespaceURI()); v != nil {
		return v.Text()
	}
	return ""
}

// DecodeCreate reads a #create query for the room (a generated name when
// generated).
func DecodeCreate(st *xmpp.Stanza, q *etree.Element, rm xmpp.JID, generated bool) (room.Request, error) {
	req := &room.Create{Head: room.Head{Room: rm, Origin: room.OriginOf(st, room.MUCLight)}, Generated: generated}
	var err error
	if c := xmpp.Child(q, "configuration", NSCreate); c != nil {
		if req.Fields, err = parseFields(c); err != nil {
			return nil, err
		}
	}
	if o := xmpp.Child(q, "occupants", NSCreate); o != nil {
		if req.Items, err = parseUsers(o); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// DecodeRoomRequest reads a per-room request (the namespaces of
// IsRoomRequest) of an iq of type get or set.
func DecodeRoomRequest(st *xmpp.Stanza, q *etree.Element) (room.Request, error) {
	hd := room.Head{Room: st.To, Origin: room.OriginOf(st, room.MUCLight)}
	get := st.Type == "get"
	var err error
	switch ns := q.NamespaceURI(); {
	case ns == NSConfiguration && get:
		return &room.GetConfig{Head: hd, Version: versionOf(q)}, nil
	case ns == NSConfiguration:
		req := &room.SetConfig{Head: hd}
		req.Fields, err = parseFields(q)
		return req, err
	case ns == NSAffiliations && get:
		return &room.GetAffs{Head: hd, Version: versionOf(q)}, nil
	case ns == NSAffiliations:
		req := &room.ChangeAffs{Head: hd}
		req.Items, err = parseUsers(q)
		return req, err
	case ns == NSInfo && get:
		return &room.GetInfo{Head: hd, Version: versionOf(q)}, nil
	case ns == NSDestroy && !get:
		return &room.Destroy{Head: hd}, nil
	}
	return nil, BadRequest("this request is not defined for iq type " + st.Type)
}

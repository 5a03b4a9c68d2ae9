package rooms

import (
	"strings"

	"github.com/beevik/etree"

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

var errBadRequest = xmpp.NewError(xmpp.BadRequest, "")

func badRequest(text string) error { return xmpp.NewError(xmpp.BadRequest, text) }

// elementChildren returns the child elements, refusing non-whitespace text
// between them.
func elementChildren(e *etree.Element) ([]*etree.Element, error) {
	var out []*etree.Element
	for _, t := range e.Child {
		switch t := t.(type) {
		case *etree.Element:
			out = append(out, t)
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, badRequest("unexpected text in <" + e.Tag + "/>")
			}
		}
	}
	return out, nil
}

// parseFields reads configuration fields: each child element is a field
// named by its tag with its text as value. An empty element sets the empty
// string (so a subject can be cleared).
func parseFields(e *etree.Element) ([]configField, error) {
	kids, err := elementChildren(e)
	if err != nil {
		return nil, err
	}
	out := make([]configField, 0, len(kids))
	for _, k := range kids {
		if len(k.ChildElements()) > 0 {
			return nil, badRequest("configuration field <" + k.Tag + "/> must hold text only")
		}
		out = append(out, configField{Name: k.Tag, Value: k.Text()})
	}
	return out, nil
}

// parseUsers reads <user affiliation='..'>jid</user> items.
func parseUsers(e *etree.Element) ([]AffItem, error) {
	kids, err := elementChildren(e)
	if err != nil {
		return nil, err
	}
	out := make([]AffItem, 0, len(kids))
	for _, k := range kids {
		if k.Tag != "user" || len(k.ChildElements()) > 0 {
			return nil, badRequest("expected <user affiliation='...'>JID</user>")
		}
		aff := Affiliation(xmpp.Attr(k, "affiliation"))
		if aff != Owner && aff != Member && aff != None {
			return nil, badRequest("affiliation must be owner, member or none")
		}
		u, err := parseUserJID(k.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, AffItem{User: u, Aff: aff})
	}
	return out, nil
}

// parseUserJID reads a user's JID from item text: bare (a resource is
// dropped), with a local part.
func parseUserJID(s string) (xmpp.JID, error) {
	u, err := xmpp.ParseJID(strings.TrimSpace(s))
	if err != nil || u.Local == "" {
		return xmpp.JID{}, badRequest("not a user JID: " + s)
	}
	return u.Bare(), nil
}

// textElem creates <name>text</name> in the parent's namespace.
func textElem(parent *etree.Element, name, text string) *etree.Element {
	e := parent.CreateElement(name)
	if text != "" {
		e.SetText(text)
	}
	return e
}

func addFields(parent *etree.Element, fields []configField) {
	for _, f := range fields {
		textElem(parent, f.Name, f.Value)
	}
}

func addUsers(parent *etree.Element, items []AffItem) {
	for _, it := range items {
		u := textElem(parent, "user", it.User.String())
		u.CreateAttr("affiliation", string(it.Aff))
	}
}

func usersOf(list []Aff) []AffItem {
	out := make([]AffItem, len(list))
	for i, a := range list {
		out[i] = AffItem{User: a.User, Aff: a.Aff}
	}
	return out
}

// notification builds the groupchat message that carries a room event: from
// the room's bare JID, with the request's id, the payload elements, and the
// empty <body/> that lets archives keep it.
func notification(room xmpp.JID, id string, payload ...*etree.Element) *etree.Element {
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", id, room, xmpp.JID{})
	for _, p := range payload {
		m.AddChild(p)
	}
	m.CreateElement("body")
	return m
}

// affsPayload is <x xmlns='#affiliations'> with optional versions.
func affsPayload(prev, version string, items []AffItem) *etree.Element {
	x := xmpp.Elem("x", NSAffiliations)
	if prev != "" {
		textElem(x, "prev-version", prev)
	}
	if version != "" {
		textElem(x, "version", version)
	}
	addUsers(x, items)
	return x
}

// versionOf returns the text of a request's <version/>, if any.
func versionOf(q *etree.Element) string {
	if v := xmpp.Child(q, "version", q.NamespaceURI()); v != nil {
		return v.Text()
	}
	return ""
}

// parseCreate reads a #create query: optional configuration and occupants.
func parseCreate(q *etree.Element) (request, error) {
	var req request
	var err error
	if c := xmpp.Child(q, "configuration", NSCreate); c != nil {
		if req.fields, err = parseFields(c); err != nil {
			return req, err
		}
	}
	if o := xmpp.Child(q, "occupants", NSCreate); o != nil {
		if req.items, err = parseUsers(o); err != nil {
			return req, err
		}
	}
	return req, nil
}

// parseRoomRequest reads the payload of a room request for op.
func parseRoomRequest(q *etree.Element, o op) (request, error) {
	req := request{op: o}
	var err error
	switch o {
	case opGetConfig, opGetAffs, opGetInfo:
		req.version = versionOf(q)
	case opSetConfig:
		req.fields, err = parseFields(q)
	case opSetAffs:
		req.items, err = parseUsers(q)
	}
	return req, err
}

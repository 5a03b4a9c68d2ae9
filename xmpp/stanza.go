package xmpp

import (
	"github.com/beevik/etree"
)

// Stanza kinds: the local names of the three jabber:client stanzas.
const (
	KindMessage  = "message"
	KindPresence = "presence"
	KindIQ       = "iq"
)

// Stanza is a parsed message, presence or iq with its routing attributes
// lifted out of the element, so routing never re-reads attributes.
type Stanza struct {
	El   *etree.Element
	Kind string
	ID   string
	Type string
	From JID
	To   JID
	// Session is the bind epoch of the session that sent the stanza, set by
	// the endpoint when it routes it: a service tells two sessions with the
	// same full JID apart by it (a replaced resource gets a new one). Zero
	// for a stanza that no session sent.
	Session uint64
}

// IsStanzaElement reports whether e is a message, presence or iq in the
// client namespace (an element without a namespace counts, as RFC 7395
// clients often leave the default namespace implicit).
func IsStanzaElement(e *etree.Element) bool {
	switch e.Tag {
	case KindMessage, KindPresence, KindIQ:
	default:
		return false
	}
	ns := e.NamespaceURI()
	return e.Space == "" && (ns == NSClient || ns == "")
}

// NewStanza lifts the routing attributes of e. A malformed 'to' is a stanza
// error (jid-malformed) for the sender; a malformed 'from' is the caller's to
// judge, so it is returned as the second error.
func NewStanza(e *etree.Element) (st *Stanza, toErr, fromErr error) {
	st = &Stanza{El: e, Kind: e.Tag, ID: attrValue(e, "id"), Type: attrValue(e, "type")}
	var err error
	if st.To, err = ParseJID(attrValue(e, "to")); err != nil {
		toErr = NewError(JIDMalformed, "the 'to' address is not a valid JID")
	}
	if st.From, err = ParseJID(attrValue(e, "from")); err != nil {
		fromErr = err
	}
	return st, toErr, fromErr
}

// SetFrom sets the 'from' attribute in both the struct and the element.
func (s *Stanza) SetFrom(j JID) {
	s.From = j
	setAttr(s.El, "from", j.String())
}

// SetTo sets the 'to' attribute in both the struct and the element.
func (s *Stanza) SetTo(j JID) {
	s.To = j
	setAttr(s.El, "to", j.String())
}

// attrIndex finds e's unprefixed attribute key, -1 if it has none. etree's
// SelectAttr would also match a prefixed one (f:to for "to").
func attrIndex(e *etree.Element, key string) int {
	for i, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return i
		}
	}
	return -1
}

func attrValue(e *etree.Element, key string) string {
	if i := attrIndex(e, key); i >= 0 {
		return e.Attr[i].Value
	}
	return ""
}

// Attr returns the value of e's unprefixed attribute key, "" if it has none.
// Protocol code reads attributes with it because etree's SelectAttrValue("a")
// also returns a prefixed f:a that comes first: another attribute, in another
// namespace, that the sender chose.
func Attr(e *etree.Element, key string) string {
	if e == nil {
		return ""
	}
	return attrValue(e, key)
}

// LookupAttr is Attr that also says whether e has the unprefixed attribute,
// for protocol code whose default for an absent attribute differs from what
// it makes of an empty one (a stream header's version).
func LookupAttr(e *etree.Element, key string) (string, bool) {
	if e == nil {
		return "", false
	}
	if i := attrIndex(e, key); i >= 0 {
		return e.Attr[i].Value, true
	}
	return "", false
}

func setAttr(e *etree.Element, key, val string) {
	if val == "" {
		e.RemoveAttr(key)
		return
	}
	e.CreateAttr(key, val)
}

// NewStanzaElement creates a jabber:client stanza element with the common
// attributes set (empty ones are left out).
func NewStanzaElement(kind, typ, id string, from, to JID) *etree.Element {
	e := Elem(kind, NSClient)
	setAttr(e, "type", typ)
	setAttr(e, "id", id)
	setAttr(e, "from", from.String())
	setAttr(e, "to", to.String())
	return e
}

// ResultIQ builds the type='result' answer to an iq, addressed back to its
// sender; payload may be nil.
func ResultIQ(req *Stanza, payload *etree.Element) *etree.Element {
	e := NewStanzaElement(KindIQ, "result", req.ID, req.To, req.From)
	if payload != nil {
		e.AddChild(payload)
	}
	return e
}

// ErrorReply builds the type='error' answer to req (RFC 6120 §8.3.1): the
// addresses swapped, the id kept, the original children echoed (so a client
// can tell what failed, and resend a refused message body), then <error/>.
func ErrorReply(req *Stanza, se *StanzaError) *etree.Element {
	e := NewStanzaElement(req.Kind, "error", req.ID, req.To, req.From)
	// The echoed children may use prefixes that req declared.
	for _, a := range req.El.Attr {
		if a.Space == "xmlns" {
			e.CreateAttr(a.FullKey(), a.Value)
		}
	}
	for _, c := range req.El.ChildElements() {
		e.AddChild(c.Copy())
	}
	e.AddChild(se.Element())
	return e
}

// Outbound is a stanza serialised once and addressed many times: fan-out
// writes the same bytes to every recipient, only the 'to' attribute differs.
// It is immutable once built and safe to share between goroutines.
type Outbound struct {
	kind string // the element name, for metrics and routing rules
	head []byte // "<message"
	tail []byte // the rest: other attributes, children, end tag
}

// NewOutbound serialises e without its 'to' attribute (e itself is left as it
// was).
func NewOutbound(e *etree.Element) *Outbound {
	var b []byte
	if i := attrIndex(e, "to"); i >= 0 {
		saved := e.Attr
		e.Attr = append(saved[:i:i], saved[i+1:]...)
		b = Marshal(e)
		e.Attr = saved
	} else {
		b = Marshal(e)
	}
	n := 1 + len(e.FullTag())
	return &Outbound{kind: e.Tag, head: b[:n:n], tail: b[n:]}
}

// Kind is the element's local name (message, presence, iq).
func (o *Outbound) Kind() string { return o.kind }

// AppendTo appends the stanza addressed to 'to' (empty: no 'to' attribute).
func (o *Outbound) AppendTo(dst []byte, to string) []byte {
	dst = append(dst, o.head...)
	if to != "" {
		dst = append(dst, " to='"...)
		dst = appendAttrEscaped(dst, to)
		dst = append(dst, '\'')
	}
	return append(dst, o.tail...)
}

// Bytes returns the stanza addressed to 'to' in a new slice.
func (o *Outbound) Bytes(to string) []byte {
	return o.AppendTo(make([]byte, 0, len(o.head)+len(o.tail)+len(to)+6), to)
}

// Len is the serialised size without the 'to' attribute.
func (o *Outbound) Len() int { return len(o.head) + len(o.tail) }

func appendAttrEscaped(dst []byte, s string) []byte {
	// JIDs forbid <, >, & and ' in local parts, but resources may carry them.
	return appendEscaped(dst, s, true)
}

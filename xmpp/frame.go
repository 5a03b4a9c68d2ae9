package xmpp

import "github.com/beevik/etree"

// nsSID is XEP-0359's namespace: unique and stable stanza ids.
const nsSID = "urn:xmpp:sid:0"

// GroupchatFrame writes a groupchat message from a room without building a
// tree: payload is the message's children, already serialised and
// self-contained (as ParseElement leaves them), and sid, when set, the
// room's XEP-0359 stanza-id assigned by 'by'. It writes what serialising
// the equivalent element writes, so one frame serves the archive and every
// delivery.
func GroupchatFrame(id string, from JID, payload []byte, by JID, sid string) []byte {
	fromText := ""
	if !from.IsZero() {
		fromText = from.String()
	}
	byText := by.String()
	// The exact size unless an attribute needs escaping: a frame lives in
	// send queues and the archive queue, so slack would be held per copy.
	n := len("<message xmlns='jabber:client' type='groupchat'>") + len(payload) + len("</message>")
	if id != "" {
		n += len(" id=''") + len(id)
	}
	if fromText != "" {
		n += len(" from=''") + len(fromText)
	}
	if sid != "" {
		n += len("<stanza-id xmlns='"+nsSID+"' by='' id=''/>") + len(byText) + len(sid)
	}
	b := make([]byte, 0, n)
	b = append(b, "<message xmlns='jabber:client' type='groupchat'"...)
	if id != "" {
		b = append(b, " id='"...)
		b = appendEscaped(b, id, true)
		b = append(b, '\'')
	}
	if fromText != "" {
		b = append(b, " from='"...)
		b = appendEscaped(b, fromText, true)
		b = append(b, '\'')
	}
	if len(payload) == 0 && sid == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	if sid != "" {
		b = append(b, "<stanza-id xmlns='"+nsSID+"' by='"...)
		b = appendEscaped(b, byText, true)
		b = append(b, "' id='"...)
		b = appendEscaped(b, sid, true)
		b = append(b, "'/>"...)
	}
	return append(b, "</message>"...)
}

// OutboundBytes wraps an already serialised stanza without a 'to'
// attribute (such as a GroupchatFrame) for delivery; kind is its element
// name, which b must start with.
func OutboundBytes(kind string, b []byte) *Outbound {
	n := 1 + len(kind)
	return &Outbound{kind: kind, head: b[:n:n], tail: b[n:]}
}

// AppendChildren appends the serialisations of e's child elements: the
// self-contained payload of a parsed stanza (docs/05), ready for
// GroupchatFrame or an error bounce.
func AppendChildren(dst []byte, e *etree.Element) []byte {
	// Written into a pooled buffer first, so that dst grows at most once
	// and a new slice is exactly as long as the children.
	buf := bufPool.Get().(*[]byte)
	b := (*buf)[:0]
	for _, c := range e.ChildElements() {
		b = appendXML(b, c)
	}
	if dst == nil && len(b) > 0 {
		dst = make([]byte, 0, len(b))
	}
	dst = append(dst, b...)
	*buf = b
	if cap(b) <= 64<<10 {
		bufPool.Put(buf)
	}
	return dst
}

// ErrorFrame is the type='error' answer to a stanza of the given kind and
// id, from 'from', echoing its children (echo, as AppendChildren wrote
// them) before <error/> (RFC 6120 §8.3.1); it is addressed on delivery.
func ErrorFrame(kind, id string, from JID, echo []byte, se *StanzaError) *Outbound {
	b := make([]byte, 0, 96+len(echo))
	b = append(b, '<')
	b = append(b, kind...)
	b = append(b, " xmlns='jabber:client' type='error'"...)
	if id != "" {
		b = append(b, " id='"...)
		b = appendEscaped(b, id, true)
		b = append(b, '\'')
	}
	if !from.IsZero() {
		b = append(b, " from='"...)
		b = appendEscaped(b, from.String(), true)
		b = append(b, '\'')
	}
	b = append(b, '>')
	b = append(b, echo...)
	b = AppendElement(b, se.Element())
	b = append(b, "</"...)
	b = append(b, kind...)
	b = append(b, '>')
	return OutboundBytes(kind, b)
}

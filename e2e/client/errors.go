package client

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// StreamError is a <stream:error/> the server sent, returned by Open and
// wrapped in the end-of-stream error, so tests can assert on the condition
// (RFC 6120 §4.9.3) the server chose.
type StreamError struct {
	Condition string
	Text      string
}

// Error describes the stream error for test failure messages.
func (e *StreamError) Error() string { return describe("client: stream error ", e.Condition, e.Text) }

// StanzaError is an <error/> inside a stanza of type 'error', returned by IQ
// and Bind so tests can assert on the type and condition (RFC 6120 §8.3).
// Element is the whole stanza, for tests that look further (echoed payload).
type StanzaError struct {
	Type      string
	Condition string
	Text      string
	Element   *etree.Element
}

// Error describes the stanza error for test failure messages.
func (e *StanzaError) Error() string {
	return describe("client: stanza error ", e.Type+"/"+e.Condition, e.Text)
}

// AuthError is a SASL <failure/> (RFC 6120 §6.5), so tests can tell a wrong
// password (not-authorized) from other refusals.
type AuthError struct {
	Condition string
	Text      string
}

// Error describes the SASL failure for test failure messages.
func (e *AuthError) Error() string { return describe("client: SASL failure ", e.Condition, e.Text) }

// describe renders "what condition: text", leaving out an empty text.
func describe(what, condition, text string) string {
	if text != "" {
		return what + condition + ": " + text
	}
	return what + condition
}

// ParseError stands in the receive queue for a message that was not one
// well-formed element (or was binary), so tests of the server's output see
// the raw bytes instead of the stream silently going on.
type ParseError struct {
	Raw    []byte
	Binary bool
	Err    error
}

// Error describes the unparseable message for test failure messages.
func (e *ParseError) Error() string {
	raw := e.Raw
	if len(raw) > 200 {
		raw = raw[:200]
	}
	return fmt.Sprintf("client: unparseable message from server: %v: %q", e.Err, raw)
}

// Unwrap gives errors.Is and errors.As access to the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrorOf parses the <error/> child of a stanza of type 'error'; it returns
// nil if el has none. Tests use it on stanzas they got from Next or Expect.
func ErrorOf(el *etree.Element) *StanzaError {
	if el == nil {
		return nil
	}
	var errEl *etree.Element
	for _, c := range el.ChildElements() {
		if ns := c.NamespaceURI(); c.Tag == "error" && (ns == xmpp.NSClient || ns == "") {
			errEl = c
			break
		}
	}
	if errEl == nil {
		return nil
	}
	cond, text := condition(errEl, xmpp.NSStanzas)
	return &StanzaError{
		Type:      errEl.SelectAttrValue("type", ""),
		Condition: cond,
		Text:      text,
		Element:   el,
	}
}

// StreamErrorOf parses el if it is a <stream:error/>, and returns nil
// otherwise.
func StreamErrorOf(el *etree.Element) *StreamError {
	if !xmpp.Is(el, "error", xmpp.NSStream) {
		return nil
	}
	cond, text := condition(el, xmpp.NSStreams)
	return &StreamError{Condition: cond, Text: text}
}

// authErrorOf parses a SASL <failure/>.
func authErrorOf(el *etree.Element) *AuthError {
	cond, text := condition(el, xmpp.NSSASL)
	return &AuthError{Condition: cond, Text: text}
}

// condition finds the defined-condition element and the optional <text/> of
// an error element whose children live in namespace ns.
func condition(el *etree.Element, ns string) (cond, text string) {
	for _, c := range el.ChildElements() {
		if c.NamespaceURI() != ns {
			continue
		}
		if c.Tag == "text" {
			text = strings.TrimSpace(c.Text())
		} else if cond == "" {
			cond = c.Tag
		}
	}
	return cond, text
}

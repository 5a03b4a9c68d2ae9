package room

import (
	"fmt"

	"github.com/wschat/xmppws/xmpp"
)

// Error is a refusal as plain data: the stanza error's type, condition and
// text, which each codec renders in its own form.
type Error struct {
	Type      string `json:"type"`
	Condition string `json:"condition"`
	Text      string `json:"text,omitempty"`
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s (%s): %s", e.Condition, e.Type, e.Text) }

// Stanza is the error as a stanza error, for rendering.
func (e *Error) Stanza() *xmpp.StanzaError {
	return &xmpp.StanzaError{Type: xmpp.ErrorType(e.Type), Condition: xmpp.Condition(e.Condition), Text: e.Text}
}

// ErrorOf is a stanza error as plain data.
func ErrorOf(se *xmpp.StanzaError) *Error {
	return &Error{Type: string(se.Type), Condition: string(se.Condition), Text: se.Text}
}

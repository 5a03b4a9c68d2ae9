package room

import (
	"fmt"

	"github.com/wschat/xmppws/limits"
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

// errCreateRate refuses a create over create_rate.
var errCreateRate = &xmpp.StanzaError{Type: xmpp.Wait, Condition: xmpp.ResourceConstraint, Text: "you are creating rooms too fast, try again later"}

// errRoomCap refuses a create by a user who is at rooms_per_user.
var errRoomCap = badRequest("you are in as many rooms as rooms_per_user allows")

func badRequest(text string) error { return xmpp.NewError(xmpp.BadRequest, text) }

// refusalError is the stanza error a limiter refusal is answered with.
func refusalError(ref *limits.Refusal) error {
	typ := xmpp.Modify
	if ref.Wait {
		typ = xmpp.Wait
	}
	return &xmpp.StanzaError{Type: typ, Condition: xmpp.Condition(ref.Condition), Text: ref.Text}
}

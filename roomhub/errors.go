package roomhub

import (
	"github.com/wschat/xmppws/limits"
	"github.com/wschat/xmppws/xmpp"
)

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

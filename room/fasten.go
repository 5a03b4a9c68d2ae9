package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/wschat/xmppws/xmpp"
)

// Bounds on a user's reactions to one message (XEP-0444): the set lives
// in the message's archive record.
const (
	MaxReactions     = 20
	MaxReactionBytes = 32
)

// OccupantID is a user's XEP-0421 occupant id in a room: the first 16
// bytes of HMAC-SHA-256 over both bare JIDs keyed with the server secret,
// base64url. Stable per room and user on every node (the secret is the
// deployment's), different across users and rooms, and it does not reveal
// the JID.
func OccupantID(secret []byte, rm, user xmpp.JID) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("occupant-id\x00"))
	m.Write([]byte(rm.Bare().String()))
	m.Write([]byte{0})
	m.Write([]byte(user.Bare().String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

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
	return string(NewOccupantIDs(secret).Append(nil, rm, user))
}

// OccupantIDs makes occupant ids for one secret without allocating per id
// beyond the result: every groupchat message needs one.
type OccupantIDs struct{ pool sync.Pool }

type occupantMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewOccupantIDs keys the ids with secret.
func NewOccupantIDs(secret []byte) *OccupantIDs {
	o := &OccupantIDs{}
	o.pool.New = func() any { return &occupantMAC{h: hmac.New(sha256.New, secret), buf: make([]byte, 0, 128)} }
	return o
}

// Append appends user's occupant id in rm to dst (OccupantID's value).
func (o *OccupantIDs) Append(dst []byte, rm, user xmpp.JID) []byte {
	m := o.pool.Get().(*occupantMAC)
	m.h.Reset()
	b := append(m.buf[:0], "occupant-id\x00"...)
	b = appendBare(b, rm)
	b = append(b, 0)
	b = appendBare(b, user)
	m.h.Write(b)
	sum := m.h.Sum(m.sum[:0])
	dst = base64.RawURLEncoding.AppendEncode(dst, sum[:16])
	m.buf = b[:0]
	o.pool.Put(m)
	return dst
}

// ID is Append as a string.
func (o *OccupantIDs) ID(rm, user xmpp.JID) string { return string(o.Append(nil, rm, user)) }

// appendBare appends j's bare JID text (as j.Bare().String()).
func appendBare(b []byte, j xmpp.JID) []byte {
	if j.Local != "" {
		b = append(b, j.Local...)
		b = append(b, '@')
	}
	return append(b, j.Domain...)
}

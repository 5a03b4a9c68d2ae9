package account

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// Token is one XEP-0484 (FAST) token as the stores persist it. It never
// holds the token itself: Key is the SHA-256 of the token masked with a
// pad derived from the server secret (the endpoint computes both), which
// is all the HT mechanism needs to check a login, because the tokens are
// longer than the hash's block size and HMAC keys such a key with its hash.
type Token struct {
	// ID names the token for the admin commands; random, not secret.
	ID string `json:"id" bson:"id"`
	// Mechanism is the SASL mechanism the token was issued for; a login
	// with another one fails (XEP-0484 §3.4).
	Mechanism string `json:"mechanism" bson:"mechanism"`
	Key       []byte `json:"key" bson:"key"`
	// UserAgent is the SASL2 user-agent id of the client it was issued to;
	// Software and Device are that client's own description, for people.
	UserAgent string `json:"user_agent" bson:"user_agent"`
	Software  string `json:"software,omitempty" bson:"software,omitempty"`
	Device    string `json:"device,omitempty" bson:"device,omitempty"`
	// Epoch binds the token to the password record it was issued under
	// (RecordEpoch): a new password makes every older token fail, even one
	// a store could not delete.
	Epoch    []byte    `json:"epoch" bson:"epoch"`
	Created  time.Time `json:"created" bson:"created"`
	LastUsed time.Time `json:"last_used,omitzero" bson:"last_used,omitempty"`
	Expires  time.Time `json:"expires" bson:"expires"`
}

// TokenStore persists FAST tokens per account. Both backends implement it
// next to Store; SetAccount and DeleteAccount also drop the account's
// tokens (best effort: Epoch makes a left-over token useless anyway).
type TokenStore interface {
	// Tokens returns an account's tokens, oldest first (by Created, then
	// ID); none is not an error.
	Tokens(ctx context.Context, jid xmpp.JID) ([]Token, error)
	// AddToken stores t and then removes the oldest tokens beyond keep,
	// so one account never holds more than keep.
	AddToken(ctx context.Context, jid xmpp.JID, t Token, keep int) error
	// TouchToken sets a token's LastUsed, or fails with ErrNotFound.
	TouchToken(ctx context.Context, jid xmpp.JID, id string, used time.Time) error
	// DeleteTokens removes the named tokens, or every token of the
	// account when ids is empty, and reports how many it removed.
	DeleteTokens(ctx context.Context, jid xmpp.JID, ids ...string) (int, error)
}

// RecordEpoch identifies a password record: it changes whenever the
// password is set again (the salt is fresh each time).
func RecordEpoch(r Record) []byte {
	h := sha256.New()
	h.Write(r.Salt)
	h.Write(r.SHA256.StoredKey)
	return h.Sum(nil)[:16]
}

// Package account holds what the server knows about a user's password: SCRAM
// salted keys for SHA-1 and SHA-256, derived once when the password is set.
// The password itself is never stored, logged or returned.
//
// It is shared by the WebSocket endpoint (which verifies logins), the admin
// commands (which set passwords) and the stores (which persist records), and
// imports nothing of this module but the XMPP vocabulary.
package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/xmpp"
)

// Iterations is the PBKDF2 iteration count for new passwords: the SCRAM
// minimum that every client supports (RFC 7677 §4 recommends at least 4096).
const Iterations = 4096

// Mechanism names the SCRAM variants a Record holds keys for.
const (
	SCRAMSHA1   = "SCRAM-SHA-1"
	SCRAMSHA256 = "SCRAM-SHA-256"
)

// Keys are the server-side SCRAM values of RFC 5802 §3 for one hash.
type Keys struct {
	StoredKey []byte `json:"stored_key" bson:"stored_key"`
	ServerKey []byte `json:"server_key" bson:"server_key"`
}

// Record is one account as the stores persist it.
type Record struct {
	// JID is the account's bare JID, canonical.
	JID    string `json:"jid" bson:"_id"`
	Salt   []byte `json:"salt" bson:"salt"`
	Iters  int    `json:"iters" bson:"iters"`
	SHA1   Keys   `json:"sha1" bson:"sha1"`
	SHA256 Keys   `json:"sha256" bson:"sha256"`
}

// ErrNotFound is returned by a Store for an account that does not exist.
var ErrNotFound = errors.New("account: no such user")

// ErrExists is returned by Store.Create for an account that already exists.
var ErrExists = errors.New("account: user already exists")

// Store persists account records. Both backends implement it.
type Store interface {
	// Account returns the record of a bare JID, or ErrNotFound.
	Account(ctx context.Context, jid xmpp.JID) (Record, error)
	// CreateAccount stores a new record, or fails with ErrExists.
	CreateAccount(ctx context.Context, r Record) error
	// SetAccount replaces an existing record (new password), or ErrNotFound.
	SetAccount(ctx context.Context, r Record) error
	// DeleteAccount removes the record, or fails with ErrNotFound.
	DeleteAccount(ctx context.Context, jid xmpp.JID) error
	// Accounts lists the bare JIDs of a domain ("" for all), sorted.
	Accounts(ctx context.Context, domain string) ([]string, error)
	// ServerSecret returns the deployment's secret, creating it on first
	// use: SecretSize random bytes that every later call, after a restart
	// and on every node sharing the store, returns unchanged. It keys what
	// must look the same wherever and whenever it is asked, such as the
	// fake SCRAM salts of unknown users.
	ServerSecret(ctx context.Context) ([]byte, error)
}

// SecretSize is the length of the server secret in bytes.
const SecretSize = 32

// NewSecret returns fresh random bytes for a store's ServerSecret.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("account: server secret: %w", err)
	}
	return b, nil
}

// New derives a record for jid (a bare JID) from a password, with a fresh
// random salt.
func New(jid xmpp.JID, password string) (Record, error) {
	if jid.Local == "" || !jid.IsBare() {
		return Record{}, fmt.Errorf("account: %q is not a user's bare JID", jid)
	}
	if password == "" {
		return Record{}, errors.New("account: empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return Record{}, err
	}
	r := Record{JID: jid.String(), Salt: salt, Iters: Iterations}
	var err error
	if r.SHA1, err = derive(scram.SHA1, jid.Local, password, salt, Iterations); err != nil {
		return Record{}, err
	}
	if r.SHA256, err = derive(scram.SHA256, jid.Local, password, salt, Iterations); err != nil {
		return Record{}, err
	}
	return r, nil
}

func derive(h scram.HashGeneratorFcn, user, password string, salt []byte, iters int) (Keys, error) {
	c, err := h.NewClient(user, password, "")
	if err != nil {
		return Keys{}, fmt.Errorf("account: password rejected by SASLprep: %w", err)
	}
	sc := c.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: iters})
	return Keys{StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// Verify checks a plain-text password (SASL PLAIN) against the stored keys
// in constant time.
func (r Record) Verify(user, password string) bool {
	k, err := derive(scram.SHA256, user, password, r.Salt, r.Iters)
	if err != nil {
		return false
	}
	return hmac.Equal(k.StoredKey, r.SHA256.StoredKey)
}

// Stored returns the credentials a SCRAM server conversation needs for the
// given mechanism.
func (r Record) Stored(mech string) (scram.StoredCredentials, bool) {
	var k Keys
	switch mech {
	case SCRAMSHA1:
		k = r.SHA1
	case SCRAMSHA256:
		k = r.SHA256
	default:
		return scram.StoredCredentials{}, false
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(r.Salt), Iters: r.Iters},
		StoredKey:  k.StoredKey,
		ServerKey:  k.ServerKey,
	}, true
}

package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// bucketTokens holds FAST tokens under "bare JID NUL token id", so one
// account's tokens are one contiguous key range. It is created on first
// write, so stores written by older versions need no migration.
var bucketTokens = []byte("fast_tokens")

func tokenPrefix(jid xmpp.JID) []byte { return append([]byte(jid.Bare().String()), 0) }

// tokensIn reads an account's tokens in a transaction, oldest first.
func tokensIn(tx *bolt.Tx, jid xmpp.JID) ([]account.Token, error) {
	b := tx.Bucket(bucketTokens)
	if b == nil {
		return nil, nil
	}
	prefix := tokenPrefix(jid)
	var out []account.Token
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var t account.Token
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b account.Token) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, nil
}

// Tokens implements account.TokenStore.
func (s *Store) Tokens(ctx context.Context, jid xmpp.JID) ([]account.Token, error) {
	var out []account.Token
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = tokensIn(tx, jid)
		return err
	})
	return out, err
}

// AddToken implements account.TokenStore; the add and the eviction are one
// transaction.
func (s *Store) AddToken(ctx context.Context, jid xmpp.JID, t account.Token, keep int) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTokens)
		if err != nil {
			return err
		}
		prefix := tokenPrefix(jid)
		if err := putJSON(b, append(prefix, t.ID...), t); err != nil {
			return err
		}
		all, err := tokensIn(tx, jid)
		if err != nil {
			return err
		}
		for len(all) > max(keep, 1) {
			if err := b.Delete(append(tokenPrefix(jid), all[0].ID...)); err != nil {
				return err
			}
			all = all[1:]
		}
		return nil
	})
}

// TouchToken implements account.TokenStore.
func (s *Store) TouchToken(ctx context.Context, jid xmpp.JID, id string, used time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b == nil {
			return account.ErrNotFound
		}
		key := append(tokenPrefix(jid), id...)
		v := b.Get(key)
		if v == nil {
			return account.ErrNotFound
		}
		var t account.Token
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		t.LastUsed = used
		return putJSON(b, key, t)
	})
}

// DeleteTokens implements account.TokenStore.
func (s *Store) DeleteTokens(ctx context.Context, jid xmpp.JID, ids ...string) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = deleteTokensIn(tx, jid, ids)
		return err
	})
	return n, err
}

// deleteTokensIn removes the named tokens of an account (all when ids is
// empty) inside tx; SetAccount and DeleteAccount call it too, so a password
// change and the end of the old tokens are one transaction.
func deleteTokensIn(tx *bolt.Tx, jid xmpp.JID, ids []string) (int, error) {
	b := tx.Bucket(bucketTokens)
	if b == nil {
		return 0, nil
	}
	prefix := tokenPrefix(jid)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(ids) == 0 || slices.Contains(ids, string(k[len(prefix):])) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// dropTokens ends every FAST token of the account whose record a password
// change or a deletion is replacing in tx.
func dropTokens(tx *bolt.Tx, bare string) error {
	j, err := xmpp.ParseJID(bare)
	if err != nil {
		return nil // not a JID: it can have no tokens
	}
	_, err = deleteTokensIn(tx, j, nil)
	return err
}

package boltstore

import (
	"bytes"
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// Account implements account.Store.
func (s *Store) Account(ctx context.Context, jid xmpp.JID) (account.Record, error) {
	var r account.Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get([]byte(jid.Bare().String()))
		if v == nil {
			return account.ErrNotFound
		}
		return json.Unmarshal(v, &r)
	})
	return r, err
}

// CreateAccount implements account.Store.
func (s *Store) CreateAccount(ctx context.Context, r account.Record) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get([]byte(r.JID)) != nil {
			return account.ErrExists
		}
		return putJSON(b, []byte(r.JID), r)
	})
}

// SetAccount implements account.Store.
func (s *Store) SetAccount(ctx context.Context, r account.Record) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get([]byte(r.JID)) == nil {
			return account.ErrNotFound
		}
		if err := dropTokens(tx, r.JID); err != nil {
			return err
		}
		return putJSON(b, []byte(r.JID), r)
	})
}

// DeleteAccount implements account.Store.
func (s *Store) DeleteAccount(ctx context.Context, jid xmpp.JID) error {
	key := []byte(jid.Bare().String())
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get(key) == nil {
			return account.ErrNotFound
		}
		if err := dropTokens(tx, string(key)); err != nil {
			return err
		}
		return b.Delete(key)
	})
}

// Accounts implements account.Store. Keys are bare JIDs, so bbolt's byte
// order is already the sorted order.
func (s *Store) Accounts(ctx context.Context, domain string) ([]string, error) {
	var out []string
	suffix := []byte("@" + domain)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, _ []byte) error {
			if domain == "" || bytes.HasSuffix(k, suffix) {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

var (
	bucketMeta = []byte("meta")
	keySecret  = []byte("server_secret")
)

// ServerSecret implements account.Store. The bucket is created on first
// use, so stores written by older versions gain it without a migration.
func (s *Store) ServerSecret(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			out = bytes.Clone(b.Get(keySecret))
		}
		return nil
	})
	if err != nil || out != nil {
		return out, err
	}
	fresh, err := account.NewSecret()
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := b.Get(keySecret); v != nil { // another caller was first
			out = bytes.Clone(v)
			return nil
		}
		out = fresh
		return b.Put(keySecret, fresh)
	})
	return out, err
}

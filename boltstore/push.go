package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/xmpp"
)

// bucketPush holds each account's push registrations: key the bare JID,
// value the JSON list of pushstore.Record. It is created on the first
// enable, so a database that never had push has no bucket.
var bucketPush = []byte("push")

var _ pushstore.Store = (*Store)(nil)

func loadPush(tx *bolt.Tx, acct xmpp.JID) ([]pushstore.Registration, error) {
	b := tx.Bucket(bucketPush)
	if b == nil {
		return nil, nil
	}
	v := b.Get([]byte(acct.String()))
	if v == nil {
		return nil, nil
	}
	var recs []pushstore.Record
	if err := json.Unmarshal(v, &recs); err != nil {
		return nil, fmt.Errorf("boltstore: push registrations of %s: %w", acct, err)
	}
	regs, err := pushstore.FromRecords(acct, recs)
	if err != nil {
		return nil, fmt.Errorf("boltstore: push registrations of %s: %w", acct, err)
	}
	return regs, nil
}

func storePush(tx *bolt.Tx, acct xmpp.JID, regs []pushstore.Registration) error {
	b, err := tx.CreateBucketIfNotExists(bucketPush)
	if err != nil {
		return err
	}
	if len(regs) == 0 {
		return b.Delete([]byte(acct.String()))
	}
	return putJSON(b, []byte(acct.String()), pushstore.ToRecords(regs))
}

// EnablePush implements pushstore.Store: read, change and write in one
// transaction, so the cap holds against concurrent enables.
func (s *Store) EnablePush(ctx context.Context, r pushstore.Registration, max int) error {
	r.Account = r.Account.Bare()
	return s.update(ctx, func(tx *bolt.Tx) error {
		cur, err := loadPush(tx, r.Account)
		if err != nil {
			return err
		}
		next, err := pushstore.Apply(cur, r, max)
		if err != nil {
			return err
		}
		return storePush(tx, r.Account, next)
	})
}

// DisablePush implements pushstore.Store.
func (s *Store) DisablePush(ctx context.Context, account, jid xmpp.JID, node string) (int, error) {
	account = account.Bare()
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		cur, err := loadPush(tx, account)
		if err != nil || len(cur) == 0 {
			return err
		}
		var next []pushstore.Registration
		next, n = pushstore.Remove(cur, jid, node)
		if n == 0 {
			return nil
		}
		return storePush(tx, account, next)
	})
	return n, err
}

// PushRegistrations implements pushstore.Store: one read transaction.
func (s *Store) PushRegistrations(ctx context.Context, accounts []xmpp.JID) (map[xmpp.JID][]pushstore.Registration, error) {
	out := map[xmpp.JID][]pushstore.Registration{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		for _, a := range accounts {
			regs, err := loadPush(tx, a.Bare())
			if err != nil {
				return err
			}
			if len(regs) > 0 {
				out[a.Bare()] = regs
			}
		}
		return nil
	})
	return out, err
}

// DeletePushAccount implements pushstore.Store.
func (s *Store) DeletePushAccount(ctx context.Context, account xmpp.JID) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPush) == nil {
			return nil
		}
		return tx.Bucket(bucketPush).Delete([]byte(account.Bare().String()))
	})
}

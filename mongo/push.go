package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/xmpp"
)

// collPush holds one document per account with push registrations.
const collPush = "push_registrations"

var _ pushstore.Store = (*Store)(nil)

// pushDoc is one account's registrations: _id its bare JID, regs in the
// order first enabled, rev the counter conditional writes compare (the
// blocking list's scheme: one document, no index beyond _id).
type pushDoc struct {
	ID   string             `bson:"_id"`
	Regs []pushstore.Record `bson:"regs"`
	Rev  int64              `bson:"rev"`
}

func (s *Store) pushColl() *mongo.Collection { return s.rooms.Database().Collection(collPush) }

func (s *Store) loadPush(ctx context.Context, key string) (doc pushDoc, found bool, err error) {
	err = s.pushColl().FindOne(ctx, byID(key)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return pushDoc{}, false, nil
	}
	if err != nil {
		return pushDoc{}, false, fmt.Errorf("mongo: read push registrations of %s: %w", key, err)
	}
	return doc, true, nil
}

// changePush reads an account's list, applies f and writes the result back
// only if the document is still the one read, retrying otherwise; an
// emptied list deletes the document.
func (s *Store) changePush(ctx context.Context, account xmpp.JID, f func([]pushstore.Registration) ([]pushstore.Registration, bool, error)) error {
	account = account.Bare()
	key := account.String()
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	unlock, err := s.writers.lock(ctx, "push "+key)
	if err != nil {
		return err
	}
	defer unlock()
	coll := s.pushColl()
	for range maxTries {
		doc, found, err := s.loadPush(ctx, key)
		if err != nil {
			return err
		}
		cur, err := pushstore.FromRecords(account, doc.Regs)
		if err != nil {
			return fmt.Errorf("mongo: push registrations of %s: %w", key, err)
		}
		next, changed, err := f(cur)
		if err != nil || !changed {
			return err
		}
		cond := bson.D{{Key: "_id", Value: key}, {Key: "rev", Value: doc.Rev}}
		switch {
		case !found:
			_, err := coll.InsertOne(ctx, pushDoc{ID: key, Regs: pushstore.ToRecords(next), Rev: 1})
			if mongo.IsDuplicateKeyError(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("mongo: write push registrations of %s: %w", key, err)
			}
			return nil
		case len(next) == 0:
			res, err := coll.DeleteOne(ctx, cond)
			if err != nil {
				return fmt.Errorf("mongo: delete push registrations of %s: %w", key, err)
			}
			if res.DeletedCount > 0 {
				return nil
			}
		default:
			res, err := coll.UpdateOne(ctx, cond, bson.D{{Key: "$set", Value: bson.D{
				{Key: "regs", Value: pushstore.ToRecords(next)}, {Key: "rev", Value: doc.Rev + 1},
			}}})
			if err != nil {
				return fmt.Errorf("mongo: write push registrations of %s: %w", key, err)
			}
			if res.MatchedCount > 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("mongo: push registrations of %s after %d tries: %w", key, maxTries, errContention)
}

// EnablePush implements pushstore.Store.
func (s *Store) EnablePush(ctx context.Context, r pushstore.Registration, max int) error {
	r.Account = r.Account.Bare()
	return s.changePush(ctx, r.Account, func(cur []pushstore.Registration) ([]pushstore.Registration, bool, error) {
		next, err := pushstore.Apply(cur, r, max)
		return next, err == nil, err
	})
}

// DisablePush implements pushstore.Store.
func (s *Store) DisablePush(ctx context.Context, account, jid xmpp.JID, node string) (int, error) {
	n := 0
	err := s.changePush(ctx, account, func(cur []pushstore.Registration) ([]pushstore.Registration, bool, error) {
		var next []pushstore.Registration
		next, n = pushstore.Remove(cur, jid, node)
		return next, n > 0, nil
	})
	return n, err
}

// PushRegistrations implements pushstore.Store: one query by _id.
func (s *Store) PushRegistrations(ctx context.Context, accounts []xmpp.JID) (map[xmpp.JID][]pushstore.Registration, error) {
	out := map[xmpp.JID][]pushstore.Registration{}
	if len(accounts) == 0 {
		return out, nil
	}
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(accounts))
	for i, a := range accounts {
		keys[i] = a.Bare().String()
	}
	cur, err := s.pushColl().Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
	if err != nil {
		return nil, fmt.Errorf("mongo: read push registrations: %w", err)
	}
	var docs []pushDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read push registrations: %w", err)
	}
	for _, d := range docs {
		acct, err := xmpp.ParseJID(d.ID)
		if err != nil {
			return nil, fmt.Errorf("mongo: push registrations of %q: %w", d.ID, err)
		}
		regs, err := pushstore.FromRecords(acct, d.Regs)
		if err != nil {
			return nil, fmt.Errorf("mongo: push registrations of %s: %w", d.ID, err)
		}
		if len(regs) > 0 {
			out[acct] = regs
		}
	}
	return out, nil
}

// DeletePushAccount implements pushstore.Store.
func (s *Store) DeletePushAccount(ctx context.Context, account xmpp.JID) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	if _, err := s.pushColl().DeleteOne(ctx, byID(account.Bare().String())); err != nil {
		return fmt.Errorf("mongo: delete push registrations of %s: %w", account, err)
	}
	return nil
}

package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// blockingDoc is one user's blocking list: _id is their bare JID, domain
// theirs (RemoveDomain deletes by it), items sorted by kind then JID, and rev
// a counter that the conditional writes of SetBlocking compare.
type blockingDoc struct {
	ID     string                  `bson:"_id"`
	Domain string                  `bson:"domain"`
	Items  []roomstore.BlockRecord `bson:"items"`
	Rev    int64                   `bson:"rev"`
}

// GetBlocking implements roomstore.Store; items come sorted by kind, then JID.
func (s *Store) GetBlocking(ctx context.Context, user xmpp.JID) ([]roomstore.BlockItem, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	doc, _, err := s.loadBlocking(ctx, user.Bare().String())
	if err != nil {
		return nil, err
	}
	var out []roomstore.BlockItem
	for _, it := range doc.Items {
		j, err := parseJID(it.JID)
		if err != nil {
			return nil, fmt.Errorf("mongo: blocking list of %s: %w", doc.ID, err)
		}
		out = append(out, roomstore.BlockItem{Kind: it.Kind, JID: j})
	}
	return out, nil
}

// SetBlocking implements roomstore.Store. deny is applied before allow, so an
// item named in both ends up allowed; an emptied list is deleted. The list
// is read, changed and written back only if rev is still the one read (or,
// for a new list, only if nobody created one meanwhile), retrying otherwise.
func (s *Store) SetBlocking(ctx context.Context, user xmpp.JID, deny, allow []roomstore.BlockItem) error {
	user = user.Bare()
	key := user.String()
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	unlock, err := s.writers.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	for range maxTries {
		doc, found, err := s.loadBlocking(ctx, key)
		if err != nil {
			return err
		}
		next := roomstore.ApplyBlocking(doc.Items, deny, allow)
		cond := bson.D{{Key: "_id", Value: key}, {Key: "rev", Value: doc.Rev}}
		switch {
		case slices.Equal(doc.Items, next):
			return nil
		case !found:
			_, err := s.blocking.InsertOne(ctx, blockingDoc{ID: key, Domain: user.Domain, Items: next, Rev: 1})
			if mongo.IsDuplicateKeyError(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("mongo: write blocking list of %s: %w", key, err)
			}
			return nil
		case len(next) == 0:
			res, err := s.blocking.DeleteOne(ctx, cond)
			if err != nil {
				return fmt.Errorf("mongo: delete blocking list of %s: %w", key, err)
			}
			if res.DeletedCount > 0 {
				return nil
			}
		default:
			update := bson.D{{Key: "$set", Value: bson.D{
				{Key: "items", Value: next},
				{Key: "rev", Value: doc.Rev + 1},
			}}}
			res, err := s.blocking.UpdateOne(ctx, cond, update)
			if err != nil {
				return fmt.Errorf("mongo: write blocking list of %s: %w", key, err)
			}
			if res.MatchedCount > 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("mongo: blocking list of %s after %d tries: %w", key, maxTries, errContention)
}

// loadBlocking reads a user's list; found is false when they have none.
func (s *Store) loadBlocking(ctx context.Context, key string) (doc blockingDoc, found bool, err error) {
	err = s.blocking.FindOne(ctx, byID(key)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return blockingDoc{}, false, nil
	}
	if err != nil {
		return blockingDoc{}, false, fmt.Errorf("mongo: read blocking list of %s: %w", key, err)
	}
	return doc, true, nil
}

// deleteBlocking removes a user's list, if any.
func (s *Store) deleteBlocking(ctx context.Context, user xmpp.JID) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return fmt.Errorf("mongo: delete blocking list of %s: %w", user, err)
	}
	if _, err := s.blocking.DeleteOne(ctx, byID(user.String())); err != nil {
		return fmt.Errorf("mongo: delete blocking list of %s: %w", user, err)
	}
	return nil
}

package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// collTokens holds FAST tokens, one document each, with _id "bare JID/token
// id": a bare JID has no '/', so one account's tokens are the _id range
// [jid+"/", jid+"0") and every query uses the _id index.
const collTokens = "fast_tokens"

type tokenDoc struct {
	Key           string `bson:"_id"`
	account.Token `bson:",inline"`
}

func (s *Store) tokens() *mongo.Collection { return s.accounts.Database().Collection(collTokens) }

func tokenKey(jid xmpp.JID, id string) string { return jid.Bare().String() + "/" + id }

func tokenRange(jid xmpp.JID) bson.D {
	bare := jid.Bare().String()
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: bare + "/"}, {Key: "$lt", Value: bare + "0"}}}}
}

// Tokens implements account.TokenStore.
func (s *Store) Tokens(ctx context.Context, jid xmpp.JID) ([]account.Token, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	return s.tokensOf(ctx, jid)
}

func (s *Store) tokensOf(ctx context.Context, jid xmpp.JID) ([]account.Token, error) {
	opts := options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "id", Value: 1}})
	cur, err := s.tokens().Find(ctx, tokenRange(jid), opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: read tokens of %s: %w", jid.Bare(), err)
	}
	var docs []tokenDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read tokens of %s: %w", jid.Bare(), err)
	}
	var out []account.Token
	for _, d := range docs {
		d.Token.Created = d.Token.Created.UTC()
		d.Token.Expires = d.Token.Expires.UTC()
		if !d.Token.LastUsed.IsZero() {
			d.Token.LastUsed = d.Token.LastUsed.UTC()
		}
		out = append(out, d.Token)
	}
	return out, nil
}

// AddToken implements account.TokenStore. The insert and the eviction are
// two operations: two adds racing may both evict, which leaves fewer than
// keep, never more.
func (s *Store) AddToken(ctx context.Context, jid xmpp.JID, t account.Token, keep int) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	if _, err := s.tokens().InsertOne(ctx, tokenDoc{Key: tokenKey(jid, t.ID), Token: t}); err != nil {
		return fmt.Errorf("mongo: add token for %s: %w", jid.Bare(), err)
	}
	all, err := s.tokensOf(ctx, jid)
	if err != nil {
		return err
	}
	if extra := len(all) - max(keep, 1); extra > 0 {
		ids := make([]string, 0, extra)
		for _, old := range all[:extra] {
			ids = append(ids, tokenKey(jid, old.ID))
		}
		if _, err := s.tokens().DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
			return fmt.Errorf("mongo: evict tokens of %s: %w", jid.Bare(), err)
		}
	}
	return nil
}

// TouchToken implements account.TokenStore.
func (s *Store) TouchToken(ctx context.Context, jid xmpp.JID, id string, used time.Time) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	res, err := s.tokens().UpdateOne(ctx, bson.D{{Key: "_id", Value: tokenKey(jid, id)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_used", Value: used}}}})
	if err != nil {
		return fmt.Errorf("mongo: touch token of %s: %w", jid.Bare(), err)
	}
	if res.MatchedCount == 0 {
		return account.ErrNotFound
	}
	return nil
}

// DeleteTokens implements account.TokenStore.
func (s *Store) DeleteTokens(ctx context.Context, jid xmpp.JID, ids ...string) (int, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return 0, err
	}
	return s.deleteTokens(ctx, jid, ids)
}

func (s *Store) deleteTokens(ctx context.Context, jid xmpp.JID, ids []string) (int, error) {
	filter := tokenRange(jid)
	if len(ids) > 0 {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = tokenKey(jid, id)
		}
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}
	}
	res, err := s.tokens().DeleteMany(ctx, filter)
	if err != nil {
		return 0, fmt.Errorf("mongo: delete tokens of %s: %w", jid.Bare(), err)
	}
	return int(res.DeletedCount), nil
}

// dropTokens ends the tokens of an account whose record was just replaced
// or deleted. It is a second operation, so it can fail after the first
// succeeded; the tokens' Epoch already refuses them then, so the failure is
// not the caller's.
func (s *Store) dropTokens(ctx context.Context, bare string) {
	if j, err := xmpp.ParseJID(bare); err == nil {
		s.deleteTokens(ctx, j, nil)
	}
}

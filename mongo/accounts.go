package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// accountDoc is the stored form of an account: the record, keyed by its bare
// JID, and the JID's domain, which Accounts lists by.
type accountDoc struct {
	account.Record `bson:",inline"`
	Domain         string `bson:"domain"`
}

func newAccountDoc(r account.Record) (accountDoc, error) {
	j, err := xmpp.ParseJID(r.JID)
	if err != nil {
		return accountDoc{}, fmt.Errorf("mongo: account %q: %w", r.JID, err)
	}
	return accountDoc{Record: r, Domain: j.Domain}, nil
}

// Account implements account.Store.
func (s *Store) Account(ctx context.Context, jid xmpp.JID) (account.Record, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return account.Record{}, err
	}
	key := jid.Bare().String()
	var doc accountDoc
	err = s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return account.Record{}, account.ErrNotFound
	}
	if err != nil {
		return account.Record{}, fmt.Errorf("mongo: read account %s: %w", key, err)
	}
	return doc.Record, nil
}

// accountWrite prepares a write of r: its document and the operation's
// bounded context. cancel is always safe to call.
func (s *Store) accountWrite(ctx context.Context, r account.Record) (context.Context, context.CancelFunc, accountDoc, error) {
	doc, err := newAccountDoc(r)
	if err != nil {
		return ctx, func() {}, doc, err
	}
	ctx, cancel, err := s.op(ctx)
	return ctx, cancel, doc, err
}

// CreateAccount implements account.Store.
func (s *Store) CreateAccount(ctx context.Context, r account.Record) error {
	ctx, cancel, doc, err := s.accountWrite(ctx, r)
	defer cancel()
	if err != nil {
		return err
	}
	_, err = s.accounts.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return account.ErrExists
	}
	if err != nil {
		return fmt.Errorf("mongo: create account %s: %w", r.JID, err)
	}
	return nil
}

// SetAccount implements account.Store.
func (s *Store) SetAccount(ctx context.Context, r account.Record) error {
	ctx, cancel, doc, err := s.accountWrite(ctx, r)
	defer cancel()
	if err != nil {
		return err
	}
	res, err := s.accounts.ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.JID}}, doc)
	if err != nil {
		return fmt.Errorf("mongo: write account %s: %w", r.JID, err)
	}
	if res.MatchedCount == 0 {
		return account.ErrNotFound
	}
	s.dropTokens(ctx, r.JID)
	return nil
}

// DeleteAccount implements account.Store.
func (s *Store) DeleteAccount(ctx context.Context, jid xmpp.JID) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	key := jid.Bare().String()
	res, err := s.accounts.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	if err != nil {
		return fmt.Errorf("mongo: delete account %s: %w", key, err)
	}
	if res.DeletedCount == 0 {
		return account.ErrNotFound
	}
	s.dropTokens(ctx, key)
	return nil
}

// Accounts implements account.Store, sorted by bare JID.
func (s *Store) Accounts(ctx context.Context, domain string) ([]string, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	filter := bson.D{}
	if domain != "" {
		filter = bson.D{{Key: "domain", Value: domain}}
	}
	opts := options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}})
	cur, err := s.accounts.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: list accounts: %w", err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return nil, fmt.Errorf("mongo: list accounts: %w", err)
	}
	var out []string
	for _, d := range ids {
		out = append(out, d.ID)
	}
	return out, nil
}

// collMeta holds deployment-wide values such as the server secret; they stay
// out of the accounts collection so that Accounts never lists them.
const collMeta = "meta"

// ServerSecret implements account.Store. Two nodes starting at once both try
// to insert; the unique _id lets one win and both read the winner's value.
func (s *Store) ServerSecret(ctx context.Context) ([]byte, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	coll := s.accounts.Database().Collection(collMeta)
	filter := bson.D{{Key: "_id", Value: "server_secret"}}
	var doc struct {
		Secret []byte `bson:"secret"`
	}
	err = coll.FindOne(ctx, filter).Decode(&doc)
	if err == nil {
		return doc.Secret, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("mongo: read server secret: %w", err)
	}
	fresh, err := account.NewSecret()
	if err != nil {
		return nil, err
	}
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "server_secret"}, {Key: "secret", Value: fresh}})
	if err == nil {
		return fresh, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return nil, fmt.Errorf("mongo: create server secret: %w", err)
	}
	if err := coll.FindOne(ctx, filter).Decode(&doc); err != nil {
		return nil, fmt.Errorf("mongo: read server secret: %w", err)
	}
	return doc.Secret, nil
}

// Package mongo is the MongoDB storage backend: accounts, MUC Light rooms,
// blocking lists and per-user room counts in collections of one database,
// reached with the official driver. It runs against MongoDB and against
// FerretDB v1, which the tests use.
//
// Every change is made of single-document writes: FerretDB v1 has no
// multi-document transactions. A change that depends on what is stored (an
// affiliation list, a blocking list) reads the document and writes it back
// only if its version is still the one read, retrying otherwise, so that
// concurrent writers cannot lose an update. FerretDB v1 does not apply that
// condition atomically, so writers within one process are also serialised
// per document (keylock.go); across processes only a server with atomic
// single-document updates (MongoDB) keeps the guarantee. rooms_per_user is
// kept by a counter document per user taken before the room write and given
// back when that fails (roomcounts.go).
//
// The package persists and returns data; it never decides protocol questions.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/roomstore"
)

// Config is [storage.mongodb].
type Config struct {
	URI      string
	Database string
	// PoolSize caps the driver's connections per server; zero keeps the
	// driver's default.
	PoolSize uint64
	// ConnectTimeout bounds dialling a server; zero keeps the driver's
	// default.
	ConnectTimeout time.Duration
	// OpTimeout bounds each store operation whose context has no earlier
	// deadline; zero leaves operations bounded by their context alone.
	OpTimeout time.Duration
}

// The collections.
const (
	collAccounts = "accounts"
	collRooms    = "rooms"
	collBlocking = "blocking"
	collCounts   = "user_room_counts"
	collArchive  = "muc_light_archive"
	collReads    = "muc_light_reads"
)

// closeTimeout bounds Close, which has no context of its own.
const closeTimeout = 10 * time.Second

var (
	_ account.Store   = (*Store)(nil)
	_ roomstore.Store = (*Store)(nil)
)

// Store is an open connection to the database. It is safe for concurrent
// use.
type Store struct {
	client    *mongo.Client
	accounts  *mongo.Collection
	rooms     *mongo.Collection
	blocking  *mongo.Collection
	counts    *mongo.Collection
	archive   *mongo.Collection
	reads     *mongo.Collection
	opTimeout time.Duration
	// writers serialises this process's read-modify-write cycles per room
	// and per blocking list; see keylock.go for why the version condition
	// alone is not enough.
	writers *keyLocks
	// counters serialises this process's updates of one user_room_counts
	// document (roomcounts.go), for the same reason.
	counters *keyLocks
	// countsUsed says user_room_counts may hold documents, which writes must
	// then keep right even without a cap (roomcounts.go).
	countsUsed atomic.Bool
}

// Open connects to cfg.URI, checks that the server answers and creates the
// indexes the queries need (creating an existing index is a no-op).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		return nil, errors.New("mongo: no database name")
	}
	opts := options.Client().ApplyURI(cfg.URI)
	if cfg.PoolSize > 0 {
		opts.SetMaxPoolSize(cfg.PoolSize)
	}
	if cfg.ConnectTimeout > 0 {
		opts.SetConnectTimeout(cfg.ConnectTimeout)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	db := client.Database(cfg.Database)
	s := &Store{
		client:    client,
		accounts:  db.Collection(collAccounts),
		rooms:     db.Collection(collRooms),
		blocking:  db.Collection(collBlocking),
		counts:    db.Collection(collCounts),
		archive:   db.Collection(collArchive),
		reads:     db.Collection(collReads),
		opTimeout: cfg.OpTimeout,
		writers:   newKeyLocks(),
		counters:  newKeyLocks(),
	}
	if err := s.init(ctx); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		client.Disconnect(dctx)
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return fmt.Errorf("mongo: open: %w", err)
	}
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("mongo: ping: %w", err)
	}
	indexes := []struct {
		coll *mongo.Collection
		keys bson.D
	}{
		{s.accounts, bson.D{{Key: "domain", Value: 1}}},
		// GetUserRooms and RemoveUser look rooms up by occupant.
		{s.rooms, bson.D{{Key: "affiliations.jid", Value: 1}, {Key: "service", Value: 1}}},
		// RemoveDomain deletes by service.
		{s.rooms, bson.D{{Key: "service", Value: 1}}},
		{s.blocking, bson.D{{Key: "domain", Value: 1}}},
		{s.counts, bson.D{{Key: "service", Value: 1}}},
		// Archive queries and RemoveRoom select a room's id range (the
		// service leads, so RemoveDomain uses it too); RemoveBefore scans ids.
		{s.archive, bson.D{{Key: "service", Value: 1}, {Key: "room", Value: 1}, {Key: "id", Value: 1}}},
		{s.archive, bson.D{{Key: "id", Value: 1}}},
		// RemoveRoom and RemoveDomain delete a room's read markers.
		{s.reads, bson.D{{Key: "service", Value: 1}, {Key: "room", Value: 1}}},
	}
	for _, ix := range indexes {
		if _, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys}); err != nil {
			return fmt.Errorf("mongo: create index %v on %s: %w", ix.keys, ix.coll.Name(), err)
		}
	}
	err = s.counts.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(projID)).Err()
	switch {
	case err == nil:
		s.countsUsed.Store(true)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: read %s: %w", collCounts, err)
	}
	return nil
}

// Close disconnects from the server.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: disconnect: %w", err)
	}
	return nil
}

// op bounds one operation by OpTimeout (a parent deadline that comes first
// still wins) and fails it before anything is sent when ctx is already done,
// as the embedded store does: the driver may otherwise still send a write on
// a canceled context. cancel is never nil.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return ctx, func() {}, err
	}
	if s.opTimeout <= 0 {
		ctx, cancel := context.WithCancel(ctx)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, cancel, nil
}

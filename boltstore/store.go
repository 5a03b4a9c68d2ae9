// Package boltstore is the embedded storage backend: one bbolt file under the
// server's data directory, so the server runs with no database installed.
//
// bbolt allows one process to open the file at a time; while the server runs
// it holds the lock, and the admin commands reach the store through the
// server's admin socket instead of opening the file themselves.
//
// The package persists and returns data; it never decides protocol questions.
package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside the data directory.
const FileName = "xmppws.db"

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("boltstore: the database file is in use by another process (is the server running?)")

var bucketAccounts = []byte("accounts")

// Store is an open embedded database. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Options tune Open; the zero value is fine.
type Options struct {
	// LockTimeout bounds the wait for the file lock (default 1s), so a second
	// process fails fast instead of hanging.
	LockTimeout time.Duration
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// The freelist is rebuilt at open instead of written at every commit,
	// and kept as a map: with a large archive both make commits cheaper.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAccounts, bucketRooms, bucketUserRooms, bucketBlocking, bucketArchive, bucketReads} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: initialise %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and releases the file.
func (s *Store) Close() error { return s.db.Close() }

// view and update run fn in a transaction unless ctx is already done; bbolt
// transactions are short and cannot be interrupted midway.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// Package mongotest gives tests a real MongoDB wire server: the one named by
// MONGODB_URI when it is set, otherwise FerretDB v1 embedded in the test
// process (SQLite files in a temporary directory, listening on 127.0.0.1
// port 0). It is test support only; nothing in the server imports it.
package mongotest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// URI returns a MongoDB URI for the test, starting an embedded FerretDB
// (stopped at the end of the test) unless MONGODB_URI is set.
func URI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return uri
	}
	f := Start(t, t.TempDir(), "127.0.0.1:0")
	t.Cleanup(f.Stop)
	return f.URI()
}

// Ferret is an embedded FerretDB that a test can stop and start again on the
// same address and data, to play a database outage.
type Ferret struct {
	t      testing.TB
	dir    string
	addr   string
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs FerretDB with its SQLite data in dir, listening on addr.
func Start(t testing.TB, dir, addr string) *Ferret {
	t.Helper()
	f := &Ferret{t: t, dir: dir, addr: addr}
	f.start()
	return f
}

func (f *Ferret) start() {
	f.t.Helper()
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: f.addr},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + f.dir + "/",
	})
	if err != nil {
		f.t.Fatalf("ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		db.Run(ctx)
	}()
	// New has already bound the listener, so the server accepts
	// connections from here on. Pin the address so a restart listens where
	// clients already point.
	f.uri = db.MongoDBURI()
	if _, port, err := net.SplitHostPort(hostOf(f.uri)); err == nil {
		f.addr = "127.0.0.1:" + port
	}
}

func hostOf(uri string) string {
	const p = "mongodb://"
	h := uri[len(p):]
	for i := 0; i < len(h); i++ {
		if h[i] == '/' || h[i] == '?' {
			return h[:i]
		}
	}
	return h
}

// URI is the server's MongoDB URI.
func (f *Ferret) URI() string { return f.uri }

// Stop shuts the server down and waits for it; it may be called twice.
func (f *Ferret) Stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
	f.cancel = nil
}

// Restart starts the server again on the same address and data.
func (f *Ferret) Restart() {
	f.t.Helper()
	f.Stop()
	f.start()
}

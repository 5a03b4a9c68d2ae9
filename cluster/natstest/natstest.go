// Package natstest starts an embedded NATS server for tests and checks the
// cluster's central promise, that no room ever has two acting owners.
//
// Only tests import it: it must never be linked into the server binary
// (it carries the whole nats-server module).
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded nats-server with JetStream on, listening on a free
// loopback port, its store in the test's temporary directory.
type Server struct {
	ns *server.Server
}

// Start runs a server for t and shuts it down in t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return &Server{ns: ns}
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Connect opens a client connection, closed in t's cleanup.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

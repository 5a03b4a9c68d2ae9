package ws_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// benchServer serves an endpoint with the user alice (password pw-alice)
// over loopback against a fresh bolt store, for a benchmark: the server
// and its ws:// URL, both gone when b ends. tune, when not nil, changes the
// ws.Defaults() the server runs with.
func benchServer(b *testing.B, tune func(*ws.Config)) (*ws.Server, string) {
	b.Helper()
	st, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := account.New(xmpp.MustParseJID("alice@localhost"), "pw-alice")
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateAccount(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
	cfg := ws.Defaults()
	if tune != nil {
		tune(&cfg)
	}
	srv := ws.New(cfg, st, ws.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
		st.Close()
	})
	return srv, "ws://" + ln.Addr().String() + cfg.Path
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wschat/xmppws/mongo/mongotest"
)

func TestIngressConfigRejected(t *testing.T) {
	for _, tc := range []struct{ toml, key string }{
		{"[http]\nread_header_timeout = '0s'", "http.read_header_timeout"},
		{"[http]\nread_timeout = '-1s'", "http.read_timeout"},
		{"[http]\nidle_timeout = '0s'", "http.idle_timeout"},
		{"[http]\nmax_header_bytes = 100", "http.max_header_bytes"},
		{"[websocket]\nmax_unauthenticated = -1", "websocket.max_unauthenticated"},
		{"[websocket]\nmax_unauthenticated_per_address = -1", "websocket.max_unauthenticated_per_address"},
		{"[websocket]\nmax_unauthenticated = 10\nmax_unauthenticated_per_address = 11", "websocket.max_unauthenticated_per_address"},
		{"[websocket]\nmax_sessions_per_account = -1", "websocket.max_sessions_per_account"},
		{"[websocket.shaper]\nstanza_rate = -1.0", "websocket.shaper.stanza_rate"},
		{"[websocket.shaper]\nstanza_burst = 0", "websocket.shaper.stanza_burst"},
		{"[websocket.shaper]\nbyte_rate = -5.0", "websocket.shaper.byte_rate"},
		{"[websocket.shaper]\nbyte_burst = 1000", "websocket.shaper.byte_burst"},
		{"[websocket.shaper]\nstanza_rate = 'fast'", "stanza_rate"},
		{"[websocket.shaper]\nrate = 1.0", "websocket.shaper.rate"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte(tc.toml), 0o600)
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
	}
	// A zero rate switches a bucket off, and then its burst does not matter.
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("[websocket.shaper]\nstanza_rate = 0.0\nstanza_burst = 0\nbyte_rate = 0.0\nbyte_burst = 0\n"), 0o600)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if sh := wsConfig(cfg).Shaper; sh.StanzaRate != 0 || sh.ByteRate != 0 {
		t.Errorf("shaper not switched off: %+v", sh)
	}
}

// TestSlowlorisClosed: 200 sockets that send nothing, or a request line and
// then one header byte now and then, are all closed by the server once
// http.read_header_timeout has passed, before any XMPP timer could start.
func TestSlowlorisClosed(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadHeaderTimeout = duration{time.Second}
	cfg.WebSocket.MaxUnauthenticatedPerAddress = 1000 // this test is about the timeout, not the cap
	cfg.WebSocket.MaxUnauthenticated = 1000
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())

	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		if i%2 == 1 {
			if _, err := io.WriteString(c, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The trickler sends one more header byte to each odd socket every
	// 200 ms, as a slowloris client does, until the test is done.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for i := 1; i < n; i += 2 {
					conns[i].SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					conns[i].Write([]byte("X"))
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	deadline := time.Now().Add(30 * time.Second) // generous: the timeout is 1 s
	buf := make([]byte, 512)
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // a 400/408 answer may precede the close
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("socket %d (of %d) still open after 30 s", i, n)
			}
			break // EOF or reset: closed by the server
		}
	}
}

// TestAdminSocketNotStolen (defect 11): a second server with the same data
// directory, as two MongoDB-backed instances have (no file lock keeps the
// second out), must not take over the first one's admin socket: it refuses
// to start, and the first keeps answering on its socket.
func TestAdminSocketNotStolen(t *testing.T) {
	cfg := mongoConfig(t, mongotest.URI(t))
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	b, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		b.Shutdown(context.Background())
		t.Fatal("a second server started on a data directory whose admin socket is live")
	}
	if !strings.Contains(err.Error(), "another server") {
		t.Errorf("second start: %v, want an error saying another server runs", err)
	}
	if _, e, c := userCmd(t, cfg, "pw\n", "add", "-create-database", "alice@localhost"); c != 0 {
		t.Fatalf("the first server's admin socket stopped answering: %s", e)
	}
}

// TestAdminSocketStaleReplaced: a socket left by a crashed server (nothing
// answers) does not stop the next start.
func TestAdminSocketStaleReplaced(t *testing.T) {
	cfg := testConfig(t)
	path := filepath.Join(cfg.Storage.DataDir, AdminSocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: what a crash leaves
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	defer a.Shutdown(context.Background())
	if _, e, c := userCmd(t, cfg, "pw\n", "add", "-create-database", "alice@localhost"); c != 0 {
		t.Fatalf("admin socket: %s", e)
	}
}

// TestAdminSocketNeverOpen (defect 11): with a permissive umask and data
// directory, the admin socket is never reachable by other users, not even
// between its creation and its chmod.
func TestAdminSocketNeverOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	var seen []string
	adminListenHook = func(bound string) {
		seen = append(seen, bound)
		if reachableByOthers(t, bound) {
			t.Errorf("socket %s is open to other users right after Listen", bound)
		}
	}
	defer func() { adminListenHook = nil }()
	s, err := listenAdmin(dir, &admin{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(seen) != 1 {
		t.Fatalf("hook saw %d sockets, want 1", len(seen))
	}
	final := filepath.Join(dir, AdminSocketName)
	if fi, err := os.Stat(final); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("admin socket: %v %v, want a socket of mode 0600", fi, err)
	}
	if c, err := net.Dial("unix", final); err != nil {
		t.Fatalf("the socket moved into place does not answer: %v", err)
	} else {
		c.Close()
	}
}

// reachableByOthers: connecting to a Unix socket needs write permission on
// it and search permission on its directory. (The directories above the
// data directory are the operator's choice; the test's own are private.)
func reachableByOthers(t *testing.T, path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()&0o022 != 0 && di.Mode().Perm()&0o011 != 0
}

// TestPerAddressCapWired: the running server counts connections from
// accept (its http.Server has the endpoint's ConnState hook): with a cap of
// 2 per address, a third idle socket from 127.0.0.1 is closed long before
// the header timeout, and the refusal is on /metrics.
func TestPerAddressCapWired(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadHeaderTimeout = duration{time.Hour}
	cfg.HTTP.ReadTimeout = duration{time.Hour}
	cfg.WebSocket.MaxUnauthenticatedPerAddress = 2
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// Which of the three was accepted last is the server's view; exactly
	// one of them must be closed, the other two stay open.
	closed := make(chan int, len(conns))
	for i, c := range conns {
		go func() {
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				closed <- i
			}
		}()
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("no connection over the per-address cap was closed")
	}
	for _, c := range conns {
		c.Close() // frees the slots, and ends the other readers
	}
	// The scrape's own connection counts too: it gets through once the
	// server has seen the held sockets close.
	const series = `xmpp_ws_connections_refused_total{reason="unauthenticated_per_address"} `
	var text string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + a.Addr() + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics still refused after the held sockets closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// At least the third socket; scrapes tried before the slots were free
	// were refused and counted as well.
	n := 0.0
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			n, _ = strconv.ParseFloat(v, 64)
		}
	}
	if n < 1 {
		t.Errorf("%s= %v, want at least 1", series, n)
	}
}

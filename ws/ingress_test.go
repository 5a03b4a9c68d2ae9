package ws_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// ingressEnv is env with a metrics registry and the http.Server wired as
// the real server wires it (ConnState installed, optional timeouts).
type ingressEnv struct {
	*env
	reg  *prometheus.Registry
	addr string
}

func newIngressEnv(t *testing.T, tweak func(*ws.Config), httpTweak func(*http.Server)) *ingressEnv {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return serveIngress(t, st, tweak, httpTweak)
}

// serveIngress serves a new endpoint over st, which already holds or is
// given the users alice, bob and carol.
func serveIngress(t *testing.T, st account.Store, tweak func(*ws.Config), httpTweak func(*http.Server)) *ingressEnv {
	t.Helper()
	for _, u := range []string{"alice", "bob", "carol"} {
		rec, err := account.New(xmpp.MustParseJID(u+"@localhost"), "pw-"+u)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAccount(context.Background(), rec); err != nil && !errors.Is(err, account.ErrExists) {
			t.Fatal(err)
		}
	}
	cfg := ws.Defaults()
	if tweak != nil {
		tweak(&cfg)
	}
	reg := prometheus.NewRegistry()
	srv := ws.New(cfg, st, ws.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: reg})
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ConnState: srv.ConnState}
	if httpTweak != nil {
		httpTweak(hs)
	}
	go hs.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	}
	t.Cleanup(stop)
	return &ingressEnv{
		env:  &env{t: t, srv: srv, url: "ws://" + ln.Addr().String() + cfg.Path},
		reg:  reg,
		addr: ln.Addr().String(),
	}
}

// metric reads one series of the endpoint's registry (0 when absent).
func (e *ingressEnv) metric(name string, labels ...string) float64 {
	e.t.Helper()
	return gatherMetric(e.t, e.reg, name, labels...)
}

// eventually polls cond until it holds or the deadline passes; for state
// that changes on another goroutine with no event the test can wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShaperPacesSender: a session over its stanza rate is slowed, not
// refused or closed: every message arrives, the sender stays connected, and
// the shaper's metrics count the delays.
func TestShaperPacesSender(t *testing.T) {
	e := newIngressEnv(t, func(c *ws.Config) {
		// 50 ms between tokens: far longer than handling one frame takes even
		// on a loaded machine, so every frame past the burst must wait.
		c.Shaper = ws.ShaperConfig{StanzaRate: 20, StanzaBurst: 5}
	}, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	bob := e.login("bob", "b")
	const n = 30
	for i := range n {
		if err := alice.Send(ctx, client.Message("bob@localhost/b", "chat", "m"+string(rune('0'+i%10)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, err := bob.Expect(ctx, func(el *etree.Element) bool { return el.Tag == "message" }); err != nil {
			t.Fatalf("message %d of %d: %v", i, n, err)
		}
	}
	if err := alice.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("the paced sender lost its session: %v", err)
	}
	if d := e.metric("xmpp_shaper_delays_total", "bucket", "stanzas"); d < n-10 {
		t.Errorf("xmpp_shaper_delays_total{bucket=stanzas} = %v after %d stanzas over a burst of 5", d, n)
	}
	if s := e.metric("xmpp_shaper_delay_seconds_total", "bucket", "stanzas"); s <= 0 {
		t.Errorf("xmpp_shaper_delay_seconds_total{bucket=stanzas} = %v", s)
	}
	if d := e.metric("xmpp_shaper_delays_total", "bucket", "bytes"); d != 0 {
		t.Errorf("the byte bucket is off but counted %v delays", d)
	}
}

// TestShaperDefaultsDoNotDelayLogin: with the defaults, a login, a bind and
// a few dozen stanzas (what a web client sends when it starts) are never
// delayed.
func TestShaperDefaultsDoNotDelayLogin(t *testing.T) {
	e := newIngressEnv(t, nil, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	for range 40 {
		if err := alice.Ping(ctx, "localhost"); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"stanzas", "bytes"} {
		if d := e.metric("xmpp_shaper_delays_total", "bucket", b); d != 0 {
			t.Errorf("%s bucket delayed %v frames of a normal start", b, d)
		}
	}
}

// rawDial opens a TCP connection that sends nothing: a slowloris client.
func rawDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (EOF or reset) before
// the deadline.
func closedByServer(c net.Conn, within time.Duration) error {
	c.SetReadDeadline(time.Now().Add(within))
	var b [256]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue // e.g. a 400 or 408 answer before the close
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return nil
	}
}

// TestUnauthenticatedCaps: connections that have not bound count against
// the total and per-address caps from TCP accept; one over a cap is closed
// at once and counted; a bound session frees its slot, and so does a closed
// connection.
func TestUnauthenticatedCaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(*ws.Config)
		reason string
	}{
		{"per address", func(c *ws.Config) { c.MaxUnauthenticated, c.MaxUnauthenticatedPerAddress = 0, 3 }, "unauthenticated_per_address"},
		{"total", func(c *ws.Config) { c.MaxUnauthenticated, c.MaxUnauthenticatedPerAddress = 3, 0 }, "unauthenticated_total"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIngressEnv(t, tc.tweak, nil)
			ctx := ctxT(t)
			// A bound session does not hold a slot: it is released before the
			// bind result is sent.
			e.login("alice", "a")
			if n := e.metric("xmpp_ws_unauthenticated_connections"); n != 0 {
				t.Fatalf("%v unauthenticated connections counted after a bind, want 0", n)
			}
			held := []net.Conn{rawDial(t, e.addr), rawDial(t, e.addr), rawDial(t, e.addr)}
			eventually(t, "three counted connections", func() bool { return e.metric("xmpp_ws_unauthenticated_connections") == 3 })
			over := rawDial(t, e.addr)
			if err := closedByServer(over, 10*time.Second); err != nil {
				t.Fatalf("the connection over the cap was not closed: %v", err)
			}
			if got := e.metric("xmpp_ws_connections_refused_total", "reason", tc.reason); got != 1 {
				t.Errorf("refused{reason=%s} = %v, want 1", tc.reason, got)
			}
			if c, err := client.Login(ctx, e.url, xmpp.MustParseJID("bob@localhost/b"), "pw-bob"); err == nil {
				c.CloseNow()
				t.Fatal("a login over the cap succeeded")
			}
			held[0].Close()
			eventually(t, "a login once a slot is free", func() bool {
				c, err := client.Login(ctx, e.url, xmpp.MustParseJID("bob@localhost/b"), "pw-bob")
				if err != nil {
					return false
				}
				t.Cleanup(func() { c.CloseNow() })
				return true
			})
		})
	}
}

// TestHijackedConnectionOutlivesHTTPTimeouts: the session must not inherit
// the HTTP server's read deadline, or every WebSocket would die ReadTimeout
// after its upgrade.
func TestHijackedConnectionOutlivesHTTPTimeouts(t *testing.T) {
	const httpTimeout = 300 * time.Millisecond
	e := newIngressEnv(t, nil, func(hs *http.Server) {
		hs.ReadHeaderTimeout, hs.ReadTimeout = httpTimeout, httpTimeout
	})
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	// What is tested is the passing of time itself: wait past the deadline
	// net/http set when it began reading the upgrade request.
	time.Sleep(3 * httpTimeout)
	if err := alice.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("session ended by the HTTP server's read timeout: %v", err)
	}
}

// TestMaxSessionsPerAccount: a bind over the cap is refused with
// resource-constraint and the existing sessions are untouched; replacing a
// resource is not a new session; a freed slot can be used again.
func TestMaxSessionsPerAccount(t *testing.T) {
	e := newIngressEnv(t, func(c *ws.Config) { c.MaxSessionsPerAccount = 2 }, nil)
	ctx := ctxT(t)
	e.login("alice", "a")
	b := e.login("alice", "b")
	c := e.dial()
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", "alice", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Bind(ctx, "c")
	var se *client.StanzaError
	if !errors.As(err, &se) || se.Condition != "resource-constraint" {
		t.Fatalf("third bind: %v, want resource-constraint", err)
	}
	if got := e.metric("xmpp_bind_refused_total"); got != 1 {
		t.Errorf("xmpp_bind_refused_total = %v, want 1", got)
	}
	if err := b.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("an existing session suffered from the refused bind: %v", err)
	}
	// Same resource: the new session replaces the old one.
	e.login("alice", "a")
	b.Close(ctx)
	eventually(t, "the bind to succeed once a session has ended", func() bool {
		_, err := c.Bind(ctx, "c")
		return err == nil
	})
	if err := c.Ping(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
}

// TestPlainUnknownUserDerivesKey (defect 9): PLAIN for an account that does
// not exist runs the same key derivation as for one that does, so the time
// of the failure does not tell them apart.
func TestPlainUnknownUserDerivesKey(t *testing.T) {
	e := newIngressEnv(t, nil, nil)
	checks := ws.CountPasswordChecks(t)
	ctx := ctxT(t)
	for _, user := range []string{"alice", "nobody"} {
		c, _ := e.opened()
		before := checks.Load()
		var ae *client.AuthError
		if err := c.AuthPlain(ctx, user, "wrong"); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
			t.Fatalf("%s: %v, want not-authorized", user, err)
		}
		if n := checks.Load() - before; n != 1 {
			t.Errorf("%s: %d key derivations, want 1 whether or not the account exists", user, n)
		}
	}
}

// scramFirst starts SCRAM-SHA-256 for user and returns the salt and the
// iteration count the server offers.
func scramFirst(t *testing.T, e *env, user string) (salt, iters string) {
	t.Helper()
	ctx := ctxT(t)
	c, _ := e.opened()
	defer c.CloseNow()
	first := base64.StdEncoding.EncodeToString([]byte("n,,n=" + user + ",r=clientnonce0123456789"))
	if err := c.SendRaw(ctx, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>`+first+`</auth>`); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Next(ctx)
	if err != nil || !xmpp.Is(ch, "challenge", xmpp.NSSASL) {
		t.Fatalf("%v %v, want a challenge", ch, err)
	}
	msg, err := base64.StdEncoding.DecodeString(ch.Text())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(string(msg), ",") {
		switch {
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iters = f[2:]
		}
	}
	if salt == "" || iters == "" {
		t.Fatalf("server-first-message %q lacks salt or iterations", msg)
	}
	return salt, iters
}

// TestFakeSaltSurvivesRestart (defect 9): two servers over the same store,
// as after a restart or on two nodes, offer an unknown user the same salt
// and iteration count; a real user's iteration count is the same too.
func TestFakeSaltSurvivesRestart(t *testing.T) {
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e1 := serveIngress(t, st, nil, nil)
	salt1, iters1 := scramFirst(t, e1.env, "ghost")
	_, realIters := scramFirst(t, e1.env, "alice")
	e2 := serveIngress(t, st, nil, nil)
	salt2, iters2 := scramFirst(t, e2.env, "ghost")
	if salt1 != salt2 || iters1 != iters2 {
		t.Errorf("unknown user: salt %s i=%s, then %s i=%s after a restart", salt1, iters1, salt2, iters2)
	}
	if iters1 != realIters {
		t.Errorf("unknown user offered i=%s, a real one i=%s", iters1, realIters)
	}
	if other, _ := scramFirst(t, e2.env, "ghost2"); other == salt1 {
		t.Error("two unknown users got the same salt")
	}
}

package ws_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/apptoken"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

var tokenSecret = []byte("0123456789abcdef0123456789abcdef")

// syncBuffer is a log sink the tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tokenEnv is an endpoint with application tokens on (HS256, audience
// "chat"), the user alice in the store, and its log captured.
type tokenEnv struct {
	url string
	reg *prometheus.Registry
	log *syncBuffer
}

func newTokenEnv(t *testing.T, autoCreate bool) *tokenEnv {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := account.New(xmpp.MustParseJID("alice@localhost"), "pw-alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	v, err := apptoken.New(apptoken.Config{Algorithm: apptoken.HS256, Secret: tokenSecret, Audience: "chat",
		Leeway: apptoken.DefaultLeeway, Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	reg := prometheus.NewRegistry()
	cfg := ws.Defaults()
	srv := ws.New(cfg, st, ws.Options{Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg, Tokens: ws.TokenAuth{Verifier: v, AutoCreate: autoCreate}})
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
		st.Close()
	})
	return &tokenEnv{url: "ws://" + ln.Addr().String() + cfg.Path, reg: reg, log: buf}
}

func userToken(t *testing.T, sub string, exp time.Duration, aud string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "aud": aud,
		"exp": time.Now().Add(exp).Unix()}).SignedString(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *tokenEnv) opened(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.Dial(ctxT(t), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	f, err := c.Open(ctxT(t), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	offered := false
	for _, m := range f.FindElements(".//mechanism") {
		offered = offered || m.Text() == "OAUTHBEARER"
	}
	if !offered {
		t.Fatal("OAUTHBEARER is not offered on loopback")
	}
	return c
}

// TestTokenLogin logs in with tokens through PLAIN and OAUTHBEARER, binds,
// and checks that every bad token fails as a wrong password does: the
// same condition, the same counter, a log line without the token.
func TestTokenLogin(t *testing.T) {
	e := newTokenEnv(t, false)
	good := userToken(t, "alice@localhost", time.Hour, "chat")
	bad := map[string]string{
		"expired":        userToken(t, "alice@localhost", -time.Hour, "chat"),
		"wrong audience": userToken(t, "alice@localhost", time.Hour, "other"),
		"unknown user":   userToken(t, "nobody@localhost", time.Hour, "chat"),
		"other domain":   userToken(t, "alice@elsewhere", time.Hour, "chat"),
	}
	for _, mech := range []string{"PLAIN", "OAUTHBEARER"} {
		auth := func(c *client.Client, user, token string) error {
			if mech == "PLAIN" {
				return c.AuthPlain(ctxT(t), user, token)
			}
			return c.AuthOAuthBearer(ctxT(t), "", token)
		}
		t.Run(mech+"/good", func(t *testing.T) {
			c := e.opened(t)
			if err := auth(c, "alice", good); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Open(ctxT(t), "localhost"); err != nil {
				t.Fatal(err)
			}
			j, err := c.Bind(ctxT(t), "tok")
			if err != nil || j.Bare().String() != "alice@localhost" {
				t.Fatalf("bound %v, %v", j, err)
			}
		})
		for name, tok := range bad {
			t.Run(mech+"/"+name, func(t *testing.T) {
				before := testutil.ToFloat64(e.authCounter(t, mech, "failure"))
				c := e.opened(t)
				var ae *client.AuthError
				if err := auth(c, "alice", tok); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
					t.Fatalf("auth = %v, want not-authorized", err)
				}
				if mech == "OAUTHBEARER" && !strings.Contains(ae.Text, `"status":"invalid_token"`) {
					t.Errorf("no RFC 7628 error challenge: %q", ae.Text)
				}
				if got := testutil.ToFloat64(e.authCounter(t, mech, "failure")); got != before+1 {
					t.Errorf("failures counted %v → %v, want one more", before, got)
				}
			})
		}
	}
	t.Run("PLAIN/token of another user", func(t *testing.T) {
		c := e.opened(t)
		var ae *client.AuthError
		if err := c.AuthPlain(ctxT(t), "bob", good); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
			t.Fatalf("auth = %v, want not-authorized", err)
		}
	})
	t.Run("OAUTHBEARER/authzid of another user", func(t *testing.T) {
		c := e.opened(t)
		var ae *client.AuthError
		if err := c.AuthOAuthBearer(ctxT(t), "bob@localhost", good); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
			t.Fatalf("auth = %v, want not-authorized", err)
		}
	})
	t.Run("OAUTHBEARER/authzid of the user", func(t *testing.T) {
		c := e.opened(t)
		if err := c.AuthOAuthBearer(ctxT(t), "alice@localhost", good); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("password still works", func(t *testing.T) {
		c := e.opened(t)
		if err := c.AuthPlain(ctxT(t), "alice", "pw-alice"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too many bad tokens close the stream", func(t *testing.T) {
		c := e.opened(t)
		var err error
		for range ws.Defaults().MaxAuthFailures {
			err = c.AuthOAuthBearer(ctxT(t), "", bad["expired"])
		}
		var se *client.StreamError
		if !errors.As(err, &se) || se.Condition != "policy-violation" {
			// The last failure may arrive before the stream error.
			expectStreamError(t, c, "policy-violation")
		}
	})
	for _, tok := range append([]string{good}, bad["expired"]) {
		if strings.Contains(e.log.String(), tok) {
			t.Fatal("a token appears in the log")
		}
	}
	if !strings.Contains(e.log.String(), "login failed") {
		t.Fatal("no login failed line")
	}
}

// TestTokenAutoCreate: with auto_create a token logs in a user the store
// does not hold; without it (TestTokenLogin's "unknown user") it does not.
func TestTokenAutoCreate(t *testing.T) {
	e := newTokenEnv(t, true)
	for _, mech := range []string{"PLAIN", "OAUTHBEARER"} {
		c := e.opened(t)
		tok := userToken(t, "newcomer@localhost", time.Hour, "chat")
		var err error
		if mech == "PLAIN" {
			err = c.AuthPlain(ctxT(t), "newcomer", tok)
		} else {
			err = c.AuthOAuthBearer(ctxT(t), "", tok)
		}
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		if _, err := c.Open(ctxT(t), "localhost"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Bind(ctxT(t), mech); err != nil {
			t.Fatal(err)
		}
	}
	// A bad token is still refused, and a wrong password too.
	c := e.opened(t)
	var ae *client.AuthError
	if err := c.AuthPlain(ctxT(t), "newcomer", userToken(t, "newcomer@localhost", -time.Hour, "chat")); !errors.As(err, &ae) {
		t.Fatalf("expired token: %v", err)
	}
}

func (e *tokenEnv) authCounter(t *testing.T, mech, result string) prometheus.Collector {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["mechanism"] == mech && labels["result"] == result && m.GetCounter() != nil {
				return gaugeOf(m.GetCounter().GetValue())
			}
		}
	}
	return gaugeOf(0)
}

func gaugeOf(v float64) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	g.Set(v)
	return g
}

// TestTokenLoginSASL2: under SASL2 an application token goes as the PLAIN
// password (and Bind2 binds in the same round trip); OAUTHBEARER, whose
// exchange is RFC 6120's, is not offered there.
func TestTokenLoginSASL2(t *testing.T) {
	e := newTokenEnv(t, false)
	c, err := client.Dial(ctxT(t), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	f, err := c.Open(ctxT(t), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	auth := xmpp.Child(f, "authentication", xmpp.NSSASL2)
	if auth == nil {
		t.Fatal("no SASL2 offered")
	}
	for _, m := range xmpp.Children(auth, "mechanism", xmpp.NSSASL2) {
		if m.Text() == "OAUTHBEARER" {
			t.Error("OAUTHBEARER offered under SASL2")
		}
	}
	res, err := c.AuthSASL2(ctxT(t), client.SASL2{Mechanism: "PLAIN", Username: "alice", Password: userToken(t, "alice@localhost", time.Hour, "chat"), Bind: true, BindTag: "app"})
	if err != nil {
		t.Fatalf("SASL2 PLAIN with a token: %v", err)
	}
	if j, err := xmpp.ParseJID(res.AuthzID); err != nil || j.Bare().String() != "alice@localhost" || j.Resource == "" {
		t.Errorf("bound %q, %v", res.AuthzID, err)
	}
}

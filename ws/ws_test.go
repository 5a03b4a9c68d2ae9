package ws_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is an endpoint served on 127.0.0.1:0 over a fresh embedded store,
// with the users alice, bob and carol (password "pw-<name>").
type env struct {
	t   *testing.T
	srv *ws.Server
	url string
	reg *prometheus.Registry // the endpoint's metrics
}

func newEnv(t *testing.T, tweak func(*ws.Config)) *env {
	t.Helper()
	return newEnvListener(t, tweak, nil)
}

// newEnvListener is newEnv whose listener is passed through wrap (nil: as
// is), for tests that shape the server's sockets.
func newEnvListener(t *testing.T, tweak func(*ws.Config), wrap func(net.Listener) net.Listener) *env {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		rec, err := account.New(xmpp.MustParseJID(u+"@localhost"), "pw-"+u)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateAccount(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	cfg := ws.Defaults()
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	srv := ws.New(cfg, st, ws.Options{Logger: log, Registerer: reg})
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, srv)
	mux.Handle("/.well-known/host-meta", srv.HostMeta(false))
	mux.Handle("/.well-known/host-meta.json", srv.HostMeta(true))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
		st.Close()
	})
	return &env{t: t, srv: srv, url: "ws://" + ln.Addr().String() + cfg.Path, reg: reg}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) login(user, resource string) *client.Client {
	e.t.Helper()
	c, err := client.Login(ctxT(e.t), e.url, xmpp.JID{Local: user, Domain: "localhost", Resource: resource}, "pw-"+user)
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

func (e *env) dial() *client.Client {
	e.t.Helper()
	c, err := client.Dial(ctxT(e.t), e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

// opened dials and opens the stream, returning the client and the features.
func (e *env) opened() (*client.Client, *etree.Element) {
	e.t.Helper()
	c := e.dial()
	f, err := c.Open(ctxT(e.t), "localhost")
	if err != nil {
		e.t.Fatal(err)
	}
	return c, f
}

// expectStreamError reads until a stream error arrives and checks that it is
// followed by <close/> and a WebSocket close with status 1000.
func expectStreamError(t *testing.T, c *client.Client, cond string) {
	t.Helper()
	ctx := ctxT(t)
	for {
		el, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for stream error %s: %v", cond, err)
		}
		if se := client.StreamErrorOf(el); se != nil {
			if se.Condition != cond {
				t.Fatalf("stream error %s, want %s", se.Condition, cond)
			}
			break
		}
		if xmpp.Is(el, "open", xmpp.NSFraming) {
			continue
		}
		t.Fatalf("got %s while waiting for stream error %s", xmpp.String(el), cond)
	}
	el, err := c.Next(ctx)
	if err != nil || !xmpp.Is(el, "close", xmpp.NSFraming) {
		t.Fatalf("after stream error: %v %v, want <close/>", el, err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after <close/>: %v, want end of stream", err)
	}
	if s := c.CloseStatus(); s != websocket.StatusNormalClosure {
		t.Fatalf("WebSocket close status %d, want 1000", s)
	}
}

func textOf(el *etree.Element, local, ns string) string {
	if c := xmpp.Child(el, local, ns); c != nil {
		return c.Text()
	}
	return ""
}

func TestSubprotocolRequired(t *testing.T) {
	e := newEnv(t, nil)
	for _, protos := range [][]string{{}, {"chat"}} {
		if c, err := client.Dial(ctxT(t), e.url, &client.DialOptions{Subprotocols: protos}); err == nil {
			c.CloseNow()
			t.Errorf("handshake offering %v was accepted", protos)
		}
	}
	resp, err := http.Get(strings.Replace(e.url, "ws://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET: status %d, want 400", resp.StatusCode)
	}
}

func TestOpenAndFeatures(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	ctx := ctxT(t)
	if err := c.SendRaw(ctx, `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`); err != nil {
		t.Fatal(err)
	}
	open, err := c.Next(ctx)
	if err != nil || !xmpp.Is(open, "open", xmpp.NSFraming) {
		t.Fatalf("first element %v (%v), want <open/>", open, err)
	}
	for attr, want := range map[string]string{"from": "localhost", "version": "1.0", "xml:lang": "en"} {
		if got := open.SelectAttrValue(attr, ""); got != want {
			t.Errorf("open %s=%q, want %q", attr, got, want)
		}
	}
	if open.SelectAttrValue("id", "") == "" {
		t.Error("open has no id")
	}
	feats, err := c.Next(ctx)
	if err != nil || !xmpp.Is(feats, "features", xmpp.NSStream) {
		t.Fatalf("second element %v (%v), want features", feats, err)
	}
	var mechs []string
	for _, m := range xmpp.Child(feats, "mechanisms", xmpp.NSSASL).ChildElements() {
		mechs = append(mechs, m.Text())
	}
	if got := strings.Join(mechs, ","); got != "SCRAM-SHA-256,SCRAM-SHA-1,PLAIN" {
		t.Errorf("mechanisms %s", got)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct{ name, open, cond string }{
		{"unknown host", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' version='1.0'/>`, "host-unknown"},
		{"bad version", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='2.0'/>`, "unsupported-version"},
		// A prefixed namesake is another attribute: the stream header's own
		// to and version decide, whichever comes first.
		{"prefixed to is not to", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xmlns:f='urn:x' f:to='localhost' to='example.org' version='1.0'/>`, "host-unknown"},
		{"prefixed version is not version", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xmlns:f='urn:x' f:version='1.0' to='localhost' version='2.0'/>`, "unsupported-version"},
		{"empty version", `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version=''/>`, "unsupported-version"},
		{"stream:stream", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'/>`, "invalid-namespace"},
		{"stanza before open", `<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>`, "not-authorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.dial()
			if err := c.SendRaw(ctxT(t), tc.open); err != nil {
				t.Fatal(err)
			}
			expectStreamError(t, c, tc.cond)
		})
	}
}

func TestAuthMechanisms(t *testing.T) {
	e := newEnv(t, nil)
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			ctx := ctxT(t)
			c, _ := e.opened()
			var err error
			if mech == "PLAIN" {
				err = c.AuthPlain(ctx, "alice", "pw-alice")
			} else {
				err = c.AuthSCRAM(ctx, mech, "alice", "pw-alice")
			}
			if err != nil {
				t.Fatalf("auth: %v", err)
			}
			feats, err := c.Open(ctx, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			if xmpp.Child(feats, "bind", xmpp.NSBind) == nil {
				t.Fatalf("features after auth lack <bind/>: %s", xmpp.String(feats))
			}
			if s := xmpp.Child(feats, "session", xmpp.NSSession); s == nil || xmpp.Child(s, "optional", xmpp.NSSession) == nil {
				t.Errorf("features lack optional session: %s", xmpp.String(feats))
			}
			j, err := c.Bind(ctx, "r1")
			if err != nil {
				t.Fatal(err)
			}
			if j.String() != "alice@localhost/r1" {
				t.Errorf("bound %s", j)
			}
		})
	}
}

func TestAuthFailureThenRetry(t *testing.T) {
	e := newEnv(t, nil)
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			ctx := ctxT(t)
			c, _ := e.opened()
			auth := func(user, pw string) error {
				if mech == "PLAIN" {
					return c.AuthPlain(ctx, user, pw)
				}
				return c.AuthSCRAM(ctx, mech, user, pw)
			}
			for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "pw-alice"}} {
				var ae *client.AuthError
				if err := auth(bad[0], bad[1]); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
					t.Fatalf("%s/%s: %v, want not-authorized failure", bad[0], bad[1], err)
				}
			}
			if err := auth("alice", "pw-alice"); err != nil {
				t.Fatalf("retry on the same connection: %v", err)
			}
		})
	}
}

func TestTooManyAuthFailures(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.MaxAuthFailures = 2 })
	ctx := ctxT(t)
	c, _ := e.opened()
	if err := c.AuthPlain(ctx, "alice", "x"); err == nil {
		t.Fatal("wrong password accepted")
	}
	c.SendRaw(ctx, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHk=</auth>`)
	f, err := c.Next(ctx)
	if err != nil || !xmpp.Is(f, "failure", xmpp.NSSASL) {
		t.Fatalf("%v %v, want failure", f, err)
	}
	expectStreamError(t, c, "policy-violation")
}

func TestSASLFailures(t *testing.T) {
	for _, tc := range []struct{ name, auth, cond string }{
		{"unknown mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>`, "invalid-mechanism"},
		// alice's right PLAIN credentials, under a mechanism the server
		// does not offer: the prefixed look-alike must not choose PLAIN.
		{"prefixed mechanism is not the mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' xmlns:f='urn:x' f:mechanism='PLAIN' mechanism='DIGEST-MD5'>AGFsaWNlAHB3LWFsaWNl</auth>`, "invalid-mechanism"},
		{"bad base64", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%%%</auth>`, "incorrect-encoding"},
		{"malformed plain", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>YWxpY2U=</auth>`, "malformed-request"},
		{"abort", `<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`, "aborted"},
		{"other authzid", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>Ym9iQGxvY2FsaG9zdABhbGljZQBwdy1hbGljZQ==</auth>`, "invalid-authzid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := ctxT(t)
			c, _ := e.opened()
			c.SendRaw(ctx, tc.auth)
			f, err := c.Next(ctx)
			if err != nil || !xmpp.Is(f, "failure", xmpp.NSSASL) || xmpp.Child(f, tc.cond, xmpp.NSSASL) == nil {
				t.Fatalf("got %v (%v), want failure %s", f, err, tc.cond)
			}
		})
	}
}

func TestBindGeneratedResource(t *testing.T) {
	e := newEnv(t, nil)
	c := e.login("alice", "")
	j := c.JID()
	if j.Bare().String() != "alice@localhost" || j.Resource == "" {
		t.Fatalf("bound %s, want alice@localhost/<generated>", j)
	}
}

func TestResourceConflictReplacesOldSession(t *testing.T) {
	e := newEnv(t, nil)
	old := e.login("alice", "phone")
	newer := e.login("alice", "phone")
	expectStreamError(t, old, "conflict")
	if err := newer.Ping(ctxT(t), "localhost"); err != nil {
		t.Fatalf("new session: %v", err)
	}
}

func TestMessageBetweenUsers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	bob1 := e.login("bob", "b1")
	bob2 := e.login("bob", "b2")

	// To the bare JID: every session of the user.
	alice.Send(ctx, client.Message("bob@localhost", "chat", "hello"))
	for _, b := range []*client.Client{bob1, bob2} {
		m, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.SelectAttrValue("from", "") != "alice@localhost/a" || textOf(m, "body", xmpp.NSClient) != "hello" {
			t.Fatalf("got %s", xmpp.String(m))
		}
		if m.SelectAttrValue("to", "") != "bob@localhost" {
			t.Errorf("to=%s, want the bare JID as addressed", m.SelectAttrValue("to", ""))
		}
	}
	// To a full JID: that session only.
	alice.Send(ctx, client.Message("bob@localhost/b2", "chat", "only b2"))
	m, err := bob2.Next(ctx)
	if err != nil || textOf(m, "body", xmpp.NSClient) != "only b2" {
		t.Fatalf("%v %v", m, err)
	}
	// Presence to a full JID is routed too.
	p := xmpp.NewStanzaElement("presence", "", "", xmpp.JID{}, xmpp.MustParseJID("bob@localhost/b1"))
	alice.Send(ctx, p)
	m, err = bob1.Next(ctx)
	if err != nil || m.Tag != "presence" || m.SelectAttrValue("from", "") != "alice@localhost/a" {
		t.Fatalf("%v %v", m, err)
	}
	// Nothing else reached bob1 (the b2-only message went to b2 alone).
	bob1.Send(ctx, client.Message("alice@localhost", "chat", "marker"))
	m, err = alice.Next(ctx)
	if err != nil || textOf(m, "body", xmpp.NSClient) != "marker" {
		t.Fatalf("%v %v", m, err)
	}
	if err := bob1.Ping(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
}

func TestIQBetweenSessions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	bob := e.login("bob", "b")
	done := make(chan error, 1)
	go func() {
		q, err := bob.Next(ctx)
		if err != nil {
			done <- err
			return
		}
		res := xmpp.NewStanzaElement("iq", "result", q.SelectAttrValue("id", ""), xmpp.JID{}, xmpp.MustParseJID(q.SelectAttrValue("from", "")))
		done <- bob.Send(ctx, res)
	}()
	res, err := alice.IQ(ctx, client.IQ("get", "bob@localhost/b", xmpp.Elem("query", xmpp.NSVersion)))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res.SelectAttrValue("from", "") != "bob@localhost/b" {
		t.Errorf("result from %s", res.SelectAttrValue("from", ""))
	}
}

func TestUndeliverable(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	for _, tc := range []struct {
		name string
		el   *etree.Element
		cond string
	}{
		{"message to offline user", client.Message("bob@localhost", "chat", "x"), "service-unavailable"},
		{"iq to offline full JID", client.IQ("get", "bob@localhost/x", xmpp.Elem("query", xmpp.NSVersion)), "service-unavailable"},
		{"iq to another user's bare JID", client.IQ("get", "bob@localhost", xmpp.Elem("query", xmpp.NSVersion)), "service-unavailable"},
		{"unknown iq to server", client.IQ("get", "localhost", xmpp.Elem("query", "urn:example:nothing")), "service-unavailable"},
		{"unknown iq to own account", client.IQ("get", "", xmpp.Elem("query", "urn:example:nothing")), "service-unavailable"},
		{"remote domain", client.Message("someone@example.org", "chat", "x"), "remote-server-not-found"},
		{"malformed to", client.Message("@@@", "chat", "x"), "jid-malformed"},
		{"iq without id", etree.NewElement("iq"), "bad-request"},
		{"iq get with two payloads", func() *etree.Element {
			iq := client.IQ("get", "localhost", xmpp.Elem("ping", xmpp.NSPing))
			iq.AddChild(xmpp.Elem("ping", xmpp.NSPing))
			return iq
		}(), "bad-request"},
		{"invalid message type", client.Message("bob@localhost", "shout", "x"), "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.el.Tag == "iq" && tc.el.SelectAttrValue("id", "") == "" && tc.name != "iq without id" {
				tc.el.CreateAttr("id", "q1")
			}
			if tc.el.Tag == "message" {
				tc.el.CreateAttr("id", "m1")
			}
			if err := alice.Send(ctx, tc.el); err != nil {
				t.Fatal(err)
			}
			r, err := alice.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			se := client.ErrorOf(r)
			if r.SelectAttrValue("type", "") != "error" || se == nil || se.Condition != tc.cond {
				t.Fatalf("got %s, want %s error", xmpp.String(r), tc.cond)
			}
			if id := tc.el.SelectAttrValue("id", ""); r.SelectAttrValue("id", "") != id {
				t.Errorf("error id %q, want %q", r.SelectAttrValue("id", ""), id)
			}
		})
	}
}

func TestServerIQs(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	info, err := alice.IQ(ctx, client.IQ("get", "localhost", xmpp.Elem("query", xmpp.NSDiscoInfo)))
	if err != nil {
		t.Fatal(err)
	}
	q := xmpp.Child(info, "query", xmpp.NSDiscoInfo)
	id := xmpp.Child(q, "identity", xmpp.NSDiscoInfo)
	if id == nil || id.SelectAttrValue("category", "") != "server" || id.SelectAttrValue("type", "") != "im" {
		t.Errorf("disco#info identity: %s", xmpp.String(info))
	}
	feats := map[string]bool{}
	for _, f := range xmpp.Children(q, "feature", xmpp.NSDiscoInfo) {
		feats[f.SelectAttrValue("var", "")] = true
	}
	for _, want := range []string{xmpp.NSDiscoInfo, xmpp.NSDiscoItems, xmpp.NSPing, xmpp.NSVersion} {
		if !feats[want] {
			t.Errorf("disco#info lacks %s", want)
		}
	}
	if _, err := alice.IQ(ctx, client.IQ("get", "localhost", xmpp.Elem("query", xmpp.NSDiscoItems))); err != nil {
		t.Error(err)
	}
	if err := alice.Ping(ctx, "localhost"); err != nil {
		t.Error(err)
	}
	v, err := alice.IQ(ctx, client.IQ("get", "localhost", xmpp.Elem("query", xmpp.NSVersion)))
	if err != nil || textOf(xmpp.Child(v, "query", xmpp.NSVersion), "name", xmpp.NSVersion) != ws.ServerName {
		t.Errorf("version: %v %v", v, err)
	}
	r, err := alice.IQ(ctx, client.IQ("get", "", xmpp.Elem("query", xmpp.NSRoster)))
	if err != nil || xmpp.Child(r, "query", xmpp.NSRoster) == nil {
		t.Errorf("roster: %v %v", r, err)
	}
	if _, err := alice.IQ(ctx, client.IQ("set", "", xmpp.Elem("session", xmpp.NSSession))); err != nil {
		t.Errorf("session: %v", err)
	}
}

func TestStreamErrors(t *testing.T) {
	big := "<message xmlns='jabber:client' to='bob@localhost'><body>" + strings.Repeat("x", 70<<10) + "</body></message>"
	for _, tc := range []struct{ name, data, cond string }{
		{"not well-formed", "<message xmlns='jabber:client'><body>oops</message>", "not-well-formed"},
		{"two elements", "<message xmlns='jabber:client'/><message xmlns='jabber:client'/>", "not-well-formed"},
		{"comment", "<message xmlns='jabber:client'><!-- hi --></message>", "restricted-xml"},
		{"doctype", "<!DOCTYPE x><message xmlns='jabber:client'/>", "restricted-xml"},
		{"oversized", big, "policy-violation"},
		{"wrong stanza namespace", "<message xmlns='jabber:server' to='bob@localhost'/>", "invalid-namespace"},
		{"unknown element", "<unknown xmlns='urn:example:none'/>", "unsupported-stanza-type"},
		{"forged from", "<message xmlns='jabber:client' from='bob@localhost/x' to='carol@localhost'/>", "invalid-from"},
		// What XML forbids (issue 14, defect 10): refused before routing.
		// A message with two to once went to the second.
		{"duplicate to", "<message xmlns='jabber:client' to='bob@localhost' to='carol@localhost'><body>x</body></message>", "not-well-formed"},
		{"xml prefix bound elsewhere", "<message xmlns='jabber:client' xmlns:xml='urn:x' xml:lang='en' to='bob@localhost'><body>x</body></message>", "not-well-formed"},
		{"xmlns prefix declared", "<message xmlns='jabber:client' xmlns:xmlns='urn:x' to='bob@localhost'><body>x</body></message>", "not-well-formed"},
		{"prefixed from", "<message xmlns='jabber:client' xmlns:j='jabber:client' j:from='carol@localhost/x' to='bob@localhost'><body>x</body></message>", "bad-namespace-prefix"},
		{"prefixed to", "<message xmlns='jabber:client' xmlns:j='urn:x' j:to='carol@localhost' to='bob@localhost'><body>x</body></message>", "bad-namespace-prefix"},
		{"surrogate reference", "<message xmlns='jabber:client' to='bob@localhost'><body>&#xD800;</body></message>", "not-well-formed"},
		{"UTF-16 declaration", "<?xml version='1.0' encoding='UTF-16'?><message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>", "unsupported-encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.login("alice", "a")
			bob, carol := e.login("bob", "b"), e.login("carol", "c")
			if err := c.SendRaw(ctxT(t), tc.data); err != nil {
				t.Fatal(err)
			}
			expectStreamError(t, c, tc.cond)
			nothingDelivered(t, bob, carol)
		})
	}
	t.Run("binary message", func(t *testing.T) {
		e := newEnv(t, nil)
		c := e.login("alice", "a")
		c.SendBinary(ctxT(t), []byte("<presence xmlns='jabber:client'/>"))
		expectStreamError(t, c, "unsupported-encoding")
	})
	t.Run("stanza before auth", func(t *testing.T) {
		e := newEnv(t, nil)
		c, _ := e.opened()
		c.Send(ctxT(t), client.Message("bob@localhost", "chat", "x"))
		expectStreamError(t, c, "not-authorized")
	})
}

// nothingDelivered checks that a and b have received nothing: each sends the
// other a marker, which must be the first thing each reads. Whatever was
// routed before (the refused sender's stream error is already in) would be
// queued ahead of it.
func nothingDelivered(t *testing.T, a, b *client.Client) {
	t.Helper()
	ctx := ctxT(t)
	for _, p := range [][2]*client.Client{{a, b}, {b, a}} {
		if err := p[0].Send(ctx, client.Message(p[1].JID().Bare().String(), "chat", "marker")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*client.Client{a, b} {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if textOf(m, "body", xmpp.NSClient) != "marker" {
			t.Fatalf("%s received %s", c.JID(), xmpp.String(m))
		}
	}
}

func TestClientClose(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	bob := e.login("bob", "b")
	if err := bob.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if s := bob.CloseStatus(); s != websocket.StatusNormalClosure {
		t.Errorf("close status %d", s)
	}
	// Once closed, bob is unregistered: a message to him bounces. The
	// unregistration may trail the close handshake, so retry until it shows.
	for i := 0; ; i++ {
		alice.Send(ctx, client.Message("bob@localhost/b", "chat", "gone?"))
		r, err := alice.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if se := client.ErrorOf(r); se != nil && se.Condition == "service-unavailable" {
			break
		}
		if i > 1000 {
			t.Fatal("bob's session still routed after close")
		}
	}
}

func TestShutdownClosesSessions(t *testing.T) {
	e := newEnv(t, nil)
	c := e.login("alice", "a")
	ctx := ctxT(t)
	go e.srv.Shutdown(ctx)
	el, err := c.Next(ctx)
	if err != nil || !xmpp.Is(el, "close", xmpp.NSFraming) {
		t.Fatalf("got %v %v, want <close/>", el, err)
	}
	c.Close(ctx)
}

func TestAuthTimeout(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.AuthTimeout = 50 * time.Millisecond })
	c, _ := e.opened()
	expectStreamError(t, c, "connection-timeout")
}

// shortCtx polls: it is already done unless something is queued.
func shortCtx(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

func TestHostMeta(t *testing.T) {
	e := newEnv(t, nil)
	base := strings.TrimSuffix(strings.Replace(e.url, "ws://", "http://", 1), "/xmpp-websocket")
	for _, path := range []string{"/.well-known/host-meta", "/.well-known/host-meta.json"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), e.url) || !strings.Contains(string(b), "urn:xmpp:alt-connections:websocket") {
			t.Errorf("%s: %s", path, b)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", path)
		}
	}
}

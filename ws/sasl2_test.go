package ws_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

const uaID = "7b1b3c9e-4f7a-4c5e-9d61-2f0c6f2b8a10"

// sasl2 opens a stream and checks that it offers SASL2 with Bind2.
func (e *env) sasl2() (*client.Client, *etree.Element) {
	e.t.Helper()
	c, feats := e.opened()
	auth := xmpp.Child(feats, "authentication", xmpp.NSSASL2)
	if auth == nil {
		e.t.Fatalf("features lack SASL2 <authentication/>: %s", xmpp.String(feats))
	}
	inline := xmpp.Child(auth, "inline", xmpp.NSSASL2)
	if inline == nil || xmpp.Child(inline, "bind", xmpp.NSBind2) == nil {
		e.t.Fatalf("SASL2 inline lacks Bind2: %s", xmpp.String(auth))
	}
	return c, auth
}

func authFailure(t *testing.T, err error, cond string) {
	t.Helper()
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Condition != cond {
		t.Fatalf("got %v, want SASL2 failure %s", err, cond)
	}
}

func TestSASL2Features(t *testing.T) {
	e := newEnv(t, nil)
	_, auth := e.sasl2()
	var mechs []string
	for _, m := range auth.SelectElements("mechanism") {
		mechs = append(mechs, m.Text())
	}
	if got := strings.Join(mechs, ","); got != "SCRAM-SHA-256,SCRAM-SHA-1,PLAIN" {
		t.Errorf("SASL2 mechanisms %s", got)
	}
	fast := xmpp.Child(xmpp.Child(auth, "inline", xmpp.NSSASL2), "fast", xmpp.NSFAST)
	if fast == nil || textOf(fast, "mechanism", xmpp.NSFAST) != "HT-SHA-256-NONE" {
		t.Errorf("FAST not offered with HT-SHA-256-NONE: %s", xmpp.String(auth))
	}

	off := newEnv(t, func(c *ws.Config) { c.FAST = false })
	_, auth = off.sasl2()
	if xmpp.Child(xmpp.Child(auth, "inline", xmpp.NSSASL2), "fast", xmpp.NSFAST) != nil {
		t.Errorf("fast = false still offers FAST: %s", xmpp.String(auth))
	}
}

// TestSASL2SCRAM: each mechanism succeeds without a stream restart (the
// features follow <success/>, and a legacy bind works on the same stream),
// with the server's signature checked by the client.
func TestSASL2SCRAM(t *testing.T) {
	e := newEnv(t, nil)
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			ctx := ctxT(t)
			c, _ := e.sasl2()
			res, err := c.AuthSASL2(ctx, client.SASL2{Mechanism: mech, Username: "alice", Password: "pw-alice"})
			if err != nil {
				t.Fatal(err)
			}
			if res.AuthzID != "alice@localhost" {
				t.Errorf("authorization-identifier %q, want the bare JID", res.AuthzID)
			}
			if xmpp.Child(res.Features, "bind", xmpp.NSBind) == nil {
				t.Fatalf("features after SASL2 success lack <bind/>: %s", xmpp.String(res.Features))
			}
			j, err := c.Bind(ctx, "legacy")
			if err != nil || j.String() != "alice@localhost/legacy" {
				t.Fatalf("bind after SASL2: %v %v", j, err)
			}
			if err := c.Ping(ctx, "localhost"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSASL2Failure: a wrong password and an unknown user fail alike with
// not-authorized, the stream stays usable (no restart, retry allowed), and
// the failures count towards max_auth_failures with the RFC 6120 ones.
func TestSASL2Failure(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.MaxAuthFailures = 3 })
	ctx := ctxT(t)
	c, _ := e.sasl2()
	for _, bad := range [][2]string{{"alice", "wrong"}, {"mallory", "pw-alice"}} {
		_, err := c.AuthSASL2(ctx, client.SASL2{Username: bad[0], Password: bad[1]})
		authFailure(t, err, "not-authorized")
	}
	if got := e.metric("xmpp_auth_total", "mechanism", "SCRAM-SHA-256", "result", "failure"); got != 2 {
		t.Errorf("failures counted %v, want 2", got)
	}
	if _, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", Bind: true}); err != nil {
		t.Fatalf("retry on the same stream: %v", err)
	}

	c2, _ := e.sasl2()
	for range 2 {
		_, err := c2.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "nope"})
		authFailure(t, err, "not-authorized")
	}
	if err := c2.AuthPlain(ctx, "alice", "nope"); err == nil {
		t.Fatal("wrong password accepted")
	}
	expectStreamError(t, c2, "policy-violation")
}

func TestSASL2Errors(t *testing.T) {
	for _, tc := range []struct{ name, el, cond string }{
		{"unknown mechanism", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='DIGEST-MD5'><initial-response>AA==</initial-response></authenticate>`, "invalid-mechanism"},
		{"bad base64", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>%%%</initial-response></authenticate>`, "incorrect-encoding"},
		{"malformed plain", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>YWxpY2U=</initial-response></authenticate>`, "malformed-request"},
		{"response without exchange", `<response xmlns='urn:xmpp:sasl:2'>AA==</response>`, "malformed-request"},
		{"abort", `<abort xmlns='urn:xmpp:sasl:2'/>`, "aborted"},
		{"HT without initial response", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><fast xmlns='urn:xmpp:fast:0'/></authenticate>`, "malformed-request"},
		{"HT with channel binding", `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-ENDP'><initial-response>YWxpY2UAAA==</initial-response></authenticate>`, "invalid-mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c, _ := e.sasl2()
			c.SendRaw(ctxT(t), tc.el)
			f, err := c.Next(ctxT(t))
			if err != nil || !xmpp.Is(f, "failure", xmpp.NSSASL2) || xmpp.Child(f, tc.cond, xmpp.NSSASL) == nil {
				t.Fatalf("got %v (%v), want SASL2 failure %s", xmpp.String(f), err, tc.cond)
			}
		})
	}
}

// TestSASL2Bind2OneRoundTrip: SCRAM-SHA-256 plus Bind2 completes in the
// SCRAM exchange's two round trips, binds tag/<generated>, reports the
// full JID, and leaves a session that routes stanzas at once.
func TestSASL2Bind2OneRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	c, _ := e.sasl2()
	res, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, Bind: true, BindTag: "webchat"})
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundTrips != 2 {
		t.Errorf("%d round trips from <authenticate/> to <success/>, want 2 (SCRAM's)", res.RoundTrips)
	}
	j, err := xmpp.ParseJID(res.AuthzID)
	if err != nil || j.Bare().String() != "alice@localhost" || !strings.HasPrefix(j.Resource, "webchat/") || len(j.Resource) <= len("webchat/") {
		t.Fatalf("authorization-identifier %q, want alice@localhost/webchat/<generated>", res.AuthzID)
	}
	if res.Bound == nil {
		t.Fatal("success lacks <bound/>")
	}
	if xmpp.Child(res.Features, "bind", xmpp.NSBind) != nil {
		t.Errorf("features after Bind2 still offer a bind: %s", xmpp.String(res.Features))
	}
	if strings.Contains(j.Resource, uaID) {
		t.Error("the resource exposes the user-agent id (XEP-0386 forbids it)")
	}
	bob := e.login("bob", "b")
	if err := bob.Send(ctx, client.Message(res.AuthzID, "chat", "hi")); err != nil {
		t.Fatal(err)
	}
	m, err := c.Expect(ctx, func(el *etree.Element) bool { return xmpp.Is(el, "message", xmpp.NSClient) })
	if err != nil || textOf(m, "body", xmpp.NSClient) != "hi" {
		t.Fatalf("message to the Bind2 session: %v %v", m, err)
	}

	// Without a tag the resource is the generated part alone.
	c2, _ := e.sasl2()
	res, err = c2.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", Bind: true})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := xmpp.ParseJID(res.AuthzID); j.Resource == "" || strings.Contains(j.Resource, "/") {
		t.Errorf("untagged Bind2 resource %q", j.Resource)
	}
}

// TestBind2MaxSessions: Bind2 is held to max_sessions_per_account like the
// RFC 6120 bind; the refused login fails with the reason and may retry.
func TestBind2MaxSessions(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.MaxSessionsPerAccount = 1 })
	ctx := ctxT(t)
	e.login("alice", "one")
	c, _ := e.sasl2()
	_, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", Bind: true})
	authFailure(t, err, "temporary-auth-failure")
	if !strings.Contains(err.Error(), "most sessions") {
		t.Errorf("failure %v does not say why", err)
	}
	if got := e.metric("xmpp_bind_refused_total"); got != 1 {
		t.Errorf("xmpp_bind_refused_total %v, want 1", got)
	}
	// Binding the same resource replaces, which the cap allows.
	if _, err := c.AuthSASL2(ctx, client.SASL2{Username: "bob", Password: "pw-bob", Bind: true}); err != nil {
		t.Fatalf("another account on the same stream: %v", err)
	}
}

// fastEnv is an endpoint whose clock the test moves.
type fastEnv struct {
	*env
	now atomic.Pointer[time.Time]
}

func newFastEnv(t *testing.T, tweak func(*ws.Config)) *fastEnv {
	f := &fastEnv{env: newEnv(t, tweak)}
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	f.now.Store(&start)
	ws.SetClock(f.srv, func() time.Time { return *f.now.Load() })
	return f
}

func (f *fastEnv) advance(d time.Duration) {
	n := f.now.Load().Add(d)
	f.now.Store(&n)
}

// passwordToken logs alice in with her password and asks for a token.
func (f *fastEnv) passwordToken(ua string) *client.SASL2Result {
	f.t.Helper()
	c, _ := f.sasl2()
	res, err := c.AuthSASL2(ctxT(f.t), client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: ua, Software: "Tester", Device: "laptop", Bind: true, RequestToken: "HT-SHA-256-NONE"})
	if err != nil {
		f.t.Fatal(err)
	}
	if res.Token == "" {
		f.t.Fatalf("no token in %s", xmpp.String(res.Success))
	}
	return res
}

func (f *fastEnv) tokenLogin(ua, token string, tweak func(*client.SASL2)) (*client.SASL2Result, error) {
	f.t.Helper()
	c, _ := f.sasl2()
	o := client.SASL2{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: token, UserAgentID: ua, Bind: true}
	if tweak != nil {
		tweak(&o)
	}
	return c.AuthSASL2(ctxT(f.t), o)
}

// TestFASTIssueAndUse: a password login with <request-token/> gets a token
// and its expiry; a token login then binds in one round trip, the client
// checks the server's HT responder message, and the login is counted under
// its mechanism.
func TestFASTIssueAndUse(t *testing.T) {
	f := newFastEnv(t, nil)
	res := f.passwordToken(uaID)
	if want := f.now.Load().Add(14 * 24 * time.Hour); !res.TokenExpiry.Equal(want.Truncate(time.Second)) {
		t.Errorf("expiry %v, want %v (fast_token_ttl from now)", res.TokenExpiry, want)
	}
	if len(res.Token) <= 64 {
		t.Errorf("token of %d bytes: must exceed SHA-256's block", len(res.Token))
	}
	f.advance(time.Hour)
	login, err := f.tokenLogin(uaID, res.Token, nil)
	if err != nil {
		t.Fatalf("token login: %v", err)
	}
	if login.RoundTrips != 1 {
		t.Errorf("token login took %d round trips, want 1", login.RoundTrips)
	}
	if j, _ := xmpp.ParseJID(login.AuthzID); j.Bare().String() != "alice@localhost" || j.Resource == "" {
		t.Errorf("authorization-identifier %q", login.AuthzID)
	}
	if login.Token != "" {
		t.Error("a fresh token was rotated on its first use")
	}
	if got := f.metric("xmpp_auth_total", "mechanism", "HT-SHA-256-NONE", "result", "success"); got != 1 {
		t.Errorf("token logins counted %v, want 1", got)
	}
	// The same token keeps working until it is replaced or expires.
	if _, err := f.tokenLogin(uaID, res.Token, nil); err != nil {
		t.Fatalf("second token login: %v", err)
	}
}

// TestFASTWrongTokenLikeWrongPassword: a wrong token, another client's
// token, a token for a user who does not exist and a wrong password all
// get the same not-authorized, are counted as failures and spend the same
// max_auth_failures budget.
func TestFASTWrongTokenLikeWrongPassword(t *testing.T) {
	f := newFastEnv(t, func(c *ws.Config) { c.MaxAuthFailures = 5 })
	res := f.passwordToken(uaID)
	ctx := ctxT(t)
	c, _ := f.sasl2()
	for _, o := range []client.SASL2{
		{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: res.Token + "x", UserAgentID: uaID},
		{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: res.Token, UserAgentID: "another-client"},
		{Mechanism: "HT-SHA-256-NONE", Username: "mallory", Token: res.Token, UserAgentID: uaID},
		{Username: "alice", Password: "wrong"},
	} {
		_, err := c.AuthSASL2(ctx, o)
		authFailure(t, err, "not-authorized")
	}
	if got := f.metric("xmpp_auth_total", "mechanism", "HT-SHA-256-NONE", "result", "failure"); got != 3 {
		t.Errorf("token failures counted %v, want 3", got)
	}
	_, err := c.AuthSASL2(ctx, client.SASL2{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: "guess", UserAgentID: uaID})
	authFailure(t, err, "not-authorized")
	expectStreamError(t, c, "policy-violation")
}

// TestFASTExpiry: a token is refused from its expiry on, like a wrong one.
func TestFASTExpiry(t *testing.T) {
	f := newFastEnv(t, func(c *ws.Config) { c.FASTTokenTTL = 2 * time.Hour })
	res := f.passwordToken(uaID)
	f.advance(2*time.Hour - time.Second)
	login, err := f.tokenLogin(uaID, res.Token, nil)
	if err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
	if login.Token == "" {
		t.Fatal("no rotation one second before expiry")
	}
	f.advance(time.Second)
	_, err = f.tokenLogin(uaID, res.Token, nil)
	authFailure(t, err, "not-authorized")
	if _, err := f.tokenLogin(uaID, login.Token, nil); err != nil {
		t.Fatalf("the token rotated before the expiry: %v", err)
	}
}

// TestFASTRotation: past half its lifetime a token login gets a new token;
// the old token stays valid until the new one is used (a client that lost
// the <success/> can still log in), and is refused from then on.
func TestFASTRotation(t *testing.T) {
	f := newFastEnv(t, func(c *ws.Config) { c.FASTTokenTTL = 10 * time.Hour })
	first := f.passwordToken(uaID)
	f.advance(6 * time.Hour)
	rot, err := f.tokenLogin(uaID, first.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Token == "" || rot.Token == first.Token {
		t.Fatalf("no rotation past half the lifetime: %q", rot.Token)
	}
	if want := f.now.Load().Add(10 * time.Hour).Truncate(time.Second); !rot.TokenExpiry.Equal(want) {
		t.Errorf("rotated expiry %v, want %v", rot.TokenExpiry, want)
	}
	// The rotated token was "lost": the old one still works (and offers a
	// newer token again, replacing the unused one).
	again, err := f.tokenLogin(uaID, first.Token, nil)
	if err != nil {
		t.Fatalf("old token before the new one was used: %v", err)
	}
	if again.Token == "" {
		t.Fatal("no rotation on the second login with the old token")
	}
	if _, err := f.tokenLogin(uaID, rot.Token, nil); err == nil {
		t.Error("the rotated token that was replaced unused still works")
	}
	if _, err := f.tokenLogin(uaID, again.Token, nil); err != nil {
		t.Fatalf("newest token: %v", err)
	}
	_, err = f.tokenLogin(uaID, first.Token, nil)
	authFailure(t, err, "not-authorized")

	// A client may also ask for a new token on a token login.
	asked, err := f.tokenLogin(uaID, again.Token, func(o *client.SASL2) { o.RequestToken = "HT-SHA-256-NONE" })
	if err != nil || asked.Token == "" {
		t.Fatalf("requested rotation: %v %q", err, asked.Token)
	}
}

// TestFASTInvalidate: a login with invalidate='true' succeeds, gets no new
// token, and the token is refused afterwards (the web client's sign-out).
func TestFASTInvalidate(t *testing.T) {
	f := newFastEnv(t, func(c *ws.Config) { c.FASTTokenTTL = 10 * time.Hour })
	res := f.passwordToken(uaID)
	f.advance(8 * time.Hour) // due for rotation: invalidate must still not rotate
	out, err := f.tokenLogin(uaID, res.Token, func(o *client.SASL2) { o.Invalidate = true; o.Bind = false })
	if err != nil {
		t.Fatalf("invalidating login: %v", err)
	}
	if out.Token != "" {
		t.Error("an invalidating login got a new token")
	}
	_, err = f.tokenLogin(uaID, res.Token, nil)
	authFailure(t, err, "not-authorized")
	if got := f.metric("xmpp_fast_tokens_total", "event", "invalidated"); got != 1 {
		t.Errorf("invalidations counted %v, want 1", got)
	}
}

// TestFASTNotWithoutUserAgent: no token for a client that gives no
// user-agent id (XEP-0484 requires one), and none when FAST is off.
func TestFASTNotWithoutUserAgent(t *testing.T) {
	f := newFastEnv(t, nil)
	c, _ := f.sasl2()
	res, err := c.AuthSASL2(ctxT(t), client.SASL2{Username: "alice", Password: "pw-alice", RequestToken: "HT-SHA-256-NONE"})
	if err != nil || res.Token != "" {
		t.Fatalf("login without user-agent: %v, token %q", err, res.Token)
	}
	off := newFastEnv(t, func(c *ws.Config) { c.FAST = false })
	c, _ = off.sasl2()
	res, err = c.AuthSASL2(ctxT(t), client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, RequestToken: "HT-SHA-256-NONE"})
	if err != nil || res.Token != "" {
		t.Fatalf("fast = false: %v, token %q", err, res.Token)
	}
	c, _ = off.sasl2()
	_, err = c.AuthSASL2(ctxT(t), client.SASL2{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: "x", UserAgentID: uaID})
	authFailure(t, err, "invalid-mechanism")
}

// TestOldSASLStillWorks: a client that knows nothing of SASL2 logs in as
// before, with the restart, on a stream that also offers SASL2.
func TestOldSASLStillWorks(t *testing.T) {
	e := newEnv(t, nil)
	e.sasl2() // the offer is there
	c := e.login("alice", "old")
	if c.JID().String() != "alice@localhost/old" {
		t.Fatalf("bound %s", c.JID())
	}
	if err := c.Ping(ctxT(t), "localhost"); err != nil {
		t.Fatal(err)
	}
}

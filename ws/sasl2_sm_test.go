package ws_test

import (
	"testing"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// TestSASL2Bind2InlineSM: one SASL2 round trip authenticates, binds and
// enables stream management with resumption (<enabled/> in <bound/>);
// after the socket drops, another SASL2 login resumes inline (<resumed/>
// in <success/>, Bind2 ignored) and gets exactly what it had not received,
// then the stream goes on.
func TestSASL2Bind2InlineSM(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMAckEvery = 100; c.SMAckInterval = 0 })
	events := smEvents(e)
	ctx := ctxT(t)
	c, auth := e.sasl2()
	inline := xmpp.Child(auth, "inline", xmpp.NSSASL2)
	if xmpp.Child(inline, "sm", nsSM) == nil {
		t.Fatalf("SASL2 inline lacks <sm/> (inline resumption): %s", xmpp.String(auth))
	}
	var offered bool
	for _, f := range xmpp.Child(xmpp.Child(inline, "bind", xmpp.NSBind2), "inline", xmpp.NSBind2).ChildElements() {
		offered = offered || f.SelectAttrValue("var", "") == nsSM
	}
	if !offered {
		t.Fatalf("Bind2 does not list %s as an inline feature: %s", nsSM, xmpp.String(auth))
	}
	res, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, Bind: true, BindTag: "app",
		BindInline: []*etree.Element{smEl("enable", "resume", "true")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundTrips != 2 {
		t.Errorf("%d round trips, want SCRAM's 2", res.RoundTrips)
	}
	en := xmpp.Child(res.Bound, "enabled", nsSM)
	if en == nil || en.SelectAttrValue("resume", "") != "true" || en.SelectAttrValue("id", "") == "" {
		t.Fatalf("<bound/> lacks a resumable <enabled/>: %s", xmpp.String(res.Success))
	}
	if xmpp.Child(res.Features, "sm", nsSM) != nil {
		t.Errorf("features offer <sm/> though it is on: %s", xmpp.String(res.Features))
	}
	full := res.AuthzID
	alice := &smClient{Client: c, t: t}
	bob := e.login("bob", "x")
	sendChat(t, bob, full, "m1")
	alice.expectBodies("m1")
	alice.CloseNow()
	awaitSM(t, events, "detached")
	sendChat(t, bob, full, "m2")
	sendChat(t, bob, full, "m3")

	c2, _ := e.sasl2()
	res2, err := c2.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, Bind: true,
		Extra: []*etree.Element{smEl("resume", "previd", en.SelectAttrValue("id", ""), "h", "1")}})
	if err != nil {
		t.Fatal(err)
	}
	r := xmpp.Child(res2.Success, "resumed", nsSM)
	if r == nil || r.SelectAttrValue("previd", "") != en.SelectAttrValue("id", "") {
		t.Fatalf("success lacks <resumed previd/>: %s", xmpp.String(res2.Success))
	}
	if res2.AuthzID != full || res2.Bound != nil {
		t.Errorf("resumed as %q (bound %v), want %s and no new bind", res2.AuthzID, res2.Bound != nil, full)
	}
	awaitSM(t, events, "resumed")
	again := &smClient{Client: c2, t: t, in: 1}
	again.expectBodies("m2", "m3")
	sendChat(t, bob, full, "m4")
	again.expectBodies("m4")
	if got := e.metric("xmpp_sm_resumptions_total", "result", "ok"); got != 1 {
		t.Errorf("resumptions ok %v, want 1", got)
	}

	// An unknown previd: <failed/> in <success/>, and Bind2 makes a new session.
	c3, _ := e.sasl2()
	res3, err := c3.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", Bind: true,
		Extra: []*etree.Element{smEl("resume", "previd", "nope", "h", "0")}})
	if err != nil {
		t.Fatal(err)
	}
	f := xmpp.Child(res3.Success, "failed", nsSM)
	if f == nil || xmpp.Child(f, "item-not-found", xmpp.NSStanzas) == nil || res3.Bound == nil || res3.AuthzID == full {
		t.Fatalf("failed resume: %s", xmpp.String(res3.Success))
	}
}

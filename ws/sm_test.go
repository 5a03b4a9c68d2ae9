package ws_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

const nsSM = "urn:xmpp:sm:3"

// smEvents makes the endpoint's stream-management events visible on a
// channel, in order.
func smEvents(e *env) <-chan string {
	ch := make(chan string, 64)
	ws.SetSMHook(e.srv, func(ev string) { ch <- ev })
	return ch
}

func awaitSM(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	ctx := ctxT(t)
	for {
		select {
		case ev := <-ch:
			if ev == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no stream-management event %q", want)
		}
	}
}

// smClient is a test client that counts the stanzas it receives, as a
// XEP-0198 client must, and answers nothing by itself.
type smClient struct {
	*client.Client
	t  *testing.T
	in uint32 // stanzas received: our h
}

func (c *smClient) send(el *etree.Element) {
	c.t.Helper()
	if err := c.Send(ctxT(c.t), el); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next element, counting it when it is a stanza.
func (c *smClient) next() *etree.Element {
	c.t.Helper()
	el, err := c.Next(ctxT(c.t))
	if err != nil {
		c.t.Fatalf("next: %v", err)
	}
	if el.Space == "" || el.NamespaceURI() == xmpp.NSClient {
		switch el.Tag {
		case "message", "presence", "iq":
			c.in++
		}
	}
	return el
}

// nextStanza skips <r/> and <a/> and returns the next stanza.
func (c *smClient) nextStanza() *etree.Element {
	c.t.Helper()
	for {
		el := c.next()
		if el.NamespaceURI() != nsSM {
			return el
		}
	}
}

// nextSM returns the next stream-management element, failing on a stanza.
func (c *smClient) nextSM(tag string) *etree.Element {
	c.t.Helper()
	el := c.next()
	if el.Tag != tag || el.NamespaceURI() != nsSM {
		c.t.Fatalf("got %s, want <%s xmlns='%s'/>", xmpp.String(el), tag, nsSM)
	}
	return el
}

func smEl(tag string, attrs ...string) *etree.Element {
	el := xmpp.Elem(tag, nsSM)
	for i := 0; i+1 < len(attrs); i += 2 {
		el.CreateAttr(attrs[i], attrs[i+1])
	}
	return el
}

func hAttr(t *testing.T, el *etree.Element) uint32 {
	t.Helper()
	h, err := strconv.ParseUint(el.SelectAttrValue("h", ""), 10, 32)
	if err != nil {
		t.Fatalf("%s: bad h: %v", xmpp.String(el), err)
	}
	return uint32(h)
}

// smLogin logs in and enables stream management (with resumption when
// asked), returning the client and the <enabled/>.
func (e *env) smLogin(user, resource string, resume bool) (*smClient, *etree.Element) {
	e.t.Helper()
	c := &smClient{Client: e.login(user, resource), t: e.t}
	en := smEl("enable")
	if resume {
		en.CreateAttr("resume", "true")
	}
	c.send(en)
	return c, c.nextSM("enabled")
}

// authenticated dials, authenticates and restarts the stream, stopping
// before bind: where a resume goes. It returns the post-SASL features.
func (e *env) authenticated(user string) (*smClient, *etree.Element) {
	e.t.Helper()
	ctx := ctxT(e.t)
	c := e.dial()
	if _, err := c.Open(ctx, "localhost"); err != nil {
		e.t.Fatal(err)
	}
	if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", user, "pw-"+user); err != nil {
		e.t.Fatal(err)
	}
	f, err := c.Open(ctx, "localhost")
	if err != nil {
		e.t.Fatal(err)
	}
	return &smClient{Client: c, t: e.t}, f
}

// resume sends <resume/> on a fresh authenticated stream and returns the
// client and the answer (<resumed/> or <failed/>).
func (e *env) resume(user, previd string, h uint32) (*smClient, *etree.Element) {
	e.t.Helper()
	c, _ := e.authenticated(user)
	c.send(smEl("resume", "previd", previd, "h", strconv.FormatUint(uint64(h), 10)))
	el := c.next()
	if el.NamespaceURI() != nsSM {
		e.t.Fatalf("answer to resume: %s", xmpp.String(el))
	}
	return c, el
}

// probeEpoch is sessionLog.epochOf for a resumed client, which never
// bound and so does not know its JID: the stanza must come from want.
func probeEpoch(t *testing.T, l *sessionLog, c *smClient, want string) uint64 {
	t.Helper()
	id := fmt.Sprintf("probe-%d", epochProbes.Add(1))
	m := client.Message("log.localhost", "chat", "which session?")
	m.CreateAttr("id", id)
	c.send(m)
	ev := l.await(t, "probe "+id, func(ev sessionEvent) bool { return ev.id == id })
	if ev.jid.String() != want {
		t.Fatalf("probe from %s, want %s", ev.jid, want)
	}
	return ev.session
}

func body(el *etree.Element) string { return textOf(el, "body", xmpp.NSClient) }

func sendChat(t *testing.T, from *client.Client, to, text string) {
	t.Helper()
	if err := from.Send(ctxT(t), client.Message(to, "chat", text)); err != nil {
		t.Fatal(err)
	}
}

// expectBodies reads stanzas and checks they are messages with these
// bodies, in order.
func (c *smClient) expectBodies(want ...string) {
	c.t.Helper()
	for _, w := range want {
		el := c.nextStanza()
		if el.Tag != "message" || body(el) != w {
			c.t.Fatalf("got %s, want message %q", xmpp.String(el), w)
		}
	}
}

// pingServer sends an iq to the server and reads up to its result: every
// stanza before it is returned (nothing else may arrive in between).
func (c *smClient) pingServer() []*etree.Element {
	c.t.Helper()
	iq := client.IQ("get", "localhost", xmpp.Elem("ping", xmpp.NSPing))
	id := iq.SelectAttrValue("id", "")
	c.send(iq)
	var before []*etree.Element
	for {
		el := c.nextStanza()
		if el.Tag == "iq" && el.SelectAttrValue("id", "") == id {
			return before
		}
		before = append(before, el)
	}
}

func TestSMEnable(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMResumeTimeout = time.Minute })
	c, f := e.authenticated("alice")
	if xmpp.Child(f, "sm", nsSM) == nil {
		t.Fatalf("post-SASL features lack <sm/>: %s", xmpp.String(f))
	}
	// Before bind, <enable/> is refused without ending the stream.
	c.send(smEl("enable"))
	if el := c.nextSM("failed"); xmpp.Child(el, "unexpected-request", xmpp.NSStanzas) == nil {
		t.Fatalf("enable before bind: %s", xmpp.String(el))
	}
	if _, err := c.Bind(ctxT(t), "phone"); err != nil {
		t.Fatal(err)
	}
	c.send(smEl("enable", "resume", "true", "max", "30"))
	en := c.nextSM("enabled")
	if en.SelectAttrValue("id", "") == "" || en.SelectAttrValue("resume", "") != "true" || en.SelectAttrValue("max", "") != "30" {
		t.Fatalf("enabled: %s (want an id, resume='true', the client's lower max='30')", xmpp.String(en))
	}
	c.send(smEl("enable"))
	c.nextSM("failed")

	// Without resume: no id, and no detach when the socket drops.
	d, en2 := e.smLogin("bob", "x", false)
	if en2.SelectAttrValue("id", "") != "" || en2.SelectAttrValue("resume", "") != "" {
		t.Fatalf("enabled without resume: %s", xmpp.String(en2))
	}
	d.pingServer()
	if got := e.metric("xmpp_sm_enabled_total"); got != 2 {
		t.Fatalf("xmpp_sm_enabled_total %v, want 2", got)
	}

	// <r/> before enabling is a protocol violation.
	g := &smClient{Client: e.login("carol", "x"), t: t}
	g.send(smEl("r"))
	expectStreamError(t, g.Client, "unsupported-stanza-type")
}

// TestSMAckCounting: both sides count stanzas and never nonzas, the server
// asks for an ack every SMAckEvery stanzas, acks free the queue, counters
// wrap at 2^32, and an h beyond what was sent ends the stream.
func TestSMAckCounting(t *testing.T) {
	for _, start := range []uint32{0, 1<<32 - 4} {
		t.Run(fmt.Sprint("start=", start), func(t *testing.T) {
			e := newEnv(t, func(c *ws.Config) { c.SMAckEvery = 3; c.SMAckInterval = 0 })
			ws.SetSMStart(e.srv, start)
			alice, _ := e.smLogin("alice", "phone", true)
			alice.in = start
			bob := e.login("bob", "x")
			for i := 1; i <= 7; i++ {
				sendChat(t, bob, "alice@localhost/phone", fmt.Sprint("m", i))
			}
			// m1 m2 m3 <r/> m4 m5 m6 <r/> m7
			for i := 1; i <= 7; i++ {
				el := alice.next()
				if body(el) != fmt.Sprint("m", i) {
					t.Fatalf("got %s, want m%d", xmpp.String(el), i)
				}
				if i%3 == 0 {
					alice.nextSM("r")
				}
			}
			if got := e.metric("xmpp_sm_unacked_bytes"); got <= 0 {
				t.Fatalf("unacked bytes %v with 7 stanzas unacknowledged", got)
			}
			alice.send(smEl("a", "h", strconv.FormatUint(uint64(alice.in), 10)))
			// Three stanzas from alice (two messages, one iq), interleaved with
			// nonzas, are what the server reports handled.
			alice.send(smEl("r"))
			if h := hAttr(t, alice.nextSM("a")); h != start {
				t.Fatalf("server h %d before any stanza, want %d", h, start)
			}
			sendChat(t, alice.Client, "bob@localhost/x", "one")
			sendChat(t, alice.Client, "bob@localhost/x", "two")
			if before := alice.pingServer(); len(before) != 0 {
				t.Fatalf("unexpected stanzas %v", before)
			}
			alice.send(smEl("r"))
			if h, want := hAttr(t, alice.nextSM("a")), start+3; h != want {
				t.Fatalf("server h %d, want %d", h, want)
			}
			// The ping's result was the 8th stanza to alice: ack it all.
			alice.send(smEl("a", "h", strconv.FormatUint(uint64(alice.in), 10)))
			alice.send(smEl("r"))
			alice.nextSM("a")
			if got := e.metric("xmpp_sm_unacked_bytes"); got != 0 {
				t.Fatalf("unacked bytes %v after acking everything", got)
			}
			alice.send(smEl("a", "h", strconv.FormatUint(uint64(alice.in+1), 10)))
			expectStreamError(t, alice.Client, "undefined-condition")
		})
	}
}

// TestSMResume: a socket closed abruptly leaves the session detached; what
// was not acknowledged before the drop and what arrived while detached is
// resent once, in order, on a resume; the session keeps its JID and epoch
// and never ends.
func TestSMResume(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMAckEvery = 100; c.SMAckInterval = 0 })
	events := smEvents(e)
	log := watchSessions(e)
	alice, en := e.smLogin("alice", "phone", true)
	epoch := log.epochOf(t, alice.Client)
	bob := e.login("bob", "x")
	for i := 1; i <= 3; i++ {
		sendChat(t, bob, "alice@localhost/phone", fmt.Sprint("m", i))
	}
	alice.expectBodies("m1", "m2", "m3")
	alice.send(smEl("a", "h", "1")) // acknowledges m1 only
	alice.send(smEl("r"))
	// One stanza handled so far: the epoch probe.
	if h := hAttr(t, alice.nextSM("a")); h != 1 {
		t.Fatalf("server h %d, want 1", h)
	}
	alice.CloseNow()
	awaitSM(t, events, "detached")
	if got := e.metric("xmpp_sm_detached_sessions"); got != 1 {
		t.Fatalf("detached gauge %v, want 1", got)
	}
	for i := 4; i <= 8; i++ {
		sendChat(t, bob, "alice@localhost/phone", fmt.Sprint("m", i))
	}
	// bob got no error: the detached session took them.
	bp := &smClient{Client: bob, t: t}
	if before := bp.pingServer(); len(before) != 0 {
		t.Fatalf("bob got %s while alice was detached", xmpp.String(before[0]))
	}
	// The client saw m1..m2 before the drop (m3 was lost on the way).
	c, res := e.resume("alice", en.SelectAttrValue("id", ""), 2)
	if res.Tag != "resumed" || res.SelectAttrValue("previd", "") != en.SelectAttrValue("id", "") || hAttr(t, res) != 1 {
		t.Fatalf("resume answer %s, want <resumed previd h='1'/>", xmpp.String(res))
	}
	c.in = 2
	awaitSM(t, events, "resumed")
	c.expectBodies("m3", "m4", "m5", "m6", "m7", "m8")
	if before := c.pingServer(); len(before) != 0 {
		t.Fatalf("after the resent stanzas: %s", xmpp.String(before[0]))
	}
	sendChat(t, bob, "alice@localhost/phone", "m9")
	c.expectBodies("m9")
	if got := probeEpoch(t, log, c, "alice@localhost/phone"); got != epoch {
		t.Fatalf("resumed session's epoch %d, want %d", got, epoch)
	}
	for _, ev := range log.snapshot() {
		if ev.ended {
			t.Fatalf("a session ended: %+v", ev)
		}
	}
	if got := e.metric("xmpp_sm_resumptions_total", "result", "ok"); got != 1 {
		t.Fatalf("resumptions ok %v, want 1", got)
	}
	if got := e.metric("xmpp_sm_detached_sessions"); got != 0 {
		t.Fatalf("detached gauge %v, want 0", got)
	}
	// The stream goes on counting from where it was: m3..m9 and the ping
	// result are 8 stanzas after h=2.
	c.send(smEl("a", "h", strconv.FormatUint(uint64(c.in), 10)))
	c.send(smEl("r"))
	c.nextSM("a")
	if got := e.metric("xmpp_sm_unacked_bytes"); got != 0 {
		t.Fatalf("unacked bytes %v after acking everything", got)
	}
}

// TestSMResumeRefused: an expired, unknown, another user's or gracefully
// closed stream is not resumed.
func TestSMResumeRefused(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMResumeTimeout = time.Millisecond })
	events := smEvents(e)
	alice, en := e.smLogin("alice", "phone", true)
	alice.CloseNow()
	awaitSM(t, events, "detached")
	awaitSM(t, events, "ended")
	failed := func(user, id, result string) {
		t.Helper()
		before := e.metric("xmpp_sm_resumptions_total", "result", result)
		_, res := e.resume(user, id, 0)
		if res.Tag != "failed" || xmpp.Child(res, "item-not-found", xmpp.NSStanzas) == nil {
			t.Fatalf("resume of %s: %s, want <failed><item-not-found/></failed>", id, xmpp.String(res))
		}
		if got := e.metric("xmpp_sm_resumptions_total", "result", result); got != before+1 {
			t.Fatalf("resumptions %s %v, want %v", result, got, before+1)
		}
	}
	failed("alice", en.SelectAttrValue("id", ""), "expired")
	failed("alice", "no-such-stream", "unknown")

	e2 := newEnv(t, func(c *ws.Config) { c.SMResumeTimeout = time.Minute })
	events2 := smEvents(e2)
	a2, en2 := e2.smLogin("alice", "phone", true)
	a2.CloseNow()
	awaitSM(t, events2, "detached")
	_, res := e2.resume("bob", en2.SelectAttrValue("id", ""), 0)
	if res.Tag != "failed" {
		t.Fatalf("bob resumed alice's stream: %s", xmpp.String(res))
	}
	// A graceful <close/> ends the session: nothing to resume.
	b, en3 := e2.smLogin("bob", "x", true)
	if err := b.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, res = e2.resume("bob", en3.SelectAttrValue("id", ""), 0)
	if res.Tag != "failed" {
		t.Fatalf("resumed after <close/>: %s", xmpp.String(res))
	}
	// alice's own stream is still resumable after bob's attempt.
	c, res := e2.resume("alice", en2.SelectAttrValue("id", ""), 0)
	if res.Tag != "resumed" {
		t.Fatalf("alice's resume: %s", xmpp.String(res))
	}
	c.pingServer()
}

// TestSMExpiryReleases: what a session never acknowledged when it expires
// is handled as for a resource that went away: a 1:1 message to that
// resource goes to the user's other resource, one to the bare JID with no
// other resource is bounced, an iq get is answered with an error, presence
// is dropped; then the session ends the normal way.
func TestSMExpiryReleases(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMResumeTimeout = time.Minute; c.SMAckInterval = 0 })
	events := smEvents(e)
	log := watchSessions(e)
	alice, en := e.smLogin("alice", "phone", true)
	epoch := log.epochOf(t, alice.Client)
	bob := &smClient{Client: e.login("bob", "x"), t: t}
	m := client.Message("alice@localhost/phone", "chat", "to the phone")
	m.CreateAttr("id", "m-full")
	bob.send(m)
	iq := client.IQ("get", "alice@localhost/phone", xmpp.Elem("query", xmpp.NSVersion))
	iq.CreateAttr("id", "iq-1")
	bob.send(iq)
	p := xmpp.Elem("presence", xmpp.NSClient)
	p.CreateAttr("to", "alice@localhost/phone")
	bob.send(p)
	alice.nextStanza()
	alice.nextStanza()
	alice.nextStanza() // all three reached alice, none acknowledged
	alice.CloseNow()
	awaitSM(t, events, "detached")
	laptop := &smClient{Client: e.login("alice", "laptop"), t: t}
	m2 := client.Message("alice@localhost", "chat", "to the account")
	m2.CreateAttr("id", "m-bare")
	bob.send(m2)
	if before := bob.pingServer(); len(before) != 0 {
		t.Fatalf("bob got %s while alice was detached", xmpp.String(before[0]))
	}
	// The bare message reached the laptop too; the phone's copy waits.
	laptop.expectBodies("to the account")

	// End it now: a new bind of the same full JID replaces it, and its
	// stream can no longer be resumed.
	e.login("alice", "phone")
	log.awaitEnd(t, xmpp.MustParseJID("alice@localhost/phone"), epoch)
	awaitSM(t, events, "ended")

	got := laptop.nextStanza()
	if body(got) != "to the phone" || got.SelectAttrValue("to", "") != "alice@localhost/phone" {
		t.Fatalf("laptop got %s, want the phone's unacknowledged message", xmpp.String(got))
	}
	// bob: the iq answered with an error; the bare message not bounced
	// (the laptop had it); the presence dropped.
	el := bob.nextStanza()
	if el.Tag != "iq" || el.SelectAttrValue("id", "") != "iq-1" || el.SelectAttrValue("type", "") != "error" {
		t.Fatalf("bob got %s, want the iq's error", xmpp.String(el))
	}
	if before := bob.pingServer(); len(before) != 0 {
		t.Fatalf("bob got more: %s", xmpp.String(before[0]))
	}
	if _, res := e.resume("alice", en.SelectAttrValue("id", ""), 0); res.Tag != "failed" {
		t.Fatalf("resumed a replaced session: %s", xmpp.String(res))
	}
}

// TestSMExpiryBounces: with no other resource online, an unacknowledged
// 1:1 message is bounced to its sender with recipient-unavailable when
// the detached session expires.
func TestSMExpiryBounces(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMResumeTimeout = time.Minute })
	events := smEvents(e)
	alice, _ := e.smLogin("alice", "phone", true)
	bob := &smClient{Client: e.login("bob", "x"), t: t}
	m := client.Message("alice@localhost", "chat", "hello")
	m.CreateAttr("id", "m-1")
	bob.send(m)
	alice.expectBodies("hello")
	alice.CloseNow()
	awaitSM(t, events, "detached")
	m = client.Message("alice@localhost/phone", "chat", "while away")
	m.CreateAttr("id", "m-2")
	bob.send(m)
	bob.pingServer()
	// The account is deleted: the detached session ends at once.
	e.srv.CloseUser(xmpp.MustParseJID("alice@localhost"))
	awaitSM(t, events, "ended")
	for _, id := range []string{"m-1", "m-2"} {
		el := bob.nextStanza()
		if el.Tag != "message" || el.SelectAttrValue("type", "") != "error" || el.SelectAttrValue("id", "") != id {
			t.Fatalf("bob got %s, want the bounce of %s", xmpp.String(el), id)
		}
		if c := client.ErrorOf(el); c == nil || c.Condition != "recipient-unavailable" {
			t.Fatalf("bounce of %s: %s, want recipient-unavailable", id, xmpp.String(el))
		}
	}
}

// TestSMResumeTakesOver: a resume while the old connection is still
// attached (the server has not noticed the drop) closes the old socket and
// takes the session.
func TestSMResumeTakesOver(t *testing.T) {
	e := newEnv(t, nil)
	log := watchSessions(e)
	alice, en := e.smLogin("alice", "phone", true)
	epoch := log.epochOf(t, alice.Client)
	c, res := e.resume("alice", en.SelectAttrValue("id", ""), 0)
	if res.Tag != "resumed" {
		t.Fatalf("takeover: %s", xmpp.String(res))
	}
	select {
	case <-alice.Done():
	case <-ctxT(t).Done():
		t.Fatal("the old connection was not closed")
	}
	if got := probeEpoch(t, log, c, "alice@localhost/phone"); got != epoch {
		t.Fatalf("epoch %d after takeover, want %d", got, epoch)
	}
}

// TestSMUnackedBound: a client that never acknowledges is closed with
// policy-violation once its unacknowledged stanzas pass SMMaxUnacked.
func TestSMUnackedBound(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMMaxUnacked = 4096; c.SMAckInterval = 0 })
	alice, _ := e.smLogin("alice", "phone", false)
	bob := e.login("bob", "x")
	text := string(make([]byte, 0, 200))
	for range 200 {
		text += "x"
	}
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		for i := 0; i < 100 && ctx.Err() == nil; i++ {
			bob.Send(ctx, client.Message("alice@localhost/phone", "chat", text))
		}
	}()
	for {
		el, err := alice.Next(ctxT(t))
		if err != nil {
			t.Fatalf("alice: %v after %d messages", err, n)
		}
		if se := client.StreamErrorOf(el); se != nil {
			if se.Condition != "policy-violation" {
				t.Fatalf("stream error %s, want policy-violation", se.Condition)
			}
			break
		}
		if el.Tag == "message" {
			n++
		}
	}
	if n > 4096/200 {
		t.Fatalf("%d messages of 200 bytes arrived under a 4096-byte bound", n)
	}
	if got := e.metric("xmpp_slow_consumer_closes_total", "reason", "sm_max_unacked"); got != 1 {
		t.Fatalf("sm_max_unacked closes %v, want 1", got)
	}
}

// TestSMAckInterval: with fewer stanzas than SMAckEvery, the server still
// asks for an ack once SMAckInterval has passed after one.
func TestSMAckInterval(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMAckEvery = 100; c.SMAckInterval = time.Millisecond })
	alice, _ := e.smLogin("alice", "phone", false)
	bob := e.login("bob", "x")
	sendChat(t, bob, "alice@localhost/phone", "lonely")
	alice.expectBodies("lonely")
	alice.nextSM("r")
	alice.send(smEl("a", "h", "1"))
	alice.send(smEl("r"))
	alice.nextSM("a")
	if got := e.metric("xmpp_sm_unacked_bytes"); got != 0 {
		t.Fatalf("unacked bytes %v after the ack", got)
	}
}

// TestSMShutdownEndsDetached: Shutdown ends detached sessions too, and
// their watchers hear of it before it returns.
func TestSMShutdownEndsDetached(t *testing.T) {
	e := newEnv(t, nil)
	events := smEvents(e)
	log := watchSessions(e)
	alice, _ := e.smLogin("alice", "phone", true)
	epoch := log.epochOf(t, alice.Client)
	alice.CloseNow()
	awaitSM(t, events, "detached")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range log.snapshot() {
		if ev.ended && ev.session == epoch {
			found = true
		}
	}
	if !found {
		t.Fatal("Shutdown returned before the detached session ended")
	}
	if got := e.metric("xmpp_sm_detached_sessions"); got != 0 {
		t.Fatalf("detached gauge %v after Shutdown", got)
	}
}

// TestSMDetachedBound: a detached session takes deliveries up to
// SMMaxUnacked; the one that would pass it is refused and the session ends
// at once, bouncing what it held.
func TestSMDetachedBound(t *testing.T) {
	e := newEnv(t, func(c *ws.Config) { c.SMMaxUnacked = 2048 })
	events := smEvents(e)
	alice, en := e.smLogin("alice", "phone", true)
	alice.CloseNow()
	awaitSM(t, events, "detached")
	bob := &smClient{Client: e.login("bob", "x"), t: t}
	pad := strings.Repeat("x", 300)
	sent := 0
	var answers []*etree.Element
	for ; sent < 20 && len(answers) == 0; sent++ {
		m := client.Message("alice@localhost/phone", "chat", pad)
		m.CreateAttr("id", fmt.Sprint("d", sent))
		bob.send(m)
		answers = bob.pingServer()
	}
	refused := sent - 1 // the message whose answer came first
	if refused == 0 || len(answers) == 0 {
		t.Fatalf("%d messages sent, answers %d, under a 2048-byte bound", sent, len(answers))
	}
	awaitSM(t, events, "ended")
	// The refusal (on bob's own reader) and the bounces (from the
	// session's end) may interleave; the bounces keep their order.
	for len(answers) < refused+1 {
		answers = append(answers, bob.nextStanza())
	}
	next := 0
	for _, el := range answers {
		c := client.ErrorOf(el)
		switch {
		case c != nil && c.Condition == "service-unavailable" && el.SelectAttrValue("id", "") == fmt.Sprint("d", refused):
		case c != nil && c.Condition == "recipient-unavailable" && el.SelectAttrValue("id", "") == fmt.Sprint("d", next):
			next++
		default:
			t.Fatalf("got %s, want the refusal of d%d or the bounce of d%d", xmpp.String(el), refused, next)
		}
	}
	if next != refused {
		t.Fatalf("%d bounces, want %d", next, refused)
	}
	if got := e.metric("xmpp_slow_consumer_closes_total", "reason", "sm_max_unacked"); got != 1 {
		t.Fatalf("sm_max_unacked closes %v, want 1", got)
	}
	if _, res := e.resume("alice", en.SelectAttrValue("id", ""), 0); res.Tag != "failed" {
		t.Fatalf("resumed an overflowed session: %s", xmpp.String(res))
	}
}

// TestSMCloseReleases: a stream-managed session that ends with <close/>
// does not detach, and what it never acknowledged is released at once
// (bounced here: no other resource is online).
func TestSMCloseReleases(t *testing.T) {
	e := newEnv(t, nil)
	alice, _ := e.smLogin("alice", "phone", true)
	bob := &smClient{Client: e.login("bob", "x"), t: t}
	m := client.Message("alice@localhost/phone", "chat", "read, never acked")
	m.CreateAttr("id", "c1")
	bob.send(m)
	alice.expectBodies("read, never acked")
	if err := alice.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	el := bob.nextStanza()
	if c := client.ErrorOf(el); c == nil || c.Condition != "recipient-unavailable" || el.SelectAttrValue("id", "") != "c1" {
		t.Fatalf("bob got %s, want the bounce of c1", xmpp.String(el))
	}
	if got := e.metric("xmpp_sm_detached_sessions"); got != 0 {
		t.Fatalf("detached gauge %v after <close/>", got)
	}
}

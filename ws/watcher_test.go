package ws_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// sessionLog is a service on log.localhost and a session watcher in one,
// recording in a single order the stanzas it is sent (with their bind
// epoch) and the ends of sessions: what a room hub would see.
type sessionLog struct {
	router *ws.Router

	mu      sync.Mutex
	events  []sessionEvent
	changed chan struct{} // a token after each event
}

type sessionEvent struct {
	ended   bool
	jid     xmpp.JID
	session uint64
	id      string // the stanza's; "" for an end
	online  bool   // for an end: whether the JID was still routed when it was reported
}

func watchSessions(e *env) *sessionLog {
	l := &sessionLog{router: e.srv.Router(), changed: make(chan struct{}, 1)}
	e.srv.Router().RegisterService("localhost", "log.localhost", "", l)
	e.srv.Router().AddSessionWatcher(l)
	return l
}

func (l *sessionLog) HandleStanza(_ context.Context, st *xmpp.Stanza) {
	l.add(sessionEvent{jid: st.From, session: st.Session, id: st.ID})
}

func (l *sessionLog) SessionEnded(full xmpp.JID, session uint64) {
	l.add(sessionEvent{ended: true, jid: full, session: session, online: l.router.Online(full)})
}

func (l *sessionLog) add(ev sessionEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *sessionLog) snapshot() []sessionEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sessionEvent(nil), l.events...)
}

// await waits until an event matches.
func (l *sessionLog) await(t *testing.T, what string, match func(sessionEvent) bool) sessionEvent {
	t.Helper()
	ctx := ctxT(t)
	for {
		for _, ev := range l.snapshot() {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-l.changed:
		case <-ctx.Done():
			t.Fatalf("no %s: %+v", what, l.snapshot())
		}
	}
}

// awaitEnd waits for the end of the session bound to full with the epoch.
func (l *sessionLog) awaitEnd(t *testing.T, full xmpp.JID, epoch uint64) sessionEvent {
	t.Helper()
	return l.await(t, fmt.Sprintf("end of %s (%d)", full, epoch), func(ev sessionEvent) bool {
		return ev.ended && ev.session == epoch
	})
}

var epochProbes atomic.Int64

// epochOf has c send a stanza to the log and returns the epoch it carried.
func (l *sessionLog) epochOf(t *testing.T, c *client.Client) uint64 {
	t.Helper()
	id := fmt.Sprintf("probe-%d", epochProbes.Add(1))
	m := client.Message("log.localhost", "chat", "which session?")
	m.CreateAttr("id", id)
	if err := c.Send(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	ev := l.await(t, "probe "+id, func(ev sessionEvent) bool { return ev.id == id })
	if ev.jid != c.JID() {
		t.Fatalf("probe from %s, want %s", ev.jid, c.JID())
	}
	if ev.session == 0 {
		t.Fatalf("stanza from %s carries no session", c.JID())
	}
	return ev.session
}

// sessions is what a test knows of the bound sessions it made: epoch →
// full JID. add refuses an epoch seen before.
type sessions map[uint64]xmpp.JID

func (s sessions) add(t *testing.T, epoch uint64, full xmpp.JID) {
	t.Helper()
	if prev, dup := s[epoch]; dup {
		t.Fatalf("%s has epoch %d, already %s's", full, epoch, prev)
	}
	s[epoch] = full
}

// shutdownAndCheck shuts the endpoint down (Shutdown returns once every
// session ended and was reported) and checks the log: each session known
// ended exactly once, under its own JID; nothing else ended (no unbound
// connection, no invented epoch); and no session's stanza reached the
// service after its end was reported.
func (l *sessionLog) shutdownAndCheck(t *testing.T, e *env, known sessions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ends := map[uint64]int{}
	for _, ev := range l.snapshot() {
		if !ev.ended {
			if ends[ev.session] > 0 {
				t.Errorf("stanza %s of session %d handed over after its end", ev.id, ev.session)
			}
			continue
		}
		ends[ev.session]++
		full, ok := known[ev.session]
		switch {
		case !ok:
			t.Errorf("end of %s with unknown epoch %d", ev.jid, ev.session)
		case ev.jid != full:
			t.Errorf("end of epoch %d reported for %s, want %s", ev.session, ev.jid, full)
		}
	}
	for epoch, full := range known {
		if n := ends[epoch]; n != 1 {
			t.Errorf("end of %s (%d) reported %d times, want once", full, epoch, n)
		}
	}
}

// TestSessionWatcherEndReasons: however a bound session ends, its watcher
// hears of it once, with its JID and epoch, after every stanza it sent was
// handed over and once it is no longer routed. A bystander of the same
// user, and a connection that never bound, are not reported before
// Shutdown (which reports the bystander and not the unbound connection).
func TestSessionWatcherEndReasons(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, e *env, c *client.Client)
	}{
		{"client closes the stream", func(t *testing.T, e *env, c *client.Client) {
			if err := c.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"client drops the connection", func(t *testing.T, e *env, c *client.Client) { c.CloseNow() }},
		{"stream error", func(t *testing.T, e *env, c *client.Client) {
			c.SendRaw(ctxT(t), "<message xmlns='jabber:client' from='bob@localhost/x' to='carol@localhost'/>")
			expectStreamError(t, c, "invalid-from")
		}},
		{"account deleted", func(t *testing.T, e *env, c *client.Client) {
			e.srv.CloseUser(xmpp.MustParseJID("carol@localhost"))
			expectStreamError(t, c, "not-authorized")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			l := watchSessions(e)
			known := sessions{}
			alice := e.login("alice", "a")
			alice2 := e.login("alice", "b")
			e.opened() // never binds: never reported
			// "account deleted" ends every session of carol's; the others
			// end alice/a alone.
			victims := []*client.Client{alice}
			bystanders := []*client.Client{alice2}
			if tc.name == "account deleted" {
				carol1, carol2 := e.login("carol", "c1"), e.login("carol", "c2")
				victims = []*client.Client{carol1, carol2}
				bystanders = []*client.Client{alice, alice2}
			}
			epochs := map[*client.Client]uint64{}
			for _, c := range append(append([]*client.Client(nil), victims...), bystanders...) {
				epochs[c] = l.epochOf(t, c)
				known.add(t, epochs[c], c.JID())
			}
			// Stanzas in flight when the session ends are handed over first.
			for i := range 20 {
				m := client.Message("log.localhost", "chat", "x")
				m.CreateAttr("id", fmt.Sprintf("tail-%d", i))
				victims[0].Send(ctxT(t), m)
			}
			tc.end(t, e, victims[0])
			for _, c := range victims {
				ev := l.awaitEnd(t, c.JID(), epochs[c])
				if ev.jid != c.JID() {
					t.Errorf("end of %s reported as %s", c.JID(), ev.jid)
				}
				if ev.online {
					t.Errorf("%s was still routed when its end was reported", c.JID())
				}
			}
			for _, c := range bystanders {
				if err := c.Ping(ctxT(t), "localhost"); err != nil {
					t.Fatalf("bystander %s: %v", c.JID(), err)
				}
				for _, ev := range l.snapshot() {
					if ev.ended && ev.session == epochs[c] {
						t.Errorf("bystander %s reported ended", c.JID())
					}
				}
			}
			l.shutdownAndCheck(t, e, known)
		})
	}
}

// TestSessionWatcherShutdown: Shutdown returns only after every session's
// end was reported.
func TestSessionWatcherShutdown(t *testing.T) {
	e := newEnv(t, nil)
	l := watchSessions(e)
	known := sessions{}
	for _, c := range []*client.Client{e.login("alice", "a"), e.login("alice", "b"), e.login("bob", "b")} {
		known.add(t, l.epochOf(t, c), c.JID())
	}
	l.shutdownAndCheck(t, e, known)
}

// TestSessionWatcherReplacedResource: a session replaced by a newer one
// with the same full JID is reported ended with its own epoch; the newer
// one has another and is not reported until it ends itself.
func TestSessionWatcherReplacedResource(t *testing.T) {
	e := newEnv(t, nil)
	l := watchSessions(e)
	known := sessions{}
	old := e.login("alice", "phone")
	oldEpoch := l.epochOf(t, old)
	known.add(t, oldEpoch, old.JID())
	newer := e.login("alice", "phone")
	expectStreamError(t, old, "conflict")
	ev := l.awaitEnd(t, old.JID(), oldEpoch)
	if ev.jid != old.JID() {
		t.Errorf("replaced session reported as %s", ev.jid)
	}
	newEpoch := l.epochOf(t, newer)
	known.add(t, newEpoch, newer.JID()) // fails if the epoch is the old one
	for _, ev := range l.snapshot() {
		if ev.ended && ev.session == newEpoch {
			t.Error("the new session was reported ended")
		}
	}
	l.shutdownAndCheck(t, e, known)
}

// TestSessionWatcherSlowConsumer: a session closed for its backlog (past
// max_pending) is reported like any other end.
func TestSessionWatcherSlowConsumer(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) {
		c.MaxPending = 64 << 10
		c.StallTimeout = 0
		c.WriteTimeout = time.Minute
	}, smallBuffers)
	l := watchSessions(e)
	known := sessions{}
	ctx := ctxT(t)
	release := make(chan struct{})
	bob := e.loginSmall("bob", "b", func(b []byte) {
		if strings.Contains(string(b), "<message") {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	alice := e.login("alice", "a")
	bobEpoch := l.epochOf(t, bob)
	known.add(t, bobEpoch, bob.JID())
	known.add(t, l.epochOf(t, alice), alice.JID())
	floodUntilBounce(t, alice, "bob@localhost/b", strings.Repeat("p", 4<<10))
	close(release) // the session's close handshake needs bob's reader
	if ev := l.awaitEnd(t, bob.JID(), bobEpoch); ev.online {
		t.Error("bob was still routed when his end was reported")
	}
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "max_pending"); c != 1 {
		t.Errorf("max_pending closes %v, want 1", c)
	}
	l.shutdownAndCheck(t, e, known)
}

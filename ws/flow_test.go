package ws_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// The flow-control tests fix the socket buffers, so that what a client
// does not read comes back to the server's queue after a few hundred KiB
// instead of after the tens of MiB that loopback autotuning allows. A
// receive buffer is kept well above the loopback MSS (64 KiB): a smaller
// window can stall the sender for good.
const (
	serverSendBuf = 16 << 10
	clientRecvBuf = 256 << 10
)

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(serverSendBuf)
	}
	return c, err
}

func smallBuffers(ln net.Listener) net.Listener { return smallBufListener{ln} }

// loginSmall logs in over a socket with a fixed receive buffer; onFrame, if
// set, sees every frame on the client's reader before it is queued (and so
// can make that reader slow).
func (e *env) loginSmall(user, resource string, onFrame func([]byte)) *client.Client {
	e.t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(clientRecvBuf)
		}
		return c, err
	}}
	e.t.Cleanup(tr.CloseIdleConnections)
	ctx := ctxT(e.t)
	c, err := client.Dial(ctx, e.url, &client.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	if onFrame != nil {
		c.SetRawHandler(func(b []byte) bool { onFrame(b); return false })
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		e.t.Fatal(err)
	}
	if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", user, "pw-"+user); err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Bind(ctx, resource); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// metric reads one counter or gauge of the endpoint, 0 if it has no sample.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	return gatherMetric(e.t, e.reg, name, labels...)
}

// gatherMetric reads the series of reg's metric name whose labels include
// the given name/value pairs: a counter's or gauge's value, 0 when absent.
func gatherMetric(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// stallEvents makes every start of a stall visible as a channel event.
func stallEvents(e *env) <-chan struct{} {
	ch := make(chan struct{}, 1)
	ws.SetStallHook(e.srv, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	return ch
}

func chat(to, id, body string) *etree.Element {
	m := client.Message(to, "chat", body)
	m.CreateAttr("id", id)
	return m
}

// floodUntilBounce sends chat messages to 'to' until one bounces, and
// checks the bounce is service-unavailable: the target was closed.
func floodUntilBounce(t *testing.T, from *client.Client, to, body string) {
	t.Helper()
	ctx := ctxT(t)
	for i := 0; ; i++ {
		if err := from.Send(ctx, chat(to, fmt.Sprintf("f%d", i), body)); err != nil {
			t.Fatal(err)
		}
		// The bounce is queued by the sender's own reader before it reads the
		// ping, so the answer to the ping proves whether there was one.
		if err := from.Ping(ctx, "localhost"); err != nil {
			t.Fatalf("sender: %v", err)
		}
		if el, err := from.Expect(shortCtx(ctx), func(el *etree.Element) bool { return client.ErrorOf(el) != nil }); err == nil {
			if se := client.ErrorOf(el); se.Condition != "service-unavailable" {
				t.Fatalf("bounce %s", xmpp.String(el))
			}
			return
		}
		if i > 100000 {
			t.Fatal("the target was never closed")
		}
	}
}

// TestOneToOneFloodPacesSender: any account used to be able to knock any
// other offline by flooding it with 1:1 messages past its queue. Now the
// target, which reads with pauses, keeps its session and gets every message
// once, in order, and the flooder is the one slowed down.
func TestOneToOneFloodPacesSender(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) { c.MaxPending = 128 << 10 }, smallBuffers)
	stalled := stallEvents(e)
	ctx := ctxT(t)
	// A pause is sure to end in a stall while more is still to come than
	// the socket buffers (about 600 KiB) and the mark (96 KiB) hold.
	const n, pauseEvery, guaranteed = 3000, 250, 1000
	pauses := 0
	bob := e.loginSmall("bob", "b", func(b []byte) {
		if !strings.Contains(string(b), "flood-") {
			return
		}
		pauses++
		if pauses%pauseEvery != 0 || pauses > n-guaranteed {
			return
		}
		// Stop reading until the server slows the flooder because of us.
		select {
		case <-stalled:
		default:
		}
		select {
		case <-stalled:
		case <-ctx.Done():
		}
	})
	alice := e.login("alice", "a")
	body := strings.Repeat("b", 2<<10)
	floodInOrder(ctx, t, alice, bob, n, func(i int) *etree.Element {
		return chat("bob@localhost/b", fmt.Sprintf("flood-%d", i), body)
	})
	if err := bob.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("target lost its session: %v", err)
	}
	if err := alice.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("flooder lost its session: %v", err)
	}
	if el, err := alice.Expect(shortCtx(ctx), func(el *etree.Element) bool { return client.ErrorOf(el) != nil }); err == nil {
		t.Fatalf("flooder got %s", xmpp.String(el))
	}
	if s := e.metric("xmpp_send_stalls_total"); s == 0 {
		t.Error("the flooder was never paced (xmpp_send_stalls_total = 0)")
	}
	t.Logf("%d messages: %v stalls, %.2f s stalled", n, e.metric("xmpp_send_stalls_total"), e.metric("xmpp_send_stall_seconds_total"))
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "max_pending") + e.metric("xmpp_slow_consumer_closes_total", "reason", "write_timeout"); c != 0 {
		t.Errorf("%v slow-consumer closes", c)
	}
}

// TestNonReaderClosedAfterWriteTimeout: a client that stops reading is
// closed once its writer makes no progress for write_timeout, and the close
// is counted with that reason.
func TestNonReaderClosedAfterWriteTimeout(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) {
		c.WriteTimeout = 500 * time.Millisecond
		c.MaxPending = 256 << 10
	}, smallBuffers)
	alice := e.login("alice", "a")
	bob := e.loginSmall("bob", "slow", nil)
	bob.StopReading()
	floodUntilBounce(t, alice, "bob@localhost/slow", strings.Repeat("z", 4<<10))
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "write_timeout"); c != 1 {
		t.Errorf("write_timeout closes %v, want 1", c)
	}
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "max_pending"); c != 0 {
		t.Errorf("max_pending closes %v, want 0", c)
	}
}

// TestShutdownWithNonReader: Shutdown used to wait on a writer blocked on a
// full socket with no deadline. With a client that does not read (and has
// sent <close/>) and a write_timeout far beyond Shutdown's context,
// Shutdown still returns, about when its context ends, and no goroutine is
// left (TestMain's goleak).
func TestShutdownWithNonReader(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) {
		c.WriteTimeout = time.Minute
		c.MaxPending = 256 << 10
	}, smallBuffers)
	stalled := stallEvents(e)
	alice := e.login("alice", "a")
	bob := e.loginSmall("bob", "slow", nil)
	bob.StopReading()
	ctx := ctxT(t)
	body := strings.Repeat("s", 4<<10)
	// The flood runs until Shutdown ends alice's connection; a stall means
	// bob's backlog is above the mark, so his writer is stuck.
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for i := 0; ; i++ {
			if alice.Send(ctx, chat("bob@localhost/slow", fmt.Sprint(i), body)) != nil {
				return
			}
		}
	}()
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("the flooder was never paced")
	}
	// bob's own <close/> makes his reader wait for his stuck writer: before
	// write deadlines and the abort on cancel, nothing ever closed that
	// socket, and Shutdown waited for it for good.
	if err := bob.Send(ctx, xmpp.Elem("close", xmpp.NSFraming)); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(sctx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second): // half of write_timeout: only the abort can end it
		t.Fatal("Shutdown did not return")
	}
	<-flooding
}

// TestSlowReaderWithinWriteTimeoutKeepsSession: progress is bytes the
// kernel accepts, not whole writes. The reader here takes far longer than
// write_timeout to take one batch, but never stops for anywhere near
// write_timeout, so it is merely behind: it keeps its session and gets
// every message.
func TestSlowReaderWithinWriteTimeoutKeepsSession(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) { c.WriteTimeout = 400 * time.Millisecond }, smallBuffers)
	ctx := ctxT(t)
	bob := e.loginSmall("bob", "b", func(b []byte) {
		if strings.Contains(string(b), "slow-") {
			time.Sleep(10 * time.Millisecond) // a slow client, not a wait for an event
		}
	})
	alice := e.login("alice", "a")
	// 2.4 MB at about 1.6 MB/s: the backlog takes far longer than
	// write_timeout to drain, while each receive window update (64 KiB) takes
	// about 40 ms.
	const n = 150
	body := strings.Repeat("w", 16<<10)
	for i := range n {
		if err := alice.Send(ctx, chat("bob@localhost/b", fmt.Sprintf("slow-%d", i), body)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m, err := bob.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
		if id := m.SelectAttrValue("id", ""); id != fmt.Sprintf("slow-%d", i) {
			t.Fatalf("message %d has id %s", i, id)
		}
	}
	if err := bob.Ping(ctx, "localhost"); err != nil {
		t.Fatalf("slow reader lost its session: %v", err)
	}
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "write_timeout"); c != 0 {
		t.Errorf("write_timeout closes %v, want 0", c)
	}
}

// TestBacklogPastMaxPendingIsClosed: a client whose backlog passes
// max_pending (pacing off, so the bound alone acts) is closed with the
// policy-violation stream error, which it reads once it reads again, after
// what was already on its way; the close is counted with reason
// max_pending.
func TestBacklogPastMaxPendingIsClosed(t *testing.T) {
	e := flowEnv(t, func(c *ws.Config) {
		c.MaxPending = 64 << 10
		c.StallTimeout = 0
		c.WriteTimeout = time.Minute
	}, smallBuffers)
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
	floodUntilBounce(t, alice, "bob@localhost/b", strings.Repeat("p", 4<<10))
	close(release)
	for {
		el, err := bob.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the stream error: %v", err)
		}
		if el.Tag == "message" {
			continue
		}
		if se := client.StreamErrorOf(el); se == nil || se.Condition != "policy-violation" {
			t.Fatalf("got %s, want stream error policy-violation", xmpp.String(el))
		}
		break
	}
	if el, err := bob.Next(ctx); err != nil || !xmpp.Is(el, "close", xmpp.NSFraming) {
		t.Fatalf("after the stream error: %v %v, want <close/>", el, err)
	}
	if _, err := bob.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after <close/>: %v", err)
	}
	if s := bob.CloseStatus(); s != websocket.StatusNormalClosure {
		t.Errorf("close status %d", s)
	}
	if c := e.metric("xmpp_slow_consumer_closes_total", "reason", "max_pending"); c != 1 {
		t.Errorf("max_pending closes %v, want 1", c)
	}
}

// fanOut is a stand-in for a room: an actor goroutine that delivers every
// message it is sent to one member with DeliverPaced, naming the sender as
// the cause, as rooms does for each groupchat delivery; with except, it
// uses DeliverPacedExcept, as a room serving two dialects does.
type fanOut struct {
	router *ws.Router
	to     xmpp.JID
	except []xmpp.SessionRef
	mb     chan *xmpp.Stanza
	stop   chan struct{}
}

func (f *fanOut) HandleStanza(_ context.Context, st *xmpp.Stanza) {
	select {
	case f.mb <- st:
	case <-f.stop:
	}
}

func (f *fanOut) run(done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case st := <-f.mb:
			st.El.RemoveAttr("to")
			if f.except != nil {
				f.router.DeliverPacedExcept(st.From, f.to, f.except, xmpp.NewOutbound(st.El))
			} else {
				f.router.DeliverPaced(st.From, f.to, xmpp.NewOutbound(st.El))
			}
		case <-f.stop:
			return
		}
	}
}

// TestDeliverPacedSlowsCause: a fan-out delivered from another goroutine
// (a room actor) to a member above the mark makes the sender named as the
// cause wait, while the member, reading with a pause, gets everything.
// DeliverPacedExcept paces the same, and the session it leaves out gets
// nothing.
func TestDeliverPacedSlowsCause(t *testing.T) {
	t.Run("DeliverPaced", func(t *testing.T) { testDeliverPacedSlowsCause(t, false) })
	t.Run("DeliverPacedExcept", func(t *testing.T) { testDeliverPacedSlowsCause(t, true) })
}

func testDeliverPacedSlowsCause(t *testing.T, except bool) {
	// Pacing takes effect at the cause's next read, so what is already in
	// the actor's mailbox (16 × 2 KiB) lands above the mark: the last
	// quarter of max_pending must hold it.
	e := flowEnv(t, func(c *ws.Config) { c.MaxPending = 256 << 10 }, smallBuffers)
	stalled := stallEvents(e)
	ctx := ctxT(t)
	room := &fanOut{router: e.srv.Router(), to: xmpp.MustParseJID("bob@localhost/b"), mb: make(chan *xmpp.Stanza, 16), stop: make(chan struct{})}
	var left *client.Client
	if except {
		// bob/x is an XEP-0045 occupant: the room's other form is for him.
		left = e.login("bob", "x")
		room.to, room.except = room.to.Bare(), []xmpp.SessionRef{{JID: left.JID()}}
	}
	e.srv.Router().RegisterService("localhost", "fan.localhost", "", room)
	actorDone := make(chan struct{})
	go room.run(actorDone)
	t.Cleanup(func() { close(room.stop); <-actorDone })
	const n = 1000 // 2 MB: far more than the socket buffers and the mark hold
	paused := false
	bob := e.loginSmall("bob", "b", func(b []byte) {
		if paused || !strings.Contains(string(b), "fan-") {
			return
		}
		paused = true // once, until the sender is paced because of us
		select {
		case <-stalled:
		case <-ctx.Done():
		}
	})
	alice := e.login("alice", "a")
	body := strings.Repeat("r", 2<<10)
	floodInOrder(ctx, t, alice, bob, n, func(i int) *etree.Element {
		m := client.Message("r@fan.localhost", "groupchat", body)
		m.CreateAttr("id", fmt.Sprintf("fan-%d", i))
		return m
	})
	if e.metric("xmpp_send_stalls_total") == 0 {
		t.Error("the cause was never paced")
	}
	if left != nil {
		nothingDelivered(t, left, alice)
	}
}

// flowEnv is newEnvListener with the ingress shaper off: these tests drive
// the outbound queues at full speed, which the shaper's defaults would pace
// long before any queue fills.
func flowEnv(t *testing.T, tweak func(*ws.Config), wrap func(net.Listener) net.Listener) *env {
	t.Helper()
	return newEnvListener(t, func(c *ws.Config) {
		c.Shaper = ws.ShaperConfig{}
		if tweak != nil {
			tweak(c)
		}
	}, wrap)
}

// floodInOrder has from send n stanzas built by msg as fast as it can while
// to reads: to must receive each exactly once and in order, matched by id.
func floodInOrder(ctx context.Context, t *testing.T, from, to *client.Client, n int, msg func(i int) *etree.Element) {
	t.Helper()
	ids := make([]string, n)
	els := make([]*etree.Element, n)
	for i := range n {
		els[i] = msg(i)
		ids[i] = els[i].SelectAttrValue("id", "")
	}
	sent := make(chan error, 1)
	go func() {
		for _, el := range els {
			if err := from.Send(ctx, el); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range n {
		m, err := to.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
		if id := m.SelectAttrValue("id", ""); id != ids[i] {
			t.Fatalf("message %d has id %s, want %s: lost, duplicated or reordered", i, id, ids[i])
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

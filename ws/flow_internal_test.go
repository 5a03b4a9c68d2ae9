package ws

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/xmppws/xmpp"
)

func quietServer(cfg Config) *Server {
	return New(cfg, nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// idleSession is a bound session without a connection whose writer is held
// back (as if busy), for tests of the queue and the session table alone.
func idleSession(srv *Server, full xmpp.JID) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{srv: srv, ctx: ctx, cancel: cancel, writing: true, jidStr: full.String(), bareStr: full.Bare().String()}
	s.qcond = sync.NewCond(&s.qmu)
	s.jid.Store(&full)
	s.bound.Store(true)
	return s
}

// TestReplaceRacesDelivery (defect 5): a new session with the same full JID
// used to be written into the slice that deliveries iterate without the
// router's lock. Run with -race.
func TestReplaceRacesDelivery(t *testing.T) {
	srv := quietServer(Defaults())
	full := xmpp.MustParseJID("alice@localhost/r")
	other := xmpp.MustParseJID("alice@localhost/o")
	srv.router.register(idleSession(srv, other))
	srv.router.register(idleSession(srv, full))
	el, _ := xmpp.ParseElement([]byte(`<message xmlns='jabber:client' type='chat'><body>x</body></message>`))
	out := xmpp.NewOutbound(el)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 2000 {
			srv.router.register(idleSession(srv, full))
		}
	}()
	go func() {
		defer wg.Done()
		for range 2000 {
			srv.router.Deliver(full.Bare(), out)
		}
	}()
	wg.Wait()
}

// TestOverflowStartsOneGoroutine (defect 6): every enqueue past the bound
// used to start a goroutine to close the session. Here the close is held
// up (as by a writer stuck on a full socket), and a fan-out keeps
// delivering: at most one goroutine may appear.
func TestOverflowStartsOneGoroutine(t *testing.T) {
	cfg := Defaults()
	cfg.MaxPending = 4 << 10
	srv := quietServer(cfg)
	s := idleSession(srv, xmpp.MustParseJID("bob@localhost/r"))
	release := make(chan struct{})
	held := make(chan struct{})
	go s.termOnce.Do(func() { close(held); <-release })
	<-held
	f := func() frame { return frame{raw: make([]byte, 100), kind: "message"} }
	for {
		if ok, _ := s.enqueue(f()); !ok {
			break
		}
	}
	before := runtime.NumGoroutine()
	for range 1000 {
		s.enqueue(f())
	}
	after := runtime.NumGoroutine()
	close(release)
	srv.wg.Wait()
	if after-before > 1 {
		t.Fatalf("%d enqueues past the bound started %d goroutines, want at most 1", 1000, after-before)
	}
}

// liveSession accepts one real WebSocket into a session that nothing runs:
// the test plays its reader. The client side answers the close handshake.
func liveSession(t *testing.T) *session {
	t.Helper()
	cfg := Defaults()
	srv := quietServer(cfg)
	got := make(chan *session, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkingWriter{ResponseWriter: w, timeout: cfg.WriteTimeout}
		conn, err := websocket.Accept(cw, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		s := newSession(srv, conn, r)
		s.cork = cw.conn
		got <- s
	})}
	go hs.Serve(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/", &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	s := <-got
	t.Cleanup(func() {
		s.cancel()
		s.conn.CloseNow()
		c.CloseNow()
		<-read
		srv.wg.Wait()
		hs.Close()
		srv.router.unregister(s)
	})
	return s
}

// TestSessionHostAndLogRace (defect 5): the reader sets the stream's host
// and its logger while another goroutine (an auth timeout, a conflict, a
// shutdown) may be ending the session and reading both. Whether the race
// detector sees it depends on which side takes the queue lock first, so
// the test tries a few sessions, letting the ending side start first. Run
// with -race.
func TestSessionHostAndLogRace(t *testing.T) {
	open, _ := xmpp.ParseElement([]byte(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='2.0'/>`))
	bind, _ := xmpp.ParseElement([]byte(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`))
	for range 10 {
		t.Run("", func(t *testing.T) {
			s := liveSession(t)
			st, _, _ := xmpp.NewStanza(bind.Copy())
			s.user = xmpp.MustParseJID("alice@localhost")
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				s.end(&xmpp.StreamError{Condition: xmpp.PolicyViolation}, "test", false)
			}()
			go func() { // the reader
				defer wg.Done()
				for range 3 {
					runtime.Gosched()
				}
				s.handleOpen(open) // writes the host (unsupported version)
				s.handleBind(st)   // writes the logger
			}()
			wg.Wait()
		})
	}
}

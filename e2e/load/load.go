// Package load is the engine of the xmppload command: it logs in many users
// over RFC 7395 WebSockets, puts them into group-chat rooms (MUC Light
// #create, or XEP-0045 joins so that the same workload runs against other
// XMPP servers), sends timestamped groupchat messages at a given rate, and
// measures what comes back: deliveries against what a lossless run would
// deliver, end-to-end latency, errors by condition, the server's memory and
// CPU.
//
// It is a package of its own so that tests can run it against a server
// started in-process. It must never import the server's packages (it speaks
// the protocol like any client) and never load a host that is not loopback
// unless told to (Config.AllowRemote). A run is bounded in users and time,
// stops every goroutine it starts, and closes every session with <close/>.
package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

// Per-operation bounds, so that a server that stops answering cannot hang
// a run.
const (
	loginTimeout = 30 * time.Second
	iqTimeout    = 30 * time.Second
	closeTimeout = 10 * time.Second
	// senderStopTimeout is the least time senders get to finish a write
	// after the stop (the drain, when longer) before a write still stuck on
	// a server that stopped reading is cancelled, closing its connection.
	senderStopTimeout = 10 * time.Second
	// interruptedDrain bounds the drain after Ctrl-C, when the user wants
	// the summary soon.
	interruptedDrain = 2 * time.Second
	// drainIdle ends the drain early when no delivery arrives for that
	// long: those still missing went to sessions that ended.
	drainIdle = 5 * time.Second
)

// session is one logged-in user.
type session struct {
	idx  int
	bare string
	c    *client.Client
	// rooms are those the user joined, the rooms it sends to in turn;
	// written before traffic starts, read-only after.
	rooms []*room
	// window holds a token for each of this user's messages the room has
	// not reflected back yet.
	window  chan struct{}
	quota   int         // measured messages sent; the sender goroutine's own
	writing atomic.Bool // a message write is in progress
	cut     atomic.Bool // the tool cancelled a blocked write, closing the connection
	dead    atomic.Bool // the stream has ended
}

// room is one room of the run.
type room struct {
	jid     xmpp.JID
	members []*session // online members, owner (creator) first
	// joined are the members that are occupants once setup is done; they
	// each receive every message.
	joined []*session
	ready  bool
}

// engine is the state of one Run.
type engine struct {
	cfg      Config
	progress io.Writer
	pmu      sync.Mutex
	status   atomic.Pointer[func() string]

	run     string // random id in room names, resources and bodies
	service string
	sum     Summary

	sessions []*session // by user index; nil where login failed
	rooms    []*room

	sessFail, roomFail                      counter
	stanzaErr, streamErr, otherErr, warning counter

	// Traffic. Offsets are from t0, on the monotonic clock.
	t0           time.Time
	warmup       time.Duration // measured messages are sent at offsets ≥ warmup
	end          time.Duration // and before end
	stop         chan struct{} // closed when sending ends
	capReached   chan struct{}
	capOnce      sync.Once
	capAt        time.Duration // when the Messages cap was reached
	reserved     atomic.Uint64 // measured sends claimed against Messages
	sent         atomic.Uint64 // measured messages written
	warmupSent   atomic.Uint64
	expected     atomic.Uint64 // measured deliveries a lossless run makes
	expectedAll  atomic.Uint64 // the same with warm-up
	delivered    atomic.Uint64
	deliveredAll atomic.Uint64
	inFlight     atomic.Int64
	lastDelivery atomic.Int64 // offset of the last measured delivery
	hist         Histogram
}

// Run executes one load run described by cfg and returns its summary. It
// writes a status line every second to progress (nil: none). Cancelling
// ctx stops the run early, as Ctrl-C does: sending stops, deliveries still
// under way are waited for briefly, rooms are destroyed, sessions closed,
// and the summary covers what was measured. The error is non-nil when the
// run could not measure anything (invalid cfg, users not creatable, no
// session or room set up, interrupted before sending); the summary is
// filled as far as the run got even then.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	var id [3]byte
	rand.Read(id[:])
	e := &engine{
		cfg:        cfg,
		progress:   progress,
		run:        hex.EncodeToString(id[:]),
		sessions:   make([]*session, cfg.Users),
		stop:       make(chan struct{}),
		capReached: make(chan struct{}),
	}
	e.sum = Summary{Mode: cfg.Mode, URL: cfg.URL, Users: cfg.Users, Rooms: cfg.Rooms, Stopped: "not started"}

	stopStatus := e.startStatus()
	err := e.execute(ctx)
	e.setStatus(nil)
	if !cfg.KeepRooms {
		e.destroyRooms()
	}
	e.closeSessions()
	stopStatus()
	e.fillSummary()
	return e.sum, err
}

func (e *engine) execute(ctx context.Context) error {
	if e.cfg.CreateUsers {
		if err := e.createUsers(ctx); err != nil {
			return err
		}
		e.say("users: %d created, %d existed", e.sum.UsersCreated, e.sum.UsersExisting)
	}
	t := time.Now()
	if n := e.login(ctx); n == 0 {
		return fmt.Errorf("load: no session could be established%s", tally(e.sessFail.snapshot()))
	}
	e.sum.LoginSeconds = time.Since(t).Seconds()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load: interrupted while logging in: %w", err)
	}
	e.discoverService(ctx)
	t = time.Now()
	if n := e.setupRooms(ctx); n == 0 {
		return fmt.Errorf("load: no room could be set up%s", tally(e.roomFail.snapshot()))
	}
	e.sum.RoomSetupSeconds = time.Since(t).Seconds()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load: interrupted while setting up rooms: %w", err)
	}
	e.traffic(ctx)
	return nil
}

// login opens every session, Concurrency at a time, and returns how many
// are up.
func (e *engine) login(ctx context.Context) int {
	var done, ok atomic.Int64
	e.setStatus(func() string {
		return fmt.Sprintf("logging in: %d/%d (%d failed)", done.Load(), e.cfg.Users, done.Load()-ok.Load())
	})
	e.forEach(ctx, e.cfg.Users, func(i int) {
		defer done.Add(1)
		jid := xmpp.JID{Local: e.cfg.userLocal(i), Domain: e.cfg.Domain, Resource: "xmppload-" + e.run}
		lctx, cancel := context.WithTimeout(ctx, loginTimeout)
		defer cancel()
		// User i starts at endpoint i mod n; a failed login tries the
		// others (a node that is down), and the first error is counted.
		urls := e.cfg.URLs()
		var c *client.Client
		var err error
		for k := range urls {
			var e2 error
			if c, e2 = client.Login(lctx, urls[(i+k)%len(urls)], jid, e.cfg.Password); e2 == nil {
				break
			}
			if err == nil {
				err = e2
			}
		}
		if c == nil {
			e.sessFail.add(classify(err))
			return
		}
		e.sessions[i] = &session{idx: i, bare: c.JID().Bare().String(), c: c, window: make(chan struct{}, e.cfg.Window)}
		ok.Add(1)
	})
	e.say("sessions: %d established, %d failed%s", ok.Load(), done.Load()-ok.Load(), tally(e.sessFail.snapshot()))
	return int(ok.Load())
}

// forEach calls f(0..n-1) from Concurrency goroutines and returns when all
// calls have; once ctx is done no new call starts.
func (e *engine) forEach(ctx context.Context, n int, f func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(e.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
feed:
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}

// closeSessions ends every session with <close/>, waiting for the server's
// <close/> and the WebSocket close, and stops each client's reader.
func (e *engine) closeSessions() {
	var closed atomic.Int64
	e.forEach(context.Background(), len(e.sessions), func(i int) {
		s := e.sessions[i]
		if s == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.c.Close(ctx); err == nil {
			closed.Add(1)
		} else if !s.dead.Load() {
			e.warning.add("close not clean: " + classify(err))
		}
	})
	e.sum.SessionsClosed = int(closed.Load())
}

// fillSummary copies the counters into e.sum.
func (e *engine) fillSummary() {
	s := &e.sum
	s.Service = e.service
	for _, x := range e.sessions {
		if x != nil {
			s.SessionsEstablished++
		}
	}
	s.SessionsFailed = e.sessFail.total()
	s.SessionFailures = e.sessFail.snapshot()
	for _, r := range e.rooms {
		if r.ready {
			s.RoomsReady++
			s.Occupants += len(r.joined)
		}
	}
	s.RoomFailures = e.roomFail.snapshot()
	s.WarmupSent = e.warmupSent.Load()
	s.Sent = e.sent.Load()
	s.Expected = e.expected.Load()
	s.Delivered = e.delivered.Load()
	s.InFlightAtEnd = e.inFlight.Load()
	s.Latency = latencyOf(&e.hist)
	s.StanzaErrors = e.stanzaErr.snapshot()
	s.StreamErrors = e.streamErr.snapshot()
	s.OtherErrors = e.otherErr.snapshot()
	s.Warnings = e.warning.snapshot()
}

// say prints one line on the progress writer at once.
func (e *engine) say(format string, a ...any) {
	if e.progress == nil {
		return
	}
	e.pmu.Lock()
	defer e.pmu.Unlock()
	fmt.Fprintf(e.progress, "xmppload: "+format+"\n", a...)
}

// setStatus replaces the line the status goroutine prints every second;
// nil (or an empty line) prints nothing.
func (e *engine) setStatus(f func() string) {
	if f == nil {
		e.status.Store(nil)
		return
	}
	e.status.Store(&f)
}

// startStatus starts the goroutine printing the status every second; the
// returned function stops it and waits for it.
func (e *engine) startStatus() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if f := e.status.Load(); f != nil {
					if line := (*f)(); line != "" {
						e.say("%s", line)
					}
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// classify reduces an error to a short reason for the tallies: a condition
// or a kind of failure rather than a message with ids in it.
func classify(err error) string {
	var (
		auth   *client.AuthError
		stream *client.StreamError
		stanza *client.StanzaError
		dial   *client.DialError
	)
	switch {
	case errors.As(err, &auth):
		return "SASL " + auth.Condition
	case errors.As(err, &stream):
		return "stream error " + stream.Condition
	case errors.As(err, &stanza):
		return "stanza error " + stanza.Condition
	case errors.As(err, &dial) && dial.StatusCode != 0:
		return fmt.Sprintf("dial: HTTP %d", dial.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, io.EOF):
		return "connection closed by the server"
	case errors.As(err, &dial):
		return "dial: " + rootCause(err)
	}
	return rootCause(err)
}

// rootCause is the innermost error's text, short enough for a tally.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

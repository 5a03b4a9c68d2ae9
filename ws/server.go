package ws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/logthrottle"
	"github.com/wschat/xmppws/xmpp"
)

// Subprotocol is the WebSocket subprotocol RFC 7395 registers for XMPP.
const Subprotocol = "xmpp"

// Server is the WebSocket endpoint plus the session table it feeds. Create it
// with New, mount it (it is an http.Handler for the endpoint path), and call
// Shutdown to close every session.
type Server struct {
	cfg      Config
	accounts account.Store
	log      *slog.Logger
	m        *metrics
	router   *Router
	im       *ingressMetrics
	admit    *admission
	throttle *logthrottle.Throttle // for every refusal the endpoint logs
	apps     TokenAuth             // application-issued tokens (JWT); zero: off

	secretMu sync.Mutex
	secret   []byte // the store's server secret, once read: keys the fake credentials of unknown users

	// bindMu makes the sessions-per-account check and the registration one
	// step, so concurrent binds cannot overshoot the cap.
	bindMu sync.Mutex

	baseCtx context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	conns    map[*session]struct{}
	shutdown bool
	wg       sync.WaitGroup // session goroutines

	// tokens keeps FAST tokens: the account store, when it is also an
	// account.TokenStore (both backends are); nil turns FAST off.
	tokens account.TokenStore
	fm     *fastMetrics
	// clock, when set, replaces time.Now for token issue and expiry: the
	// tests' way to move time.
	clock atomic.Pointer[func() time.Time]
	smt   smTable // stream management (sm.go)

	// onStall, if set, runs when a session's reader starts waiting for a
	// recipient to drain: tests wait on it instead of on time.
	onStall atomic.Pointer[func()]
}

// Options carries the collaborators of New that are not configuration.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the endpoint's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Tokens, when its Verifier is set, accepts application-issued tokens
	// as SASL PLAIN passwords and with OAUTHBEARER (oauthbearer.go).
	Tokens TokenAuth
}

// New builds an endpoint over an account store.
func New(cfg Config, accounts account.Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		accounts: accounts,
		log:      opts.Logger,
		m:        newMetrics(opts.Registerer),
		im:       newIngressMetrics(opts.Registerer),
		baseCtx:  ctx,
		cancel:   cancel,
		conns:    make(map[*session]struct{}),
		throttle: logthrottle.New(throttleInterval, logthrottle.DefaultMaxKeys, nil),
		apps:     opts.Tokens,
	}
	s.router = newRouter(s)
	s.smt.init()
	s.admit = newAdmission(cfg, s.im)
	s.tokens, _ = accounts.(account.TokenStore)
	s.fm = newFastMetrics(opts.Registerer)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(newPendingCollector(s))
	}
	return s
}

func (s *Server) now() time.Time {
	if c := s.clock.Load(); c != nil {
		return (*c)()
	}
	return time.Now()
}

// pendingBytes sums the sessions' send backlogs and finds the largest.
func (s *Server) pendingBytes() (total, worst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.conns {
		sess.qmu.Lock()
		p := sess.pending
		sess.qmu.Unlock()
		total += p
		worst = max(worst, p)
	}
	return total, worst
}

// Router returns the session table and stanza router, which services use to
// deliver stanzas by JID.
func (s *Server) Router() *Router { return s.router }

// ServeHTTP accepts a WebSocket that offers the xmpp subprotocol and runs the
// session until it ends. A request that does not offer the subprotocol is
// refused with 400 before any upgrade.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !offersSubprotocol(r) {
		http.Error(w, "this endpoint speaks XMPP over WebSocket (RFC 7395): the handshake must offer the 'xmpp' subprotocol", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	down := s.shutdown
	s.mu.Unlock()
	if down {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	opts := &websocket.AcceptOptions{
		Subprotocols:    []string{Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		opts.InsecureSkipVerify = true // any Origin: see Config.AllowedOrigins
	} else {
		opts.OriginPatterns = s.cfg.AllowedOrigins
	}
	cw := &corkingWriter{ResponseWriter: w, timeout: s.cfg.WriteTimeout}
	conn, err := websocket.Accept(cw, r, opts)
	if err != nil {
		if cw.conn != nil { // hijacked, then failed: net/http will not report it closed
			s.admit.release(cw.conn.Conn)
		}
		s.log.Debug("websocket handshake refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	raw := cw.conn.Conn
	// From here the session's own timers rule, not the HTTP server's read
	// timeouts. Current net/http clears its deadlines at hijack; doing it
	// here keeps that true behind any listener or handler wrapper.
	raw.SetDeadline(time.Time{})
	// Counted from accept when ConnState is installed; otherwise from here.
	if reason, ok := s.admit.admit(raw); !ok {
		s.logRefused(r.RemoteAddr, reason)
		conn.Close(websocket.StatusTryAgainLater, "too many connections that have not logged in")
		return
	}
	sess := newSession(s, conn, r)
	sess.cork = cw.conn
	sess.raw = raw
	// A cancelled session aborts whatever write is blocked on the socket:
	// Shutdown's deadline must not wait for a write deadline.
	context.AfterFunc(sess.ctx, func() { conn.CloseNow() })
	if !s.track(sess) {
		s.admit.release(raw)
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	// The connection is hijacked: net/http is done with it, so the session
	// runs on a goroutine of its own and the handler returns, freeing the
	// HTTP server's per-connection goroutine and state for the session's
	// lifetime.
	go func() {
		defer s.untrack(sess)
		sess.run()
	}()
}

func offersSubprotocol(r *http.Request) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if strings.TrimSpace(p) == Subprotocol {
				return true
			}
		}
	}
	return false
}

func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[sess] = struct{}{}
	s.wg.Add(1)
	s.m.connections.Inc()
	s.m.accepted.Inc()
	return true
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.conns, sess)
	s.mu.Unlock()
	s.m.connections.Dec()
	s.wg.Done()
}

// Shutdown sends <close/> to every session (RFC 7395 §3.6), waits for them to
// end or for ctx, then forcibly closes what is left. New connections are
// refused from the first moment.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	list := make([]*session, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	detached := s.smt.takeDetached() // under mu: no session detaches from now on
	s.wg.Add(len(detached))
	s.mu.Unlock()
	for _, c := range list {
		go c.terminate(nil, endShutdown)
	}
	for _, sm := range detached {
		go func() {
			defer s.wg.Done()
			sm.finish(endShutdown)
		}()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel() // every session context derives from baseCtx: this closes the rest
		<-done
		return ctx.Err()
	}
}

// servesHost reports whether domain is one of the configured hosts.
func (s *Server) servesHost(domain string) bool {
	for _, h := range s.cfg.Hosts {
		if h == domain {
			return true
		}
	}
	return false
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serverSecret returns the store's server secret, read once; a failed read
// is not cached, so a store that comes back serves the next login.
func (s *Server) serverSecret(ctx context.Context) ([]byte, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if s.secret != nil {
		return s.secret, nil
	}
	b, err := s.accounts.ServerSecret(ctx)
	if err != nil {
		return nil, err
	}
	s.secret = b
	return b, nil
}

// CloseUser ends every session of a bare JID (its account was deleted) with
// the not-authorized stream error, on every node of a cluster.
func (s *Server) CloseUser(user xmpp.JID) {
	if rm := s.router.remote; rm != nil {
		rm.CloseUser(user)
	}
	s.CloseLocalUser(user)
}

// CloseLocalUser is CloseUser for this node's sessions alone: what another
// node asks for.
func (s *Server) CloseLocalUser(user xmpp.JID) {
	for _, sess := range s.router.sessionsOf(user.Bare()) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sess.stop(&xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "the account was deleted"}, endUserDeleted)
		}()
	}
}

// logRefused logs a connection over an unauthenticated cap, at most once per
// address and interval.
func (s *Server) logRefused(remote, reason string) {
	ip := remoteIP(remote)
	s.throttle.Log(s.log, slog.LevelInfo, "refused:"+ip, "connection refused", "remote", ip, "reason", reason)
}

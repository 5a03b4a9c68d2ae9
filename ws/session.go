package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/xmpp"
)

// state is where a session is in the stream's life (RFC 6120 §4-7 as framed
// by RFC 7395): only the reader goroutine moves it forward.
type state int

const (
	stateWaitOpen  state = iota // before the first <open/>
	stateAuth                   // SASL negotiation
	stateWaitOpen2              // SASL succeeded, waiting for the restart <open/>
	stateBind                   // waiting for resource binding
	stateActive                 // bound: stanzas are routed
)

// frame is one queued outgoing WebSocket message: either an Outbound
// addressed to 'to' (the shared fan-out form) or raw bytes.
type frame struct {
	out  *xmpp.Outbound
	to   string
	raw  []byte
	kind string
}

// encodedLen is the size appendTo will produce, without producing it: what
// a frame counts against MaxPending. It is recomputed rather than stored,
// to keep the frame (and every queue) small. The 'to' is counted
// unescaped: escaping a resource adds a few bytes at most.
func (f *frame) encodedLen() int {
	if f.out == nil {
		return len(f.raw)
	}
	if f.to == "" {
		return f.out.Len()
	}
	return f.out.Len() + len(" to=''") + len(f.to)
}

func (f *frame) appendTo(dst []byte) []byte {
	if f.out != nil {
		return f.out.AppendTo(dst, f.to)
	}
	return append(dst, f.raw...)
}

// session is one WebSocket connection and, once bound, one full JID.
type session struct {
	srv    *Server
	conn   *websocket.Conn
	cork   *corkConn                   // batches the writer's frames into one system call
	log    *slog.Logger                // the reader's, refined as it learns who the peer is (setLog)
	shared atomic.Pointer[slog.Logger] // log as other goroutines read it (logger)
	ctx    context.Context             // cancelled when the session ends: aborts writes
	cancel context.CancelFunc
	plain  bool // SASL PLAIN may be offered

	// Owned by the reader goroutine.
	st       state
	host     string // written through setHost, whose copy others read
	hostSeen atomic.Pointer[string]
	streamID string
	sasl     saslState
	user     xmpp.JID // authenticated bare JID

	jid     atomic.Pointer[xmpp.JID] // full JID once bound
	jidStr  string                   // its string form, written once before registration
	bareStr string                   // the bare JID's string form, likewise
	epoch   uint64                   // bind epoch (xmpp.Stanza.Session), likewise
	bound   atomic.Bool

	// sm is the stream management state once enabled (sm.go); a resumed
	// session adopts its predecessor's. streamClosed records the client's
	// <close/>, after which the session ends rather than detaches.
	sm           atomic.Pointer[smState]
	streamClosed bool

	qmu      sync.Mutex
	qcond    *sync.Cond
	queue    []frame
	spare    []frame
	pending  int           // encoded bytes queued or in the batch being written
	inflight int           // of which in the batch being written
	stall    chan struct{} // non-nil while pending is above the high-water mark; closed when it falls back
	writing  bool          // a writer goroutine is running
	closing  bool          // no more frames accepted
	opened   bool          // our <open/> has been queued or written
	stopping atomic.Bool   // set with closing; read by the writer without the lock
	slow     atomic.Bool   // closed as a slow consumer, and counted so once

	// pmu guards pace: a stall channel of a session this one fed above its
	// high-water mark, which the reader waits on before its next stanza.
	pmu  sync.Mutex
	pace <-chan struct{}

	termOnce sync.Once
	timers   sessionTimers

	raw    net.Conn // the hijacked connection, as counted by the admission caps
	shaper *shaper  // nil when both buckets are off; reader-owned

	// For the "session ended" line. endReason and endCond are written in
	// the first terminate (termOnce) and read once it returned.
	started    time.Time
	remote     string // the peer's address, as the HTTP request gave it
	stanzasIn  int    // reader-owned
	stanzasOut atomic.Int64
	endReason  string
	endCond    xmpp.Condition
}

type sessionTimers struct {
	auth *time.Timer
	idle *time.Timer
}

func newSession(srv *Server, conn *websocket.Conn, r *http.Request) *session {
	ctx, cancel := context.WithCancel(srv.baseCtx)
	s := &session{
		srv:      srv,
		conn:     conn,
		ctx:      ctx,
		cancel:   cancel,
		streamID: randomID(),
		started:  time.Now(),
		remote:   r.RemoteAddr,
		log:      srv.log.With("remote", r.RemoteAddr),
		plain:    srv.cfg.AllowPlainWithoutTLS || r.TLS != nil || isLoopback(r.RemoteAddr),
	}
	s.qcond = sync.NewCond(&s.qmu)
	s.shaper = newShaper(srv.cfg.Shaper)
	s.shared.Store(s.log)
	// The library's own limit is a backstop above ours, so that an oversized
	// message reaches our check and gets a stream error instead of a bare
	// WebSocket close.
	conn.SetReadLimit(int64(srv.cfg.MaxStanzaSize) + 4096)
	return s
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run is the reader loop; it returns when the connection is gone.
func (s *session) run() {
	var readErr error
	defer func() { s.cleanup(readErr) }()
	cfg := &s.srv.cfg
	if cfg.AuthTimeout > 0 {
		s.timers.auth = time.AfterFunc(cfg.AuthTimeout, func() {
			if !s.bound.Load() {
				s.terminate(&xmpp.StreamError{Condition: xmpp.ConnectionTimeout, Text: "authentication took too long"}, endAuthTimeout)
			}
		})
	}
	if cfg.IdleTimeout > 0 {
		s.timers.idle = time.AfterFunc(cfg.IdleTimeout, s.onIdle)
	}
	buf := new(bytes.Buffer)
	for {
		s.awaitPace()
		typ, r, err := s.conn.Reader(s.ctx)
		if err != nil {
			readErr = err
			return
		}
		if s.timers.idle != nil {
			s.timers.idle.Reset(cfg.IdleTimeout)
		}
		if typ != websocket.MessageText {
			s.terminate(&xmpp.StreamError{Condition: xmpp.UnsupportedEncoding, Text: "RFC 7395 carries XMPP in text messages only"}, endStreamError)
			return
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, int64(cfg.MaxStanzaSize)+1))
		if err != nil {
			readErr = err
			return
		}
		if n > int64(cfg.MaxStanzaSize) {
			s.terminate(&xmpp.StreamError{Condition: xmpp.PolicyViolation, Text: "stanza too large"}, endStreamError)
			return
		}
		if se := s.handleFrame(buf.Bytes()); se != nil {
			if se.Condition == "" { // the client closed the stream
				s.streamClosed = true
				s.terminate(nil, endClientClosed)
			} else {
				s.terminate(se, endStreamError)
			}
			return
		}
		if !s.shape(int(n)) {
			return // the session ended while its reader was paced
		}
		if buf.Cap() > 16<<10 {
			buf = new(bytes.Buffer) // do not keep a large buffer for an idle session
		}
	}
}

// errClientClose is the sentinel handleFrame returns for a client <close/>.
var errClientClose = &xmpp.StreamError{}

func (s *session) handleFrame(data []byte) *xmpp.StreamError {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // tolerated as a keepalive; RFC 7395 clients should use WebSocket pings
	}
	el, err := xmpp.ParseElement(data)
	if err != nil {
		var se *xmpp.StreamError
		if errors.As(err, &se) {
			return se
		}
		return &xmpp.StreamError{Condition: xmpp.NotWellFormed}
	}
	ns := el.NamespaceURI()
	switch {
	case el.Tag == "open" && ns == xmpp.NSFraming:
		return s.handleOpen(el)
	case el.Tag == "close" && ns == xmpp.NSFraming:
		return errClientClose
	case el.Tag == "stream" && ns == xmpp.NSStream:
		return &xmpp.StreamError{Condition: xmpp.InvalidNamespace, Text: "RFC 7395 framing uses <open/>, not <stream:stream>"}
	}
	switch s.st {
	case stateWaitOpen, stateWaitOpen2:
		return &xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "expected <open/>"}
	case stateAuth:
		if ns == xmpp.NSSASL {
			return s.handleSASL(el)
		}
		if ns == xmpp.NSSASL2 {
			return s.handleSASL2(el)
		}
		return &xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "authenticate first"}
	}
	if ns == nsSM && (s.st == stateBind || s.st == stateActive) {
		return s.handleSM(el)
	}
	if !xmpp.IsStanzaElement(el) {
		switch el.Tag {
		case xmpp.KindMessage, xmpp.KindPresence, xmpp.KindIQ:
			return &xmpp.StreamError{Condition: xmpp.InvalidNamespace, Text: "stanzas belong to jabber:client"}
		}
		return &xmpp.StreamError{Condition: xmpp.UnsupportedStanzaType, Text: "unsupported element <" + el.Tag + "/> in " + ns}
	}
	if el.NamespaceURI() == "" {
		// Clients may leave jabber:client implicit; make it explicit so that
		// everything downstream finds children by their real namespace.
		el.CreateAttr("xmlns", xmpp.NSClient)
	}
	s.srv.m.inCounter(el.Tag).Inc()
	s.stanzasIn++
	if sm := s.sm.Load(); sm != nil {
		sm.handled.Add(1)
	}
	st, toErr, fromErr := xmpp.NewStanza(el)
	if fromErr != nil || !s.fromAllowed(st.From) {
		return &xmpp.StreamError{Condition: xmpp.InvalidFrom}
	}
	if s.st == stateBind {
		return s.handleBind(st)
	}
	st.SetFrom(*s.jid.Load())
	st.Session = s.epoch
	if toErr != nil {
		s.replyError(st, xmpp.AsStanzaError(toErr))
		return nil
	}
	if se := validate(st); se != nil {
		s.replyError(st, se)
		return nil
	}
	s.srv.router.route(s.ctx, s, st)
	return nil
}

// fromAllowed applies RFC 6120 §8.1.2.1: a client may only claim its own
// full or bare JID.
func (s *session) fromAllowed(from xmpp.JID) bool {
	if from.IsZero() {
		return true
	}
	if from.Resource == "" {
		return from == s.user
	}
	j := s.jid.Load()
	return j != nil && from == *j
}

func (s *session) handleOpen(el *etree.Element) *xmpp.StreamError {
	if s.st != stateWaitOpen && s.st != stateWaitOpen2 {
		return &xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "unexpected stream restart"}
	}
	if v, ok := xmpp.LookupAttr(el, "version"); ok && v != "1.0" && !bytes.HasPrefix([]byte(v), []byte("1.")) {
		s.setHost(s.defaultHost())
		return &xmpp.StreamError{Condition: xmpp.UnsupportedVersion}
	}
	to := xmpp.Attr(el, "to")
	if to == "" {
		to = s.defaultHost()
	} else if j, err := xmpp.ParseJID(to); err == nil {
		to = j.Domain
	}
	if !s.srv.servesHost(to) || (s.st == stateWaitOpen2 && to != s.host) {
		return &xmpp.StreamError{Condition: xmpp.HostUnknown}
	}
	s.setHost(to)
	s.sendOpen()
	feats := xmpp.Elem("stream:features", "")
	feats.CreateAttr("xmlns:stream", xmpp.NSStream)
	if s.st == stateWaitOpen {
		mechs := feats.CreateElement("mechanisms")
		mechs.CreateAttr("xmlns", xmpp.NSSASL)
		for _, m := range s.mechanisms() {
			mechs.CreateElement("mechanism").SetText(m)
		}
		feats.AddChild(s.sasl2Feature())
		s.st = stateAuth
	} else {
		feats.AddChild(xmpp.Elem("bind", xmpp.NSBind))
		sess := feats.CreateElement("session")
		sess.CreateAttr("xmlns", xmpp.NSSession)
		sess.CreateElement("optional")
		if s.smFeature() {
			feats.AddChild(smElem("sm"))
		}
		s.st = stateBind
	}
	feats.AddChild(streamLimits(s.srv.cfg.MaxStanzaSize))
	s.sendElement(feats)
	return nil
}

// nsStreamLimits is XEP-0478 Stream Limits Advertisement.
const nsStreamLimits = "urn:xmpp:stream-limits:0"

// streamLimits is the XEP-0478 advertisement of the largest message this
// stream accepts, so a client (the web client's composer) can refuse a
// too-long message itself instead of having the stream closed over it.
func streamLimits(maxBytes int) *etree.Element {
	l := xmpp.Elem("limits", nsStreamLimits)
	l.CreateElement("max-bytes").SetText(strconv.Itoa(maxBytes))
	return l
}

func (s *session) defaultHost() string {
	if len(s.srv.cfg.Hosts) == 1 {
		return s.srv.cfg.Hosts[0]
	}
	return ""
}

func openElement(host, id string) *etree.Element {
	o := xmpp.Elem("open", xmpp.NSFraming)
	if host != "" {
		o.CreateAttr("from", host)
	}
	o.CreateAttr("id", id)
	o.CreateAttr("version", "1.0")
	o.CreateAttr("xml:lang", "en")
	return o
}

// sendOpen queues our <open/>; the framing needs one before anything else,
// even before a stream error (RFC 6120 §4.9.1.1).
func (s *session) sendOpen() {
	s.qmu.Lock()
	s.opened = true
	s.qmu.Unlock()
	s.sendElement(openElement(s.host, s.streamID))
}

// sendElement queues an element for this session. Such elements answer
// the session's own stanzas (results, bounces), so a backlog above the mark
// paces the session itself: a client that floods stanzas whose answers it
// reads slowly waits on its own writer.
func (s *session) sendElement(e *etree.Element) bool {
	ok, stall := s.enqueue(frame{raw: xmpp.Marshal(e), kind: e.Tag})
	if stall != nil {
		s.paceOn(stall)
	}
	return ok
}

// replyError answers st with a stanza error, unless st is itself an error
// (RFC 6120 §8.3.1: never answer an error with an error).
func (s *session) replyError(st *xmpp.Stanza, se *xmpp.StanzaError) {
	if st.Type == "error" {
		return
	}
	s.sendElement(xmpp.ErrorReply(st, se))
}

// deliver queues a shared Outbound with the given 'to'. It returns, besides
// whether the frame was taken, the session's stall channel when the session
// is above its high-water mark, so the caller can pace whoever caused the
// delivery.
func (s *session) deliver(out *xmpp.Outbound, to string) (bool, <-chan struct{}) {
	if !s.bound.Load() {
		return false, nil
	}
	return s.enqueue(frame{out: out, to: to, kind: out.Kind()})
}

// highWater is the pending bytes above which producers are paced: three
// quarters of the bound, as nats-server stalls fast producers, so that a
// paced producer still has a quarter of the bound to spend before anyone is
// closed.
func (s *session) highWater() int { return s.srv.cfg.MaxPending / 4 * 3 }

// enqueue adds f to the send queue, or, once stream management is on and f
// is a stanza, hands it to the stream (sm.go), which keeps it until the
// client acknowledges it and queues it for whichever session carries the
// stream now.
func (s *session) enqueue(f frame) (bool, <-chan struct{}) {
	if sm := s.sm.Load(); sm != nil && isStanzaKind(f.kind) {
		return sm.send(f)
	}
	return s.enqueueQ(f)
}

// enqueueQ adds f to the send queue without ever blocking. A frame that would
// take the session past MaxPending ends it: its client is not keeping up,
// and holding more for it would grow without bound. That close starts one
// goroutine per session at most, since the session stops accepting frames
// under the same lock.
func (s *session) enqueueQ(f frame) (bool, <-chan struct{}) {
	size := f.encodedLen()
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return false, nil
	}
	if s.pending+size > s.srv.cfg.MaxPending {
		s.closing = true
		s.dropLocked()
		s.qmu.Unlock()
		s.countSlowClose(s.srv.m.closedMaxPending)
		s.srv.wg.Add(1)
		go func() {
			defer s.srv.wg.Done()
			s.end(&xmpp.StreamError{Condition: xmpp.PolicyViolation, Text: "too much waiting to be sent: the client is not reading"}, endSlowConsumer, true)
		}()
		return false, nil
	}
	s.queue = append(s.queue, f)
	s.pending += size
	var stall chan struct{}
	if s.pending > s.highWater() {
		if s.stall == nil {
			s.stall = make(chan struct{})
		}
		stall = s.stall
	}
	if !s.writing {
		s.writing = true
		s.srv.wg.Add(1)
		go s.writeLoop()
	}
	s.qmu.Unlock()
	return true, stall
}

// dropLocked discards what is queued for a client that will not read it,
// and releases whoever is paced on this session. The batch being written
// stays counted until the writer is done with it.
func (s *session) dropLocked() {
	s.stopping.Store(true)
	clear(s.queue)
	s.queue, s.spare = nil, nil
	s.pending = s.inflight
	s.releaseStallLocked()
}

func (s *session) releaseStallLocked() {
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
}

// maxBatchBytes bounds one corked batch, so that the cork's buffer stays
// small while a large backlog drains, and pending bytes (and with them the
// pacing of producers) go down as the client reads rather than once at the
// end of the backlog.
const maxBatchBytes = 64 << 10

// takeBatchLocked removes the next batch from the queue: frames up to
// maxBatchBytes, at least one. whole reports that it is the entire queue,
// whose slice may then be reused.
func (s *session) takeBatchLocked() (batch []frame, bytes int, whole bool) {
	k := 0
	for k < len(s.queue) {
		n := s.queue[k].encodedLen()
		if k > 0 && bytes+n > maxBatchBytes {
			break
		}
		bytes += n
		k++
	}
	if k == len(s.queue) {
		batch = s.queue
		s.queue = s.spare[:0]
		s.spare = nil
		return batch, bytes, true
	}
	// The enqueuer only appends past the end of s.queue, so the writer may
	// clear this prefix without racing with it.
	batch = s.queue[:k:k]
	s.queue = s.queue[k:]
	return batch, bytes, false
}

var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeLoop drains the queue and exits when it is empty, so an idle session
// has no writer goroutine.
func (s *session) writeLoop() {
	defer s.srv.wg.Done()
	bp := writeBufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			writeBufPool.Put(bp)
		}
	}()
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 || s.stopping.Load() {
			s.writing = false
			s.queue, s.spare = nil, nil
			s.qcond.Broadcast()
			s.qmu.Unlock()
			return
		}
		batch, n, whole := s.takeBatchLocked()
		s.inflight = n
		s.qmu.Unlock()
		corked := s.cork != nil
		if corked {
			s.cork.Cork()
		}
		var err error
		for i := range batch {
			if s.stopping.Load() {
				break
			}
			*bp = batch[i].appendTo((*bp)[:0])
			if err = s.write(*bp, batch[i].kind); err != nil {
				break
			}
			batch[i] = frame{}
		}
		if corked {
			if uerr := s.cork.Uncork(); err == nil {
				err = uerr
			}
		}
		if err != nil {
			s.qmu.Lock()
			s.writing = false
			s.closing = true
			s.inflight = 0
			s.dropLocked()
			s.qcond.Broadcast()
			s.qmu.Unlock()
			if s.cork != nil && s.cork.TimedOut() && s.ctx.Err() == nil && s.countSlowClose(s.srv.m.closedWriteTimeout) {
				s.logger().Info("closing session: no write progress", "write_timeout", s.srv.cfg.WriteTimeout)
			}
			s.cancel()
			return
		}
		clear(batch)
		s.qmu.Lock()
		s.pending -= n
		s.inflight = 0
		if s.pending <= s.highWater() {
			s.releaseStallLocked()
		}
		if whole {
			s.spare = batch[:0]
		}
		s.qmu.Unlock()
	}
}

// countSlowClose counts the session's close as a slow consumer's under c,
// once whatever notices it first; it reports whether this call counted.
func (s *session) countSlowClose(c prometheus.Counter) bool {
	if !s.slow.CompareAndSwap(false, true) {
		return false
	}
	c.Inc()
	return true
}

// write sends one message; the corkConn bounds the time it may block.
func (s *session) write(b []byte, kind string) error {
	err := s.conn.Write(s.ctx, websocket.MessageText, b)
	if err == nil {
		s.srv.m.outCounter(kind).Inc()
		s.countOut(kind)
	}
	return err
}

// paceOn asks this session's reader to wait on stall before its next
// stanza. One channel is kept: a later one replaces it only once it is
// closed, so the reader always waits on a recipient still above its mark.
func (s *session) paceOn(stall <-chan struct{}) {
	s.pmu.Lock()
	if s.pace == nil || isClosed(s.pace) {
		s.pace = stall
	}
	s.pmu.Unlock()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// awaitPace is the reader's side of pacing: while a session this one fed is
// above its high-water mark, the next stanza waits (at most StallTimeout in
// all, or until the session ends), so TCP pushes back on this sender alone
// and nobody else blocks.
func (s *session) awaitPace() {
	var (
		timer *time.Timer
		start time.Time
	)
	for {
		s.pmu.Lock()
		c := s.pace
		s.pace = nil
		s.pmu.Unlock()
		if c == nil || isClosed(c) {
			break
		}
		wait := s.srv.cfg.StallTimeout
		if wait <= 0 {
			break
		}
		if timer == nil {
			start = time.Now()
			timer = time.NewTimer(wait)
			defer timer.Stop()
			if h := s.srv.onStall.Load(); h != nil {
				(*h)()
			}
		}
		select {
		case <-c:
			continue
		case <-timer.C:
		case <-s.ctx.Done():
		}
		break
	}
	if timer != nil {
		s.srv.m.stalls.Inc()
		s.srv.m.stallSeconds.Add(time.Since(start).Seconds())
	}
}

// logger is the session's logger for goroutines other than the reader.
func (s *session) logger() *slog.Logger { return s.shared.Load() }

// setLog replaces the reader's logger and publishes it to the others.
func (s *session) setLog(l *slog.Logger) {
	s.log = l
	s.shared.Store(l)
}

// setHost records the stream's domain for the reader and publishes it for
// a terminate on another goroutine, which may have to write <open/>.
func (s *session) setHost(h string) {
	s.host = h
	s.hostSeen.Store(&h)
}

func (s *session) sharedHost() string {
	if h := s.hostSeen.Load(); h != nil {
		return *h
	}
	return ""
}

func (s *session) onIdle() {
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.PingTimeout)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		if s.ctx.Err() == nil {
			if s.cork != nil && s.cork.TimedOut() {
				s.countSlowClose(s.srv.m.closedWriteTimeout) // the ping itself could not be written
			}
			s.terminate(&xmpp.StreamError{Condition: xmpp.ConnectionTimeout, Text: "no answer to ping"}, endIdle)
		}
		return
	}
	s.timers.idle.Reset(s.srv.cfg.IdleTimeout)
}

// terminate ends the stream from any goroutine, once: it lets the writer
// finish what is queued (bounded by the write watchdog), writes the stream
// error if any and <close/>, then closes the WebSocket with status 1000.
// reason is one of the end* words; the first terminate's is the one logged.
func (s *session) terminate(se *xmpp.StreamError, reason string) {
	s.end(se, reason, false)
}

// end is terminate with the choice to drop what is still queued, for a
// client that is not reading it anyway.
func (s *session) end(se *xmpp.StreamError, reason string, drop bool) {
	s.termOnce.Do(func() {
		s.endReason = reason
		if se != nil {
			s.endCond = se.Condition
		}
		s.qmu.Lock()
		s.closing = true
		if drop {
			s.dropLocked()
		}
		for s.writing {
			s.qcond.Wait()
		}
		s.releaseStallLocked()
		opened := s.opened
		s.opened = true
		s.qmu.Unlock()
		if se != nil {
			s.srv.m.streamErrors.WithLabelValues(string(se.Condition)).Inc()
			s.logger().Debug("stream error", "condition", se.Condition, "text", se.Text, "reason", reason)
		}
		if s.ctx.Err() != nil {
			s.conn.CloseNow()
			return
		}
		if se != nil {
			if !opened {
				s.write(xmpp.Marshal(openElement(s.sharedHost(), s.streamID)), "open")
			}
			s.write(xmpp.Marshal(se.Element()), "error")
		}
		if s.write(xmpp.Marshal(xmpp.Elem("close", xmpp.NSFraming)), "close") != nil {
			s.conn.CloseNow()
			return
		}
		s.conn.Close(websocket.StatusNormalClosure, "")
	})
}

func (s *session) cleanup(readErr error) {
	reason := endConnectionLost
	if readErr != nil {
		reason = s.readEndReason(readErr)
	}
	// The connection is already closed or broken here: cancelling first makes
	// a terminate that has not run yet close at once instead of writing.
	s.cancel()
	s.terminate(nil, reason)
	sm := s.sm.Load()
	// A session with resumption whose connection merely went away stays
	// registered, detached, for a resume (sm.go).
	detached := s.bound.Load() && sm != nil && sm.detach(s, s.endReason)
	if !detached {
		s.logEnded(readErr)
	}
	s.conn.CloseNow()
	s.srv.admit.release(s.raw)
	for _, t := range []*time.Timer{s.timers.auth, s.timers.idle} {
		if t != nil {
			t.Stop()
		}
	}
	if s.bound.Load() && !detached {
		var release func()
		if sm != nil {
			release = sm.closeAttached(s)
		}
		s.unbind(release)
	}
}

// unbind ends a bound session's registration: the router and the cluster
// forget it, then release (if any) handles what stream management never
// saw acknowledged, then the watchers learn of the end. It runs once per
// bound session, after its reader stopped: every stanza the session sent
// has been handed to its service, and nothing is delivered to it now.
func (s *session) unbind(release func()) {
	s.srv.router.unregister(s)
	if rm := s.srv.router.remote; rm != nil {
		rm.Unbound(*s.jid.Load(), s.epoch)
	}
	s.srv.m.sessions.Dec()
	if release != nil {
		release()
	}
	for _, w := range s.srv.router.sessionWatchers() {
		w.SessionEnded(*s.jid.Load(), s.epoch)
	}
}

package ws

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// XEP-0198 Stream Management (urn:xmpp:sm:3).
//
// A session that enables it gets an smState. Every stanza queued for the
// client is also kept, in order, in the state's unacknowledged queue until
// the client's <a h/> covers it; the queue is bounded in bytes
// (Config.SMMaxUnacked) and a client past the bound is closed with
// policy-violation, as the send queue does. Nonzas (<r/>, <a/>, <enabled/>,
// features) are neither counted nor kept.
//
// With resumption enabled, a session whose connection drops (anything but
// the client's <close/> or a close the server decided) is detached instead
// of ended: it stays registered in the router under the same full JID and
// bind epoch, so rooms and other users keep delivering to it, and those
// deliveries only go to the unacknowledged queue. A new stream of the same
// user that sends <resume previd h/> after SASL takes the state over: its
// session adopts the JID, the epoch and the queue, replaces the old one in
// the router, and gets what the client had not acknowledged resent in
// order. Nobody else sees a change: no SessionWatcher call, no Unbound to
// the cluster. A detached session that is not resumed within its timeout
// ends the normal way, and what it never acknowledged is handled as
// RFC 6121 says for a resource that went away (release).
//
// Bind2 (XEP-0386) enables stream management inline through enableSM and
// smFeature; SASL2 may resume inline through resumeSM.

// nsSM is the namespace of XEP-0198 version 3.
const nsSM = "urn:xmpp:sm:3"

// End reasons of a detached session, for "session ended".
const (
	endResumeExpired = "resume-expired" // detached and not resumed in time
)

// smExpiredMemory is how many expired stream ids are remembered, to count
// a late resume as "expired" rather than "unknown"; the oldest is forgotten
// first. It is only a metric's label: the answer is item-not-found either
// way.
const smExpiredMemory = 1024

// smState is one session's stream management: counters, the
// unacknowledged stanzas and, with resumption, the detached state. It
// outlives the connection (and the session object) that enabled it.
type smState struct {
	srv     *Server
	id      string        // the stream id a resume names; "" without resumption
	user    xmpp.JID      // bare JID that may resume it
	timeout time.Duration // how long it waits detached; 0: never detaches

	// handled counts the stanzas received from the client (the h we
	// report). Only the reader of the owning session writes it.
	handled atomic.Uint32

	mu        sync.Mutex
	owner     *session      // the session whose connection carries the stream
	attached  bool          // owner has a live connection
	ended     bool          // the session is gone for good
	overflow  bool          // SMMaxUnacked was passed: ending, nothing more is taken
	detachedC chan struct{} // closed when the attached owner detaches or ends
	unacked   []frame       // sent, not acknowledged, oldest first
	bytes     int           // encoded size of unacked
	sent      uint32        // stanzas sent: the h the client will report
	acked     uint32        // the client's last h
	sinceReq  int           // stanzas sent since our last <r/>
	reqTimer  *time.Timer   // requests an ack SMAckInterval after a stanza
	expiry    *time.Timer   // ends a detached session
}

// smTable is the server's stream-management bookkeeping: every enabled
// state (for the unacked-bytes gauge), the resumable ones by id, and the
// detached ones, which Shutdown ends. detached is written with srv.mu held
// too, so that Shutdown's snapshot and a new detachment cannot cross.
type smTable struct {
	mu       sync.Mutex
	all      map[*smState]struct{}
	byID     map[string]*smState
	detached map[*smState]struct{}
	expired  map[string]struct{} // recently expired ids, for the metric only
	expOrder []string            // expired's ids, oldest first
	start    uint32              // first value of every counter (tests of wrapping)

	// hook, if set, learns "detached", "resumed" and "ended" (of a
	// detached session) as they happen: tests wait on it instead of time.
	hook atomic.Pointer[func(event string)]
}

func (t *smTable) event(ev string) {
	if h := t.hook.Load(); h != nil {
		(*h)(ev)
	}
}

func (t *smTable) init() {
	t.all = make(map[*smState]struct{})
	t.byID = make(map[string]*smState)
	t.detached = make(map[*smState]struct{})
	t.expired = make(map[string]struct{})
}

func (t *smTable) add(sm *smState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.all == nil {
		t.init()
	}
	t.all[sm] = struct{}{}
	if sm.id != "" {
		t.byID[sm.id] = sm
	}
}

// remove forgets sm; expired records its id as having expired.
func (t *smTable) remove(sm *smState, expired bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.all, sm)
	delete(t.detached, sm)
	if sm.id == "" || t.byID[sm.id] != sm {
		return
	}
	delete(t.byID, sm.id)
	if expired {
		if len(t.expOrder) >= smExpiredMemory {
			delete(t.expired, t.expOrder[0])
			t.expOrder = t.expOrder[1:]
		}
		t.expired[sm.id] = struct{}{}
		t.expOrder = append(t.expOrder, sm.id)
	}
}

func (t *smTable) lookup(id string) (sm *smState, expired bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sm := t.byID[id]; sm != nil {
		return sm, false
	}
	_, expired = t.expired[id]
	return nil, expired
}

// takeDetached lists the detached sessions; the caller holds srv.mu, so
// that none detaches after it (detach checks srv.shutdown under srv.mu).
func (t *smTable) takeDetached() []*smState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*smState, 0, len(t.detached))
	for sm := range t.detached {
		out = append(out, sm)
	}
	return out
}

// unackedBytes sums the unacknowledged queues, at scrape time.
func (t *smTable) unackedBytes() (total int) {
	t.mu.Lock()
	list := make([]*smState, 0, len(t.all))
	for sm := range t.all {
		list = append(list, sm)
	}
	t.mu.Unlock()
	for _, sm := range list {
		sm.mu.Lock()
		total += sm.bytes
		sm.mu.Unlock()
	}
	return total
}

// smMaxUnacked is Config.SMMaxUnacked with its default applied.
func (srv *Server) smMaxUnacked() int {
	if n := srv.cfg.SMMaxUnacked; n > 0 && n <= srv.cfg.MaxPending {
		return n
	}
	return srv.cfg.MaxPending
}

// smFeature reports whether the post-SASL stream features offer stream
// management (and so whether Bind2 may list it as an inline feature). It is
// always on: acks cost a counter and the bound the send queue has anyway;
// resumption has its own switch (SMResumeTimeout 0).
func (s *session) smFeature() bool { return true }

// isStanzaKind tells stanzas (counted by XEP-0198) from nonzas.
func isStanzaKind(kind string) bool {
	return kind == xmpp.KindMessage || kind == xmpp.KindPresence || kind == xmpp.KindIQ
}

func smElem(local string) *etree.Element { return xmpp.Elem(local, nsSM) }

// smFailed is <failed/> with a stanza error condition.
func smFailed(c xmpp.Condition) *etree.Element {
	f := smElem("failed")
	f.CreateElement(string(c)).CreateAttr("xmlns", xmpp.NSStanzas)
	return f
}

// handleSM processes a stream-management nonza from the client.
func (s *session) handleSM(el *etree.Element) *xmpp.StreamError {
	switch el.Tag {
	case "enable":
		if s.st != stateActive {
			s.sendElement(smFailed(xmpp.UnexpectedRequest))
			return nil
		}
		maxSecs, _ := strconv.Atoi(xmpp.Attr(el, "max"))
		resume := xmpp.Attr(el, "resume")
		s.sendElement(s.enableSM(resume == "true" || resume == "1", maxSecs))
		return nil
	case "resume":
		if s.st != stateBind {
			s.sendElement(smFailed(xmpp.UnexpectedRequest))
			return nil
		}
		h, err := strconv.ParseUint(xmpp.Attr(el, "h"), 10, 32)
		if err != nil {
			s.sendElement(smFailed(xmpp.BadRequest))
			return nil
		}
		s.resumeSM(xmpp.Attr(el, "previd"), uint32(h), s.sendElement)
		return nil
	}
	sm := s.sm.Load()
	if sm == nil || s.st != stateActive {
		return &xmpp.StreamError{Condition: xmpp.UnsupportedStanzaType, Text: "stream management is not enabled"}
	}
	switch el.Tag {
	case "r":
		a := smElem("a")
		a.CreateAttr("h", strconv.FormatUint(uint64(sm.handled.Load()), 10))
		s.sendElement(a)
		return nil
	case "a":
		h, err := strconv.ParseUint(xmpp.Attr(el, "h"), 10, 32)
		if err != nil {
			return &xmpp.StreamError{Condition: xmpp.BadFormat, Text: "<a/> needs a 32-bit h"}
		}
		if !sm.ack(uint32(h)) {
			return &xmpp.StreamError{Condition: xmpp.UndefinedConditionName, Text: "handled-count-too-high: h acknowledges stanzas never sent"}
		}
		return nil
	}
	return &xmpp.StreamError{Condition: xmpp.UnsupportedStanzaType, Text: "unsupported element <" + el.Tag + "/> in " + nsSM}
}

// enableSM turns stream management on for a bound session and returns the
// answer to send: <enabled/> (with id, resume and max when resumption was
// asked for and is allowed), or <failed/> when it is already on or the
// session is not bound. maxSecs is the client's preferred resumption
// timeout in seconds (0: none); the server's is the ceiling. It runs on the
// session's reader; Bind2 calls it for an inline <enable/>.
func (s *session) enableSM(resume bool, maxSecs int) *etree.Element {
	if !s.smFeature() || !s.bound.Load() || s.sm.Load() != nil {
		return smFailed(xmpp.UnexpectedRequest)
	}
	srv := s.srv
	sm := &smState{srv: srv, user: s.user.Bare(), owner: s, attached: true, detachedC: make(chan struct{})}
	start := srv.smt.startValue()
	sm.sent, sm.acked = start, start
	sm.handled.Store(start)
	enabled := smElem("enabled")
	if resume && srv.cfg.SMResumeTimeout > 0 {
		sm.timeout = srv.cfg.SMResumeTimeout
		if maxSecs > 0 && time.Duration(maxSecs)*time.Second < sm.timeout {
			sm.timeout = time.Duration(maxSecs) * time.Second
		}
		sm.id = randomID() + randomID()
		enabled.CreateAttr("id", sm.id)
		enabled.CreateAttr("resume", "true")
		enabled.CreateAttr("max", strconv.Itoa(int((sm.timeout+time.Second-1)/time.Second)))
	}
	srv.smt.add(sm)
	s.sm.Store(sm)
	srv.m.smEnabled.Inc()
	return enabled
}

func (t *smTable) startValue() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start
}

// send queues a stanza for the session that carries the stream now, and
// keeps it until acknowledged. It reports whether the stream took it: a
// detached session takes stanzas into the unacknowledged queue alone. A
// stanza that would pass SMMaxUnacked ends the session with
// policy-violation and is refused.
func (sm *smState) send(f frame) (bool, <-chan struct{}) {
	size := f.encodedLen()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.ended || sm.overflow {
		return false, nil
	}
	if sm.bytes+size > sm.srv.smMaxUnacked() {
		sm.overflowLocked()
		return false, nil
	}
	sm.unacked = append(sm.unacked, f)
	sm.bytes += size
	sm.sent++
	if !sm.attached {
		return true, nil
	}
	_, stall := sm.owner.enqueueQ(f)
	sm.sinceReq++
	cfg := &sm.srv.cfg
	switch {
	case cfg.SMAckEvery > 0 && sm.sinceReq >= cfg.SMAckEvery:
		sm.requestLocked()
	case cfg.SMAckInterval > 0 && sm.reqTimer == nil:
		sm.reqTimer = time.AfterFunc(cfg.SMAckInterval, sm.requestLater)
	}
	return true, stall
}

// requestLocked queues <r/> for the attached owner.
func (sm *smState) requestLocked() {
	sm.sinceReq = 0
	if sm.reqTimer != nil {
		sm.reqTimer.Stop()
		sm.reqTimer = nil
	}
	sm.owner.enqueueQ(frame{raw: smRequest, kind: "r"})
}

var smRequest = xmpp.Marshal(smElem("r"))

// requestLater is the interval's ack request: stanzas went out and no
// request followed them within SMAckInterval.
func (sm *smState) requestLater() {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.reqTimer = nil
	if sm.attached && !sm.ended && sm.sinceReq > 0 {
		sm.requestLocked()
	}
}

// overflowLocked ends a client that does not acknowledge what it is sent:
// an attached one with policy-violation, a detached one at once.
func (sm *smState) overflowLocked() {
	sm.overflow = true // one close, however many deliveries follow
	srv := sm.srv
	owner := sm.owner
	if sm.attached {
		owner.countSlowClose(srv.m.closedMaxUnacked)
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			owner.end(&xmpp.StreamError{Condition: xmpp.PolicyViolation, Text: "too many stanzas not acknowledged"}, endSlowConsumer, true)
		}()
		return
	}
	srv.mu.Lock()
	down := srv.shutdown
	if !down {
		srv.wg.Add(1)
	}
	srv.mu.Unlock()
	if down {
		return // Shutdown ends it
	}
	owner.countSlowClose(srv.m.closedMaxUnacked)
	go func() {
		defer srv.wg.Done()
		sm.finish(endSlowConsumer)
	}()
}

// ack applies the client's <a h/>: the stanzas up to h leave the queue. It
// reports false for an h beyond what was sent (counters wrap at 2^32).
func (sm *smState) ack(h uint32) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.ackLocked(h)
}

func (sm *smState) ackLocked(h uint32) bool {
	n := h - sm.acked
	if n > sm.sent-sm.acked {
		return false
	}
	for i := range sm.unacked[:n] {
		sm.bytes -= sm.unacked[i].encodedLen()
		sm.unacked[i] = frame{}
	}
	sm.unacked = sm.unacked[n:]
	if len(sm.unacked) == 0 {
		sm.unacked = nil // let the array go
	}
	sm.acked = h
	return true
}

// detachable reports whether a session that ended this way may wait for a
// resume: the connection went away, as opposed to the client's <close/> or
// a close the server decided.
func detachable(reason string, streamClosed bool) bool {
	switch reason {
	case endConnectionLost, endIdle:
		return true
	case endClientClosed:
		return !streamClosed // a WebSocket close or EOF without <close/>: a reload, a lost network
	}
	return false
}

// detach keeps the session of s registered without a connection, for a
// resume within the timeout; it reports false when the session must end
// instead. It runs in s's cleanup, after its reader stopped.
func (sm *smState) detach(s *session, reason string) bool {
	if sm.timeout <= 0 || !detachable(reason, s.streamClosed) {
		return false
	}
	srv := sm.srv
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.ended || sm.overflow || sm.owner != s || !sm.attached {
		return false
	}
	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		return false
	}
	srv.smt.mu.Lock()
	srv.smt.detached[sm] = struct{}{}
	srv.smt.mu.Unlock()
	srv.mu.Unlock()
	sm.attached = false
	if sm.reqTimer != nil {
		sm.reqTimer.Stop()
		sm.reqTimer = nil
	}
	sm.expiry = time.AfterFunc(sm.timeout, sm.expire)
	close(sm.detachedC)
	srv.m.smDetached.Inc()
	s.logger().Info("session detached", "reason", reason, "unacked", len(sm.unacked), "resume_timeout", sm.timeout)
	srv.smt.event("detached")
	return true
}

// expire is the detached session's timer.
func (sm *smState) expire() {
	srv := sm.srv
	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		return // Shutdown ends every detached session itself
	}
	srv.wg.Add(1)
	srv.mu.Unlock()
	defer srv.wg.Done()
	sm.finish(endResumeExpired)
}

// stop ends s whatever its state: a live stream with se (terminate), a
// detached one at once (it has no stream to tell).
func (s *session) stop(se *xmpp.StreamError, reason string) {
	s.terminate(se, reason)
	if sm := s.sm.Load(); sm != nil {
		sm.mu.Lock()
		mine := sm.owner == s && !sm.attached
		sm.mu.Unlock()
		if mine {
			sm.finish(reason)
		}
	}
}

// finish ends a detached session for good: the normal end of a session
// (unregistered, the cluster told, watchers called) with what was never
// acknowledged released as for a resource that went away.
func (sm *smState) finish(reason string) {
	sm.mu.Lock()
	if sm.ended || sm.attached {
		sm.mu.Unlock()
		return
	}
	owner := sm.owner
	list := sm.endLocked()
	sm.mu.Unlock()
	sm.srv.m.smDetached.Dec()
	sm.srv.smt.remove(sm, reason == endResumeExpired)
	owner.unbind(func() { sm.srv.router.releaseAll(owner, list) })
	owner.logger().Info("session ended", "reason", reason, "unacked", len(list))
	sm.srv.smt.event("ended")
}

// endLocked marks the state ended and takes what was never acknowledged.
func (sm *smState) endLocked() []frame {
	sm.ended = true
	for _, t := range []*time.Timer{sm.reqTimer, sm.expiry} {
		if t != nil {
			t.Stop()
		}
	}
	sm.reqTimer, sm.expiry = nil, nil
	list := sm.unacked
	sm.unacked, sm.bytes = nil, 0
	if sm.attached {
		sm.attached = false
		close(sm.detachedC)
	}
	return list
}

// closeAttached ends the state of an attached session that ends for good
// (its cleanup, not detached); the returned function, run once the session
// is unregistered, releases what was never acknowledged.
func (sm *smState) closeAttached(s *session) func() {
	sm.mu.Lock()
	if sm.ended || sm.owner != s {
		sm.mu.Unlock()
		return nil
	}
	list := sm.endLocked()
	sm.mu.Unlock()
	sm.srv.smt.remove(sm, false)
	if len(list) == 0 {
		return nil
	}
	return func() { sm.srv.router.releaseAll(s, list) }
}

// releaseAll handles what a session that ended never acknowledged as
// RFC 6121 §8.5.3 and XEP-0198 §4 say for a resource that went away:
//   - a chat or normal message from a user: addressed to this resource, it
//     goes to the user's other online resources; bounced to its sender with
//     recipient-unavailable when there are none (addressed to the bare JID
//     with other resources online, they had their own copy);
//   - a message from a room, groupchat, headline or error: dropped (the
//     room's archive has it);
//   - an iq get or set: answered to its sender with service-unavailable;
//   - presence and iq results: dropped.
func (r *Router) releaseAll(s *session, list []frame) {
	for i := range list {
		r.releaseUnacked(s, &list[i])
	}
}

// releaseUnacked is release for one stanza.
func (r *Router) releaseUnacked(s *session, f *frame) {
	el, err := xmpp.ParseElement(f.appendTo(nil))
	if err != nil {
		return // our own serialisation: cannot happen
	}
	st, _, fromErr := xmpp.NewStanza(el)
	if fromErr != nil || st.From.IsZero() {
		return
	}
	switch st.Kind {
	case xmpp.KindIQ:
		if st.Type == "get" || st.Type == "set" {
			r.sendAnywhere(st.From, xmpp.ErrorReply(st, xmpp.NewError(xmpp.ServiceUnavailable, "the recipient went away before answering")))
		}
		return
	case xmpp.KindPresence:
		return
	}
	if st.Type != "" && st.Type != "normal" && st.Type != "chat" {
		return
	}
	r.mu.RLock()
	_, fromService := r.services[st.From.Domain]
	r.mu.RUnlock()
	if fromService || st.From.Local == "" {
		return
	}
	bare := s.jid.Load().Bare()
	others := r.Online(bare) || (r.remote != nil && r.remote.Has(bare))
	if others {
		if st.To.Resource == "" {
			return // the other resources had their own copy
		}
		out := xmpp.NewOutbound(el)
		ok := r.DeliverAs(bare, f.to, out)
		if r.remote != nil && r.remote.Has(bare) && r.remote.Route(bare, f.to, out.Kind(), out.Bytes("")) {
			ok = true
		}
		if ok {
			return
		}
	}
	r.sendAnywhere(st.From, xmpp.ErrorReply(st, xmpp.NewError(recipientUnavailable, "the recipient went away before reading it")))
}

// recipientUnavailable is RFC 6120 §8.3.3.13.
const recipientUnavailable xmpp.Condition = "recipient-unavailable"

// sendAnywhere delivers a server-generated element to a JID on this node
// or another.
func (r *Router) sendAnywhere(to xmpp.JID, el *etree.Element) {
	out := xmpp.NewOutbound(el)
	if r.Deliver(to, out) {
		return
	}
	if r.remote != nil && r.remote.Has(to) {
		r.remote.Route(to, to.String(), out.Kind(), out.Bytes(""))
	}
}

// resumeSM resumes the detached (or still attached: it is taken over)
// session named by previd on this session, which has authenticated but not
// bound, given h, the count of stanzas the client received. reply gets the
// answer, <resumed/> or <failed/>, before any resent stanza is queued (Bind2
// and SASL2 wrap it). It runs on the session's reader.
func (s *session) resumeSM(previd string, h uint32, reply func(*etree.Element) bool) {
	srv := s.srv
	sm, expired := srv.smt.lookup(previd)
	if sm == nil || sm.user != s.user.Bare() {
		result := "unknown"
		if expired && sm == nil {
			result = "expired"
		}
		srv.m.smResumptions.WithLabelValues(result).Inc()
		reply(smFailed(xmpp.ItemNotFound))
		return
	}
	sm.mu.Lock()
	if sm.attached && !sm.ended {
		// A client that lost its socket without the server noticing yet:
		// the older connection is closed and detaches, then this one takes
		// the session.
		old, c := sm.owner, sm.detachedC
		sm.mu.Unlock()
		old.cancel()
		wait := time.NewTimer(srv.cfg.WriteTimeout + time.Second)
		select {
		case <-c:
		case <-wait.C:
		case <-s.ctx.Done():
		}
		wait.Stop()
		sm.mu.Lock()
	}
	if sm.ended || sm.attached {
		sm.mu.Unlock()
		srv.m.smResumptions.WithLabelValues("unknown").Inc()
		reply(smFailed(xmpp.ItemNotFound))
		return
	}
	if !sm.ackLocked(h) {
		sm.mu.Unlock()
		srv.m.smResumptions.WithLabelValues("unknown").Inc()
		f := smFailed(xmpp.UndefinedConditionName)
		f.CreateAttr("h", strconv.FormatUint(uint64(sm.handled.Load()), 10))
		reply(f)
		return
	}
	if sm.expiry != nil {
		sm.expiry.Stop()
		sm.expiry = nil
	}
	old := sm.owner
	full := *old.jid.Load()
	s.jidStr, s.bareStr, s.epoch = old.jidStr, old.bareStr, old.epoch
	s.jid.Store(&full)
	s.bound.Store(true)
	if !srv.router.replace(old, s) {
		// A new bind took the resource a moment ago; it ends this one.
		s.bound.Store(false)
		s.jid.Store(nil)
		sm.mu.Unlock()
		srv.m.smResumptions.WithLabelValues("unknown").Inc()
		reply(smFailed(xmpp.ItemNotFound))
		return
	}
	s.sm.Store(sm)
	sm.owner, sm.attached, sm.detachedC = s, true, make(chan struct{})
	sm.sinceReq = 0
	srv.smt.mu.Lock()
	delete(srv.smt.detached, sm)
	srv.smt.mu.Unlock()
	resumed := smElem("resumed")
	resumed.CreateAttr("previd", previd)
	resumed.CreateAttr("h", strconv.FormatUint(uint64(sm.handled.Load()), 10))
	reply(resumed)
	for _, f := range sm.unacked {
		s.enqueueQ(f)
	}
	resent := len(sm.unacked)
	if resent > 0 {
		sm.requestLocked()
	}
	sm.mu.Unlock()

	srv.m.smDetached.Dec()
	srv.m.smResumptions.WithLabelValues("ok").Inc()
	srv.admit.release(s.raw)
	if s.timers.auth != nil {
		s.timers.auth.Stop()
	}
	s.st = stateActive
	s.setLog(s.log.With("jid", full.String()))
	s.log.Info("session resumed", "resent", resent)
	srv.smt.event("resumed")
}

package roomhub

import (
	"context"
	"errors"
	"github.com/wschat/xmppws/room"
	"sync"
	"time"

	"github.com/wschat/xmppws/limits"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// actor owns one room's state. Only its goroutine touches the fields below
// limiter.
type actor struct {
	hub *Hub
	jid xmpp.JID
	// mailbox holds pointers: a slot costs 8 bytes, not a whole request.
	mailbox chan *mail
	// postMu orders senders against unloading: senders post under its read
	// lock once they have seen closed false; the actor sets closed under
	// its write lock, after which nobody posts.
	postMu  sync.RWMutex
	closed  bool
	limiter *limits.RoomLimiter // nil: no limits
	fence   Fence               // nil: always free to act (one node)

	loaded  bool // state below reflects the store
	exists  bool
	cfg     roomstore.Config
	affs    []room.Aff
	version string
	affsAt  time.Time // when affs were read, for cache_affs

	// occupants are the XEP-0045 sessions in the room; never stored.
	occupants []room.Occupant

	// Groupchat messages accepted but waiting for their archive write.
	seq       uint64
	pending   []pendingMsg
	abandoned uint64 // the last seq refused without its archive verdict
	commits   *commits
	// floor is the time of the room's newest archived id when the actor
	// took the room (OrderedIDs), read once (floorRead).
	floor     time.Time
	floorRead bool
}

func newActor(h *Hub, jid xmpp.JID) *actor {
	return &actor{hub: h, jid: jid, mailbox: make(chan *mail, h.mailboxSize),
		limiter: limits.NewRoomLimiter(&h.limits, jid, h.now()),
		commits: &commits{poke: make(chan struct{}, 1)}}
}

// postResult says what became of a request handed to an actor.
type postResult int

const (
	posted        postResult = iota
	postClosed               // the actor unloaded: post to a new one
	postTimeout              // the mailbox stayed full for mailbox_wait
	postCancelled            // the sender's ctx ended or the hub is closing
)

// post queues a request, waiting while the mailbox is full: up to
// mailbox_wait for a sender's request, as long as the hub runs for an
// internal one (those must never be dropped).
func (r *actor) post(ctx context.Context, m *mail) postResult {
	r.postMu.RLock()
	defer r.postMu.RUnlock()
	if r.closed {
		return postClosed
	}
	select {
	case r.mailbox <- m:
		return posted
	default:
	}
	h := r.hub
	h.m.mailboxWaits.Inc()
	if h.onWait != nil {
		h.onWait()
	}
	var expired <-chan time.Time
	if !m.req.Header().Origin.Internal() {
		t := time.NewTimer(h.opts.MailboxWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r.mailbox <- m:
		return posted
	case <-expired:
		return postTimeout
	case <-ctx.Done():
	case <-h.stopping:
	}
	return postCancelled
}

func (r *actor) run() {
	defer r.hub.actors.Done()
	idle := time.NewTimer(r.hub.idleTimeout)
	defer idle.Stop()
	var lost <-chan struct{}
	if r.fence != nil {
		lost = r.fence.Done()
	}
	for {
		select {
		case <-lost:
			r.moved()
			return
		case m := <-r.mailbox:
			r.handle(m)
			idle.Reset(r.hub.idleTimeout)
		case <-r.commits.poke:
			r.deliverCommitted()
		case <-idle.C:
			// Occupants are not stored: a room they are in stays loaded.
			if len(r.pending) == 0 && len(r.occupants) == 0 && r.hub.unload(r) {
				return
			}
			idle.Reset(r.hub.idleTimeout)
		case <-r.hub.stopping:
			r.drain()
			return
		}
	}
}

// moved ends the actor when its right to act lapsed: nobody posts any
// more, what is queued is refused (the clients retry, and reach the next
// owner), and messages already archived are delivered.
func (r *actor) moved() {
	h := r.hub
	// Senders waiting for room in the mailbox hold postMu's read lock:
	// refuse what they posted until they are through.
	for !r.postMu.TryLock() {
		select {
		case m := <-r.mailbox:
			h.fail(m.req, errMoved)
			if m.release != nil {
				m.release()
			}
		case <-time.After(time.Millisecond):
		}
	}
	r.closed = true
	r.postMu.Unlock()
	h.mu.Lock()
	if h.rooms[r.jid] == r {
		delete(h.rooms, r.jid)
	}
	h.mu.Unlock()
	for {
		select {
		case m := <-r.mailbox:
			h.fail(m.req, errMoved)
			if m.release != nil {
				m.release()
			}
			continue
		default:
		}
		break
	}
	if !r.settle() {
		r.abandonPending()
	}
	r.fence.Release()
	if h.onUnload != nil {
		h.onUnload(r.jid)
	}
}

// drain ends the actor at Close: no request may arrive any more, those
// queued are handled as usual, and every pending message is settled.
func (r *actor) drain() {
	r.postMu.Lock() // senders see stopping and leave, so this is short
	r.closed = true
	r.postMu.Unlock()
	for {
		select {
		case m := <-r.mailbox:
			r.handle(m)
			continue
		default:
		}
		break
	}
	if !r.settle() {
		r.abandonPending()
	}
	if r.fence != nil {
		r.fence.Release()
	}
}

// storeCtx bounds one store call by the configured store timeout.
func (r *actor) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.hub.ctx, r.hub.storeTimeout)
}

// load reads the room from the store when the actor has no valid state.
func (r *actor) load() error {
	if r.loaded {
		return nil
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	cfg, version, err := r.hub.store.GetConfig(ctx, r.jid)
	if errors.Is(err, roomstore.ErrRoomNotFound) {
		r.loaded, r.exists = true, false
		return nil
	}
	if err != nil {
		return err
	}
	affs, _, err := r.hub.store.GetAffUsers(ctx, r.jid)
	if errors.Is(err, roomstore.ErrRoomNotFound) {
		r.loaded, r.exists = true, false
		return nil
	}
	if err != nil {
		return err
	}
	r.loaded, r.exists = true, true
	r.cfg, r.affs, r.version, r.affsAt = cfg, affs, version, r.hub.now()
	return nil
}

// refreshAffs rereads the occupants when the cache policy says they may be
// stale: always without cache_affs, after time_to_live with it.
func (r *actor) refreshAffs() error {
	o := r.hub.opts
	if o.CacheAffs && r.hub.now().Sub(r.affsAt) < o.CacheAffsTTL {
		return nil
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	affs, version, err := r.hub.store.GetAffUsers(ctx, r.jid)
	if errors.Is(err, roomstore.ErrRoomNotFound) {
		r.exists, r.affs = false, nil
		return nil
	}
	if err != nil {
		return err
	}
	r.affs, r.version, r.affsAt = affs, version, r.hub.now()
	return nil
}

// forget drops the state after the room is gone.
func (r *actor) forget() {
	r.loaded, r.exists, r.cfg, r.affs, r.version = true, false, nil, nil, ""
}

func (r *actor) handle(m *mail) {
	req := m.req
	if r.hub.onHandle != nil {
		r.hub.onHandle(req)
	}
	if m.release != nil {
		// A query that does not start gives its place back at once.
		defer func() {
			if m.release != nil {
				m.release()
			}
		}()
	}
	if r.fence != nil && !r.fence.Valid() {
		// Past the lease's safe end another node may act already: no
		// store write, no delivery from here.
		r.hub.fail(req, errMoved)
		return
	}
	switch q := req.(type) {
	case *room.Removed:
		r.removed(q)
		return
	case *room.Leave:
		r.leave(q)
		return
	}
	if err := r.load(); err != nil {
		r.loaded = false
		r.hub.fail(req, err)
		return
	}
	var err error
	_, join := req.(*room.Join)
	if c, ok := req.(*room.Create); ok {
		err = r.create(c, m.rated)
	} else if join && !r.exists {
		err = r.joinCreate(req.(*room.Join), m.rated)
	} else if !r.exists {
		err = xmpp.NewError(xmpp.ItemNotFound, "no such room")
	} else {
		switch req.(type) {
		case *room.Post, *room.Moderate: // the sender's right is checked against the store
			if err = r.refreshAffs(); err != nil {
				r.hub.fail(req, err)
				return
			}
		}
		sender := req.Header().Origin.From.Bare()
		aff := room.AffOf(r.affs, sender)
		switch {
		case join && aff == room.None:
			err = xmpp.NewError(xmpp.RegistrationRequired, "only members may enter this room")
		case !r.exists || aff == room.None:
			err = xmpp.NewError(xmpp.ItemNotFound, "you are not an occupant of this room")
		default:
			err = r.apply(m, sender, aff)
		}
	}
	if err != nil {
		r.hub.fail(req, err)
	}
}

// apply runs a request of an occupant with affiliation aff.
func (r *actor) apply(m *mail, sender xmpp.JID, aff room.Affiliation) error {
	switch q := m.req.(type) {
	case *room.Post:
		if err := r.limit(sender, aff, q.Body); err != nil {
			return err
		}
		if q.Replace != "" || q.Retract != "" || q.React != nil || q.Displayed != "" {
			return r.fasten(q, sender)
		}
		return r.groupchat(q, sender)
	case *room.Moderate:
		if err := r.limit(sender, aff, ""); err != nil {
			return err
		}
		return r.moderate(q, sender, aff)
	case *room.Destroy:
		return r.destroy(q, aff)
	case *room.GetConfig:
		return r.getConfig(q)
	case *room.SetConfig:
		if err := r.limit(sender, aff, ""); err != nil {
			return err
		}
		return r.setConfig(q, aff)
	case *room.GetAffs:
		return r.getAffs(q)
	case *room.ChangeAffs:
		return r.changeAffs(q, sender, aff)
	case *room.GetInfo:
		return r.getInfo(q)
	case *room.Join:
		return r.join(q, sender, aff)
	case *room.Ping, *room.AcceptDefaults:
		r.ok(m.req, room.Reply{})
		return nil
	case *room.QueryHistory:
		release := m.release
		m.release = nil // the query gives its place back when it ends
		r.hub.wg.Add(1)
		go r.hub.runQuery(q, release)
		return nil
	}
	return xmpp.NewError(xmpp.ServiceUnavailable, "")
}

// ok sends the successful reply to a request, rep's other fields as set.
func (r *actor) ok(req room.Request, rep room.Reply) {
	hd := req.Header()
	if hd.Origin.Internal() {
		return
	}
	rep.Room, rep.Origin, rep.Op = r.jid, hd.Origin, room.TypeName(req)
	r.hub.sink.Reply(rep)
}

// limit passes an event of sender through the room's flood limiter; a
// refusal is counted, logged (throttled) and returned for the sender alone.
func (r *actor) limit(sender xmpp.JID, aff room.Affiliation, body string) error {
	ref := r.limiter.Check(aff, body, r.hub.now())
	if ref == nil {
		return nil
	}
	r.hub.m.limiterRefusals.WithLabelValues(ref.Reason, r.hub.services[r.jid.Domain]).Inc()
	r.hub.logRefused(sender, r.jid, ref.Reason)
	return refusalError(ref)
}

// limitNick checks a nick (XEP-0045 join, join-create) against the limiter.
func (r *actor) limitNick(sender xmpp.JID, aff room.Affiliation, nick string) error {
	ref := r.limiter.CheckNick(aff, nick)
	if ref == nil {
		return nil
	}
	r.hub.m.limiterRefusals.WithLabelValues(ref.Reason, r.hub.services[r.jid.Domain]).Inc()
	r.hub.logRefused(sender, r.jid, ref.Reason)
	return refusalError(ref)
}

// removed brings the actor up to date after the store took a user out of
// the room, and announces the change as if the user had left.
func (r *actor) removed(q *room.Removed) {
	r.loaded = false // reread: the store is the truth, the cache may predate the change
	if err := r.load(); err != nil {
		r.hub.log.Error("reloading room after user removal", "room", r.jid.String(), "err", err)
	}
	if len(q.Result.New) == 0 {
		r.gone() // the user was the last occupant, or the domain went
		r.logDestroyed(&q.Head, "removed")
	}
	if err := r.announce(&q.Head, q.NoticeID, q.Result, xmpp.JID{Domain: r.jid.Domain}); err != nil {
		r.hub.log.Error("announcing a user's removal", "room", r.jid.String(), "err", err)
	}
	if !r.exists {
		r.occupants = nil // the room went with its domain: nobody is in it
	}
}

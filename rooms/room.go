package rooms

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// op is what a room request asks for.
type op int

const (
	opGroupchat op = iota
	opCreate
	opDestroy
	opGetConfig
	opSetConfig
	opGetAffs
	opSetAffs
	opGetInfo
	opRemoved // internal: a user was removed from the room behind the actor's back
	opJoin    // legacy: presence to room/nick (creates a missing room)
	opLeave   // legacy: unavailable presence to room/nick
	opPing    // legacy: an iq answered with an empty result when the sender is an occupant
	opMAMQuery
)

// roomOp maps a room request's namespace and iq type to its op; false for
// combinations the protocol does not define (a get of #destroy, a set of #info).
func roomOp(ns, typ string) (op, bool) {
	get := typ == "get"
	switch ns {
	case NSConfiguration:
		if get {
			return opGetConfig, true
		}
		return opSetConfig, true
	case NSAffiliations:
		if get {
			return opGetAffs, true
		}
		return opSetAffs, true
	case NSInfo:
		return opGetInfo, get
	case NSDestroy:
		return opDestroy, !get
	}
	return 0, false
}

// request is one stanza for a room actor.
type request struct {
	st        *xmpp.Stanza
	op        op
	fields    []configField // create, set config: as requested
	items     []AffItem     // create (occupants), set affiliations
	version   string        // gets: the version the client has
	legacy    bool          // the request came in the XEP-0045 form; answer in it
	nick      string        // legacy join: the requested nick
	mam       *mamQuery     // an archive query
	generated bool          // create with a server-chosen name: answer from the service
	removal   *AffResult    // opRemoved: the change the store applied
	id        string        // opRemoved: the notification id
	rated     bool          // create_rate was spent already (by dispatch)
}

// room is the actor that owns one room's state. Only its goroutine touches
// the fields below limiter.
type room struct {
	hub *Hub
	jid xmpp.JID
	// mailbox holds pointers: a slot costs 8 bytes, not a whole request,
	// so a loaded room's empty mailbox is small for the heap and the GC.
	mailbox chan *request
	// postMu orders senders against unloading: senders post under its read
	// lock once they have seen closed false; the actor sets closed under
	// its write lock, after which nobody posts.
	postMu  sync.RWMutex
	closed  bool
	limiter *roomLimiter // nil: no limits

	loaded  bool // state below reflects the store
	exists  bool
	cfg     Config
	affs    []Aff
	version string
	affsAt  time.Time // when affs were read, for cache_affs

	// Groupchat messages accepted but waiting for their archive write.
	seq       uint64
	pending   []pendingMsg
	abandoned uint64 // the last seq refused without its archive verdict
	commits   *commits
}

func newRoom(h *Hub, jid xmpp.JID) *room {
	return &room{hub: h, jid: jid, mailbox: make(chan *request, h.mailboxSize), limiter: newRoomLimiter(&h.limits, jid, h.now()),
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
func (r *room) post(ctx context.Context, req request) postResult {
	r.postMu.RLock()
	defer r.postMu.RUnlock()
	if r.closed {
		return postClosed
	}
	select {
	case r.mailbox <- &req:
		return posted
	default:
	}
	h := r.hub
	h.m.mailboxWaits.Inc()
	if h.onWait != nil {
		h.onWait()
	}
	var expired <-chan time.Time
	if req.st != nil {
		t := time.NewTimer(h.opts.MailboxWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case r.mailbox <- &req:
		return posted
	case <-expired:
		return postTimeout
	case <-ctx.Done():
	case <-h.stopping:
	}
	return postCancelled
}

func (r *room) run() {
	defer r.hub.actors.Done()
	idle := time.NewTimer(r.hub.idleTimeout)
	defer idle.Stop()
	for {
		select {
		case req := <-r.mailbox:
			r.handle(*req)
			idle.Reset(r.hub.idleTimeout)
		case <-r.commits.poke:
			r.deliverCommitted()
		case <-idle.C:
			if len(r.pending) == 0 && r.hub.unload(r) {
				return
			}
			idle.Reset(r.hub.idleTimeout)
		case <-r.hub.stopping:
			r.drain()
			return
		}
	}
}

// drain ends the actor at Close: no request may arrive any more, those
// queued are handled as usual, and every pending message is settled.
func (r *room) drain() {
	r.postMu.Lock() // senders see stopping and leave, so this is short
	r.closed = true
	r.postMu.Unlock()
	for {
		select {
		case req := <-r.mailbox:
			r.handle(*req)
			continue
		default:
		}
		break
	}
	if !r.settle() {
		r.abandonPending()
	}
}

// storeCtx bounds one store call by the configured store timeout.
func (r *room) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.hub.ctx, r.hub.storeTimeout)
}

// load reads the room from the store when the actor has no valid state.
func (r *room) load() error {
	if r.loaded {
		return nil
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	cfg, version, err := r.hub.store.GetConfig(ctx, r.jid)
	if errors.Is(err, ErrRoomNotFound) {
		r.loaded, r.exists = true, false
		return nil
	}
	if err != nil {
		return err
	}
	affs, _, err := r.hub.store.GetAffUsers(ctx, r.jid)
	if errors.Is(err, ErrRoomNotFound) {
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
func (r *room) refreshAffs() error {
	o := r.hub.opts
	if o.CacheAffs && r.hub.now().Sub(r.affsAt) < o.CacheAffsTTL {
		return nil
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	affs, version, err := r.hub.store.GetAffUsers(ctx, r.jid)
	if errors.Is(err, ErrRoomNotFound) {
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
func (r *room) forget() {
	r.loaded, r.exists, r.cfg, r.affs, r.version = true, false, nil, nil, ""
}

func (r *room) handle(req request) {
	if r.hub.onHandle != nil {
		r.hub.onHandle(req.st)
	}
	if req.op == opMAMQuery {
		// A query that does not start gives its place back at once.
		defer func() {
			if !req.mam.running && req.mam.release != nil {
				req.mam.release()
			}
		}()
	}
	if req.op == opRemoved {
		r.removed(req)
		return
	}
	if err := r.load(); err != nil {
		r.loaded = false
		r.hub.replyError(req.st, err)
		return
	}
	var err error
	if req.op == opCreate || (req.op == opJoin && !r.exists) {
		err = r.create(req)
	} else if !r.exists {
		err = xmpp.NewError(xmpp.ItemNotFound, "no such room")
	} else {
		if req.op == opGroupchat {
			if err = r.refreshAffs(); err != nil {
				r.hub.replyError(req.st, err)
				return
			}
		}
		sender := req.st.From.Bare()
		aff := affOf(r.affs, sender)
		switch {
		case req.op == opJoin && aff == None:
			err = xmpp.NewError(xmpp.RegistrationRequired, "only members may enter this room")
		case !r.exists || aff == None:
			err = xmpp.NewError(xmpp.ItemNotFound, "you are not an occupant of this room")
		default:
			err = r.dispatchOp(req, sender, aff)
		}
	}
	if err != nil {
		r.hub.replyError(req.st, err)
	}
}

func (r *room) dispatchOp(req request, sender xmpp.JID, aff Affiliation) error {
	switch req.op {
	case opGroupchat:
		body := ""
		if b := xmpp.Child(req.st.El, "body", xmpp.NSClient); b != nil {
			body = b.Text()
		}
		if err := r.limit(aff, body); err != nil {
			return err
		}
		return r.groupchat(req, sender)
	case opDestroy:
		return r.destroy(req, aff)
	case opGetConfig:
		return r.getConfig(req)
	case opSetConfig:
		if err := r.limit(aff, ""); err != nil {
			return err
		}
		return r.setConfig(req, aff)
	case opGetAffs:
		return r.getAffs(req)
	case opSetAffs:
		return r.setAffs(req, sender, aff)
	case opGetInfo:
		return r.getInfo(req)
	case opJoin:
		return r.join(req, sender, aff)
	case opLeave:
		r.hub.deliver(req.st.From, occupantPresence(r.jid, sender, aff, "unavailable", "110"))
		return nil
	case opPing:
		r.hub.reply(req.st, nil)
		return nil
	case opMAMQuery:
		req.mam.running = true
		r.hub.wg.Add(1)
		go r.hub.runQuery(req.st, *req.mam)
		return nil
	}
	return xmpp.NewError(xmpp.ServiceUnavailable, "")
}

// limit passes an event through the room's flood limiter; a refusal is
// counted and returned for the sender alone.
func (r *room) limit(aff Affiliation, body string) error {
	se, reason := r.limiter.check(aff, body, r.hub.now())
	if se == nil {
		return nil
	}
	r.hub.m.limiterRefusals.WithLabelValues(reason, r.hub.services[r.jid.Domain]).Inc()
	return se
}

// removed brings the actor up to date after RemoveUser changed the room in
// the store, and announces the change as if the user had left.
func (r *room) removed(req request) {
	r.loaded = false // reread: the store is the truth, the cache may predate the change
	if err := r.load(); err != nil {
		r.hub.log.Error("reloading room after user removal", "room", r.jid.String(), "err", err)
	}
	if len(req.removal.New) == 0 {
		r.gone() // the user was the last occupant, or the domain went
	}
	if r.hub.opts.LegacyMode {
		r.legacyAnnounce(*req.removal, xmpp.JID{Domain: r.jid.Domain})
		return
	}
	if err := r.announce(req.id, *req.removal); err != nil {
		r.hub.log.Error("announcing a user's removal", "room", r.jid.String(), "err", err)
	}
}

// groupchat broadcasts an occupant's message to every occupant, the sender
// included, from room/sender-bare-JID: one serialisation, many deliveries.
func (r *room) groupchat(req request, sender xmpp.JID) error {
	st := req.st
	id := st.ID
	if id == "" {
		id = randomHex(8)
	}
	m := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", id, r.jid.WithResource(sender.String()), xmpp.JID{})
	for _, c := range st.El.ChildElements() {
		m.AddChild(c.Copy()) // the sender's stanza keeps them for its bounces
	}
	stripStanzaIDs(m)
	if r.hub.archiver != nil {
		return r.archiveGroupchat(st, m, sender)
	}
	out := xmpp.NewOutbound(m)
	for _, a := range r.affs {
		r.hub.out.DeliverPaced(st.From, a.User, out)
	}
	r.hub.m.fanout.Add(float64(len(r.affs)))
	return nil
}

package rooms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/xmpp"
)

// Deliverer hands a stanza to whoever serves a JID (every session of a bare
// JID, or one full JID) without blocking, and reports whether anyone took it.
// Today it is the local session table; in a cluster it will also reach
// sessions on other nodes.
type Deliverer interface {
	Deliver(to xmpp.JID, out *xmpp.Outbound) bool
	// DeliverPaced is Deliver for a stanza that the session of cause (a
	// full JID) made the server send, such as a groupchat fan-out: when a
	// recipient's backlog is above its high-water mark, cause's session is
	// slowed (it waits, bounded, before reading its next stanza) instead
	// of anyone being dropped. It never blocks the caller.
	DeliverPaced(cause, to xmpp.JID, out *xmpp.Outbound) bool
}

// Hub is the MUC Light service of every served domain: it answers the
// service-level requests itself and passes room requests to the room's
// owning actor.
type Hub struct {
	opts     Options
	limits   Limits
	mam      MAMOptions
	archive  Archive   // nil: no history
	archiver *archiver // batches groupchat into the archive
	ids      *idClock
	store    Store
	out      Deliverer
	log      *slog.Logger
	m        *hubMetrics
	services map[string]string // service domain → served domain

	// stopping tells room actors to drain and end (Close); ctx ends the
	// archive writer, retention and queries once they have.
	stopping  chan struct{}
	closeOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc

	mu      sync.RWMutex
	rooms   map[xmpp.JID]*room
	closing bool           // under mu: no new actors
	actors  sync.WaitGroup // room actors
	wg      sync.WaitGroup // everything else

	creates *createLimiter
	queries *queryLimiter

	// idleTimeout unloads a room actor with nothing to do.
	idleTimeout  time.Duration
	storeTimeout time.Duration
	mailboxSize  int
	now          func() time.Time
	onUnload     func(xmpp.JID)     // test hook
	onHandle     func(*xmpp.Stanza) // test hook
	onWait       func()             // test hook: a dispatch waits for a full mailbox
}

// HubOptions are the collaborators of NewHub that are not module options.
type HubOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Backend names the store in the metrics ("embedded", "mongodb").
	Backend string
	// IdleTimeout is how long a room actor with nothing to do stays loaded
	// (default one minute); its state is rebuilt from the store on next use.
	IdleTimeout time.Duration
	// Limits is the per-room flood limiter (mod_muc_limits); the zero value
	// disables it.
	Limits Limits
	// Now is the clock (default time.Now); tests freeze it to make the
	// limiter deterministic.
	Now func() time.Time
	// MAM is room history; a nil Archive turns it off.
	MAM MAMOptions
	// StoreTimeout bounds one store call of a room actor (the server passes
	// storage.mongodb.op_timeout); zero: DefaultStoreTimeout.
	StoreTimeout time.Duration
	// MailboxSize bounds each room's queue of requests; zero:
	// DefaultMailboxSize. Tests make it small to fill it.
	MailboxSize int
}

// DefaultStoreTimeout is the store bound when HubOptions leave it unset; it
// matches the server's default op_timeout.
const DefaultStoreTimeout = 5 * time.Second

// DefaultMailboxSize bounds a room's queue of requests unless HubOptions
// say otherwise; a sender finding it full waits (mailbox_wait) for room.
const DefaultMailboxSize = 1024

// NewHub builds the service for the given served domains.
func NewHub(opts Options, hosts []string, store Store, out Deliverer, ho HubOptions) *Hub {
	if ho.Logger == nil {
		ho.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts:         opts,
		limits:       ho.Limits,
		store:        store,
		out:          out,
		log:          ho.Logger.With("module", "muc_light"),
		services:     make(map[string]string, len(hosts)),
		stopping:     make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
		rooms:        make(map[xmpp.JID]*room),
		idleTimeout:  time.Minute,
		storeTimeout: DefaultStoreTimeout,
		mailboxSize:  DefaultMailboxSize,
		now:          time.Now,
	}
	if ho.StoreTimeout > 0 {
		h.storeTimeout = ho.StoreTimeout
	}
	if ho.MailboxSize > 0 {
		h.mailboxSize = ho.MailboxSize
	}
	if ho.IdleTimeout > 0 {
		h.idleTimeout = ho.IdleTimeout
	}
	if ho.Now != nil {
		h.now = ho.Now
	}
	if h.opts.MailboxWait <= 0 { // options built by hand, not validated
		h.opts.MailboxWait = DefaultOptions().MailboxWait
	}
	h.creates = newCreateLimiter(opts.CreateRate, opts.CreateBurst)
	h.limits.Rooms = canonicalOverrides(h.limits.Rooms)
	h.m = newHubMetrics(ho.Registerer, h)
	for _, host := range hosts {
		h.services[opts.ServiceDomain(host)] = host
	}
	if in, ok := store.(*instrumented); ok {
		in.zeroSeries(hosts)
	}
	h.ids = newIDClock()
	if ho.MAM.Archive != nil {
		h.mam = ho.MAM
		if h.mam.DefaultPageSize <= 0 {
			h.mam.DefaultPageSize = 50
		}
		if h.mam.MaxPageSize < h.mam.DefaultPageSize {
			h.mam.MaxPageSize = h.mam.DefaultPageSize
		}
		if h.mam.QueueLen <= 0 {
			h.mam.QueueLen = 10000
		}
		h.queries = newQueryLimiter(h.mam.MaxQueries, h.mam.MaxQueriesPerRoom)
		h.archive = ho.MAM.Archive
		h.archiver = &archiver{a: h.archive, queue: make(chan archiveJob, h.mam.QueueLen), log: h.log}
		h.wg.Add(1)
		go h.archiver.run(h.ctx, &h.wg)
		if h.mam.Retention > 0 {
			h.wg.Add(1)
			go h.retention()
		}
	}
	return h
}

// Services maps each service domain to the served domain it belongs to, for
// registration with the router.
func (h *Hub) Services() map[string]string { return h.services }

// Close stops the hub: new requests are refused, every room actor first
// handles what is in its mailbox and settles its messages waiting for the
// archive (so an offline command's changes, archive removals included, are
// done), then the archive writer and the queries stop.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closing = true
		h.mu.Unlock()
		close(h.stopping)
		h.actors.Wait()
		h.cancel()
		h.wg.Wait()
	})
}

// HandleStanza is the entry point for every stanza addressed to a service
// domain or a room; the sender's JID is checked and stamped.
func (h *Hub) HandleStanza(ctx context.Context, st *xmpp.Stanza) {
	if h.opts.LegacyMode {
		h.handleLegacy(ctx, st)
		return
	}
	// Errors and results are never answered (no loops between rooms and
	// occupants that live on the service domain); presence is ignored as
	// the protocol says.
	if st.Type == "error" || st.Kind == xmpp.KindPresence || (st.Kind == xmpp.KindIQ && st.Type == "result") {
		return
	}
	if st.To.Resource != "" {
		h.replyError(st, badRequest("rooms and the service have no resources"))
		return
	}
	isRoom := st.To.Local != ""
	if st.Kind == xmpp.KindMessage {
		if st.Type != "groupchat" || !isRoom {
			h.replyError(st, badRequest("only groupchat messages to a room are accepted"))
			return
		}
		h.dispatch(ctx, st.To, request{st: st, op: opGroupchat})
		return
	}
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	switch {
	case payload.Tag == "query" && ns == xmpp.NSDiscoInfo && st.Type == "get":
		if isRoom {
			// A room that does not exist has no identity to show.
			if ok, err := h.store.RoomExists(ctx, st.To); err != nil || !ok {
				if err == nil {
					err = xmpp.NewError(xmpp.ItemNotFound, "no such room")
				}
				h.replyError(st, err)
				return
			}
		}
		h.reply(st, h.discoInfo())
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get" && isRoom:
		h.roomDiscoItems(ctx, st)
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get":
		h.discoItems(ctx, st, payload)
	case payload.Tag == "query" && ns == NSBlocking:
		h.blocking(ctx, st, payload)
	case payload.Tag == "query" && (ns == NSMAM2 || ns == NSMAM1) && h.archive != nil && isRoom:
		h.mamRequest(ctx, st, payload)
	case payload.Tag == "query" && ns == NSCreate && st.Type == "set":
		room := st.To
		if !isRoom {
			room = xmpp.JID{Local: newRoomName(), Domain: st.To.Domain}
		}
		req, err := parseCreate(payload)
		if err != nil {
			h.replyError(st, err)
			return
		}
		req.st, req.op, req.generated = st, opCreate, !isRoom
		h.dispatch(ctx, room, req)
	case payload.Tag == "query" && isRoom && (ns == NSConfiguration || ns == NSAffiliations || ns == NSInfo || ns == NSDestroy):
		o, ok := roomOp(ns, st.Type)
		if !ok {
			h.replyError(st, badRequest("this request is not defined for iq type "+st.Type))
			return
		}
		req, err := parseRoomRequest(payload, o)
		if err != nil {
			h.replyError(st, err)
			return
		}
		req.st = st
		h.dispatch(ctx, st.To, req)
	case payload.Tag == "query" && (ns == NSConfiguration || ns == NSAffiliations || ns == NSInfo || ns == NSDestroy):
		h.replyError(st, badRequest("this request goes to a room, not to the service"))
	default:
		h.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
	}
}

// dispatch hands a request to the room's actor, starting one when the room
// exists (or the request creates it) and has none. It runs on the sender's
// reader: when the mailbox is full the caller waits, up to mailbox_wait, so
// that TCP pushes back on that sender alone; then the request is refused
// with resource-constraint. Internal requests (no stanza) wait as long as
// the hub runs. It reports whether the actor took the request; when it did
// not, the sender has been answered.
func (h *Hub) dispatch(ctx context.Context, room xmpp.JID, req request) bool {
	for {
		r, err := h.actorFor(ctx, room, req, &req.rated)
		if err != nil {
			h.replyError(req.st, err)
			return false
		}
		switch r.post(ctx, req) {
		case posted:
			return true
		case postClosed:
			continue // the actor unloaded meanwhile: start a new one
		case postTimeout:
			h.busy(req)
		default:
			h.replyError(req.st, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down"))
		}
		return false
	}
}

// actorFor returns the room's loaded actor or starts one. A request for a
// room that is neither loaded nor stored is answered item-not-found from
// the store's answer alone, without an actor: strangers cost no state. Only
// a create, a legacy join to a missing room (which creates) and internal
// notices start an actor for a room the store does not hold, and a create
// first spends its create_rate token (setting *rated).
func (h *Hub) actorFor(ctx context.Context, room xmpp.JID, req request, rated *bool) (*room, error) {
	h.mu.RLock()
	r, closing := h.rooms[room], h.closing
	h.mu.RUnlock()
	if r != nil {
		return r, nil
	}
	if closing {
		return nil, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
	}
	if req.op != opRemoved && req.op != opCreate {
		sctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
		ok, err := h.store.RoomExists(sctx, room)
		cancel()
		switch {
		case err != nil:
			return nil, err
		case !ok && req.op != opJoin:
			h.m.strangers.Inc()
			return nil, xmpp.NewError(xmpp.ItemNotFound, "no such room")
		case !ok:
			req.op = opCreate // a join that creates: rate it below
		}
	}
	if req.op == opCreate && req.st != nil && !req.rated {
		// create_rate is spent before an actor exists, so a refused
		// burst of creates (or of joins that would create) starts none.
		if !h.creates.take(req.st.From.Bare(), h.now()) {
			h.m.createRefusals.Inc()
			return nil, errCreateRate
		}
		*rated = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
	}
	if r = h.rooms[room]; r == nil {
		r = newRoom(h, room)
		h.rooms[room] = r
		h.actors.Add(1)
		go r.run()
	}
	return r, nil
}

func (h *Hub) busy(req request) {
	h.m.mailboxFull.Inc()
	h.replyError(req.st, xmpp.NewError(xmpp.ResourceConstraint, "the room is busy, try again"))
}

// unload removes an idle actor; it fails when a request arrived or a sender
// is about to post one. Senders post holding postMu's read lock and check
// closed first, so none can slip a request in after the removal: a sender
// that finds the actor closed starts a new one.
func (h *Hub) unload(r *room) bool {
	if !r.postMu.TryLock() {
		return false
	}
	defer r.postMu.Unlock()
	if len(r.mailbox) > 0 {
		return false
	}
	r.closed = true
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rooms[r.jid] == r {
		delete(h.rooms, r.jid)
	}
	if h.onUnload != nil {
		h.onUnload(r.jid)
	}
	return true
}

// reply sends a result element back to the requester.
func (h *Hub) reply(st *xmpp.Stanza, payload *etree.Element) {
	h.out.Deliver(st.From, xmpp.NewOutbound(xmpp.ResultIQ(st, payload)))
}

// replyFrom sends an empty result whose 'from' is given explicitly.
func (h *Hub) replyFrom(st *xmpp.Stanza, from xmpp.JID) {
	res := xmpp.NewStanzaElement(xmpp.KindIQ, "result", st.ID, from, st.From)
	h.out.Deliver(st.From, xmpp.NewOutbound(res))
}

// replyError answers a request with a stanza error. A failure that is not a
// protocol refusal is a store or server fault: logged, counted and answered
// with internal-server-error, never dropped.
func (h *Hub) replyError(st *xmpp.Stanza, err error) {
	if st == nil { // an internal request: nobody to answer
		h.log.Error("internal room request failed", "err", err)
		return
	}
	var se *xmpp.StanzaError
	if !errors.As(err, &se) {
		h.log.Error("request failed", "to", st.To.String(), "from", st.From.String(), "err", err)
		h.m.internalErrors.Inc()
		se = xmpp.NewError(xmpp.InternalServerError, "")
	}
	if st.Type == "error" {
		return
	}
	h.out.Deliver(st.From, xmpp.NewOutbound(xmpp.ErrorReply(st, se)))
}

// deliver sends one element to a user's bare JID.
func (h *Hub) deliver(to xmpp.JID, e *etree.Element) {
	h.out.Deliver(to, xmpp.NewOutbound(e))
}

// newRoomName generates a unique room node for create-with-generated-name.
func newRoomName() string { return randomHex(8) }

// newVersion generates a room version: opaque, unique per change.
func newVersion() string { return randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// discoInfo is the identity and features of the service and of every room.
func (h *Hub) discoInfo() *etree.Element { return h.conferenceInfo("MUC Light", NS) }

// conferenceInfo is a disco#info answer for a text conference named name
// with the given features, plus the history features when history is on.
func (h *Hub) conferenceInfo(name string, features ...string) *etree.Element {
	q := xmpp.Elem("query", xmpp.NSDiscoInfo)
	id := q.CreateElement("identity")
	id.CreateAttr("category", "conference")
	id.CreateAttr("type", "text")
	id.CreateAttr("name", name)
	for _, f := range features {
		q.CreateElement("feature").CreateAttr("var", f)
	}
	h.addMAMFeatures(q)
	return q
}

// addMAMFeatures advertises history in a disco#info answer when it is on.
func (h *Hub) addMAMFeatures(q *etree.Element) {
	if h.archive == nil {
		return
	}
	for _, f := range []string{NSMAM2, NSMAM1, NSSID} {
		q.CreateElement("feature").CreateAttr("var", f)
	}
}

// mamRequest answers the form request itself and passes a query to the
// room's actor, which checks that the requester is an occupant. The query
// first takes a place under max_mam_queries_per_room (refused when there is
// none) and max_mam_queries (waited for, as the caller is the sender's
// reader); the place is held until the query has answered.
func (h *Hub) mamRequest(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	if st.Type == "get" {
		h.reply(st, mamForm(q.NamespaceURI()))
		return
	}
	mq, err := h.parseMAMQuery(st, q)
	if err != nil {
		h.replyError(st, err)
		return
	}
	release, err := h.queries.acquire(ctx, h, st.To.Bare())
	if err != nil {
		h.replyError(st, err)
		return
	}
	mq.release = release
	if !h.dispatch(ctx, st.To.Bare(), request{st: st, op: opMAMQuery, mam: &mq}) {
		release()
	}
}

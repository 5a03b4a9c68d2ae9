package roomhub

import (
	"context"
	"errors"
	"github.com/wschat/xmppws/room"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/limits"
	"github.com/wschat/xmppws/logthrottle"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// Sink is where the actor's replies and events go: the edges render them in
// each recipient's dialect and deliver them. Its methods run on the room's
// goroutine and must never block on a recipient.
type Sink interface {
	Reply(room.Reply)
	Event(room.Event)
}

// NoticeForm renders the archived copy of an affiliation notice (the MUC
// Light form occupants page through). The core never builds XML itself; a
// nil NoticeForm archives no room events.
type NoticeForm interface {
	AffsNotice(rm xmpp.JID, id, version string, items []room.AffItem, archiveID string) []byte
}

// Hub owns the room actors of every served domain: it starts one per room
// on demand, hands it requests in order and unloads it when idle.
type Hub struct {
	opts     room.Options
	limits   limits.Limits
	mam      MAMOptions
	archive  archive.Archive // nil: no history
	archiver *archive.Writer // batches groupchat into the archive
	ids      *archive.IDClock
	notices  NoticeForm
	// orderedIDs: archive ids follow each room's newest archived id.
	orderedIDs bool
	admit      func(ctx context.Context, rm xmpp.JID) (Fence, error)
	redirect   func(req room.Request, owner string) bool
	node       string
	store      roomstore.Store
	sink       Sink
	log        *slog.Logger
	throttle   *logthrottle.Throttle // limiter refusals, one line per sender and interval
	m          *hubMetrics
	services   map[string]string // service domain → served domain

	// stopping tells room actors to drain and end (Close); ctx ends the
	// archive writer, retention and queries once they have.
	stopping  chan struct{}
	closeOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc

	mu      sync.RWMutex
	rooms   map[xmpp.JID]*actor
	closing bool           // under mu: no new actors
	actors  sync.WaitGroup // room actors
	wg      sync.WaitGroup // everything else

	creates *limits.CreateLimiter
	queries *limits.QueryLimiter

	idleTimeout  time.Duration
	storeTimeout time.Duration
	mailboxSize  int
	now          func() time.Time
	onUnload     func(xmpp.JID)     // test hook
	onHandle     func(room.Request) // test hook
	onWait       func()             // test hook: a dispatch waits for a full mailbox
}

// HubOptions are the collaborators of NewHub that are not module options.
type HubOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// IdleTimeout is how long a room actor with nothing to do stays loaded
	// (default one minute); its state is rebuilt from the store on next use.
	IdleTimeout time.Duration
	// Limits is the per-room flood limiter (mod_muc_limits); the zero value
	// disables it.
	Limits limits.Limits
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MAM is room history; a nil Archive turns it off.
	MAM MAMOptions
	// Notices renders archived room events; nil archives none.
	Notices NoticeForm
	// StoreTimeout bounds one store call of a room actor; zero:
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// MailboxSize bounds each room's queue of requests; zero:
	// DefaultMailboxSize.
	MailboxSize int
	// Admit, when set, is asked for the right to act for a room before its
	// actor starts (in a cluster: the room's lease). A *HeldError means
	// another node acts for it: the request goes to Redirect. Node names
	// this node in HeldError.
	Admit    func(ctx context.Context, rm xmpp.JID) (Fence, error)
	Redirect func(req room.Request, owner string) bool
	Node     string
	// OrderedIDs makes a room's archive ids follow its newest archived id,
	// not only this process's clock: for rooms that move between nodes.
	// It costs one archive read each time an actor starts archiving.
	OrderedIDs bool
}

// DefaultStoreTimeout is the store bound when HubOptions leave it unset; it
// matches the server's default op_timeout.
const DefaultStoreTimeout = 5 * time.Second

// DefaultMailboxSize bounds a room's queue of requests unless HubOptions
// say otherwise; a sender finding it full waits (mailbox_wait) for room.
const DefaultMailboxSize = 1024

// NewHub builds the actors' owner for the given served domains.
func NewHub(opts room.Options, hosts []string, store roomstore.Store, sink Sink, ho HubOptions) *Hub {
	if ho.Logger == nil {
		ho.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts:         opts,
		limits:       ho.Limits,
		store:        store,
		sink:         sink,
		notices:      ho.Notices,
		orderedIDs:   ho.OrderedIDs,
		admit:        ho.Admit,
		redirect:     ho.Redirect,
		node:         ho.Node,
		log:          ho.Logger.With("module", "muc_light"),
		services:     make(map[string]string, len(hosts)),
		stopping:     make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
		rooms:        make(map[xmpp.JID]*actor),
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
	h.throttle = logthrottle.New(refusalLogInterval, logthrottle.DefaultMaxKeys, h.now)
	if h.opts.MailboxWait <= 0 { // options built by hand, not validated
		h.opts.MailboxWait = room.DefaultOptions().MailboxWait
	}
	h.creates = limits.NewCreateLimiter(opts.CreateRate, opts.CreateBurst)
	h.limits.Rooms = limits.CanonicalOverrides(h.limits.Rooms)
	h.m = newHubMetrics(ho.Registerer, h)
	for _, host := range hosts {
		h.services[opts.ServiceDomain(host)] = host
	}
	h.m.zeroHosts(hosts)
	roomstore.ZeroSeries(store, hosts)
	if ho.MAM.Archive != nil {
		roomstore.ZeroArchiveSeries(ho.MAM.Archive, hosts)
	}
	h.ids = archive.NewIDClock()
	if ho.MAM.Archive != nil {
		h.mam = ho.MAM.withDefaults()
		h.queries = limits.NewQueryLimiter(h.mam.MaxQueries, h.mam.MaxQueriesPerRoom)
		h.archive = ho.MAM.Archive
		h.archiver = archive.NewWriter(h.archive, h.mam.QueueLen, h.log)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.archiver.Run(h.ctx)
		}()
		if h.mam.Retention > 0 {
			h.wg.Add(1)
			go h.retention()
		}
	}
	return h
}

// Options are the module options the hub runs with.
func (h *Hub) Options() room.Options { return h.opts }

// Services maps each service domain to the served domain it belongs to.
func (h *Hub) Services() map[string]string { return h.services }

// Store is the room store the hub reads and writes: the edges answer
// service-level requests (disco, blocking) from it directly.
func (h *Hub) Store() roomstore.Store { return h.store }

// History reports whether room history is on.
func (h *Hub) History() bool { return h.archive != nil }

// Archive is the rooms' history, for the edges' read-only queries (unread
// counts); nil when history is off.
func (h *Hub) Archive() archive.Archive { return h.archive }

// StoreTimeout bounds one store call made for a request.
func (h *Hub) StoreTimeout() time.Duration { return h.storeTimeout }

// Close stops the hub: new requests are refused, every room actor first
// handles what is in its mailbox and settles its messages waiting for the
// archive, then the archive writer and the queries stop.
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

// mail is one request in a mailbox, with the hub's bookkeeping that never
// leaves this node.
type mail struct {
	req   room.Request
	rated bool // create_rate was spent already (by actorFor)
	// release gives back a history query's place; the actor calls it when
	// the query does not start, the query when it ends.
	release func()
}

// Dispatch hands a request to its room's actor, starting one when the room
// exists (or the request creates it) and has none. It runs on the sender's
// reader: when the mailbox is full the caller waits, up to mailbox_wait,
// so that TCP pushes back on that sender alone; then the request is refused
// with resource-constraint. Internal requests wait as long as the hub runs.
// It reports whether the actor took the request; when it did not, the
// requester has been answered.
func (h *Hub) Dispatch(ctx context.Context, req room.Request) bool {
	m := &mail{req: req}
	if q, ok := req.(*room.QueryHistory); ok {
		if h.archive == nil {
			h.fail(req, xmpp.NewError(xmpp.ServiceUnavailable, ""))
			return false
		}
		release, err := h.acquireQuery(ctx, q.Room)
		if err != nil {
			h.fail(req, err)
			return false
		}
		m.release = release
	}
	if !h.dispatch(ctx, m) {
		if m.release != nil {
			m.release()
		}
		return false
	}
	return true
}

func (h *Hub) dispatch(ctx context.Context, m *mail) bool {
	rm := m.req.Header().Room
	for {
		r, err := h.actorFor(ctx, rm, m)
		var held *HeldError
		if errors.As(err, &held) && held.Owner == h.node {
			continue // another dispatch of this node is starting the actor
		}
		if errors.As(err, &held) && h.redirect != nil {
			return h.redirect(m.req, held.Owner)
		}
		if err != nil {
			h.fail(m.req, err)
			return false
		}
		switch r.post(ctx, m) {
		case posted:
			return true
		case postClosed:
			select {
			case <-h.stopping:
				// Closed by Close: drained actors stay in the map, so
				// trying again would find the same one for ever.
				h.fail(m.req, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down"))
				return false
			default:
			}
			continue // the actor unloaded meanwhile: start a new one
		case postTimeout:
			h.m.mailboxFull.Inc()
			h.logRefused(m.req.Header().Origin.From, m.req.Header().Room, refusedMailboxFull)
			h.fail(m.req, xmpp.NewError(xmpp.ResourceConstraint, "the room is busy, try again"))
		default:
			h.fail(m.req, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down"))
		}
		return false
	}
}

// actorFor returns the room's loaded actor or starts one. A request for a
// room that is neither loaded nor stored is answered item-not-found from
// the store's answer alone, without an actor: strangers cost no state. Only
// a create, a join to a missing room (which creates) and internal notices
// start an actor for a room the store does not hold, and a create first
// spends its create_rate token.
func (h *Hub) actorFor(ctx context.Context, rm xmpp.JID, m *mail) (*actor, error) {
	h.mu.RLock()
	r, closing := h.rooms[rm], h.closing
	h.mu.RUnlock()
	if r != nil {
		return r, nil
	}
	if closing {
		return nil, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
	}
	_, creates := m.req.(*room.Create)
	_, join := m.req.(*room.Join)
	_, removed := m.req.(*room.Removed)
	if _, leave := m.req.(*room.Leave); leave && m.req.Header().Origin.Internal() {
		// An ended session's leave for an unloaded room: it held no
		// occupancy (an entered room never unloads), so nothing is to be
		// done, and no store read is spent on it.
		return nil, errStaleLeave
	}
	if !removed && !creates {
		sctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
		ok, err := h.store.RoomExists(sctx, rm)
		cancel()
		switch {
		case err != nil:
			return nil, err
		case !ok && !join:
			h.m.strangers.Inc()
			return nil, xmpp.NewError(xmpp.ItemNotFound, "no such room")
		case !ok:
			creates = true // a join that creates: rate it below
		}
	}
	if o := m.req.Header().Origin; creates && !o.Internal() && !m.rated {
		// create_rate is spent before an actor exists, so a refused
		// burst of creates (or of joins that would create) starts none.
		if !h.creates.Take(o.From.Bare(), h.now()) {
			h.m.createRefusals.Inc()
			h.logRefused(o.From, m.req.Header().Room, refusedCreateRate)
			return nil, errCreateRate
		}
		m.rated = true
	}
	var fence Fence
	if h.admit != nil {
		// The right to act is taken before the actor exists, outside the
		// hub's lock (it is a network round trip in a cluster).
		f, err := h.admit(ctx, rm)
		if err != nil {
			return nil, err
		}
		fence = f
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		if fence != nil {
			fence.Release()
		}
		return nil, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
	}
	if r = h.rooms[rm]; r == nil {
		r = newActor(h, rm)
		r.fence = fence
		h.rooms[rm] = r
		h.actors.Add(1)
		go r.run()
	} else if fence != nil {
		fence.Release() // unreachable while admission is exclusive
	}
	return r, nil
}

// Fence is an actor's right to act for its room; in a cluster, the room's
// lease. The actor handles requests only while Valid, leaves the room when
// Done closes, and Releases it when it unloads.
type Fence interface {
	Valid() bool
	Done() <-chan struct{}
	Release()
}

// HeldError says another node acts for the room: Admit's refusal.
type HeldError struct{ Owner string }

func (e *HeldError) Error() string { return "roomhub: the room is held by node " + e.Owner }

// errMoved refuses a request that reached an actor whose right to act
// lapsed: the room is moving to another node; the client tries again.
var errMoved = xmpp.NewError(xmpp.ResourceConstraint, "the room is moving to another server, try again")

// errStaleLeave is a leave for a room with no loaded actor: answered with
// nothing.
var errStaleLeave = errors.New("room: leave for an unloaded room")

// unload removes an idle actor; it fails when a request arrived or a sender
// is about to post one.
func (h *Hub) unload(r *actor) bool {
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
	if r.fence != nil {
		r.fence.Release()
	}
	if h.onUnload != nil {
		h.onUnload(r.jid)
	}
	return true
}

// Fail answers a request that never reached an actor (a decoding or an
// edge's own refusal) the same way an actor answers a refused one.
func (h *Hub) Fail(req room.Request, err error) { h.fail(req, err) }

// fail answers a request with an error. A failure that is not a protocol
// refusal is a store or server fault: logged, counted and answered with
// internal-server-error, never dropped.
func (h *Hub) fail(req room.Request, err error) {
	hd := req.Header()
	if errors.Is(err, errStaleLeave) {
		return
	}
	if hd.Origin.Internal() {
		h.log.Error("internal room request failed", "room", hd.Room.String(), "err", err)
		return
	}
	h.sink.Reply(room.Reply{Room: hd.Room, Origin: hd.Origin, Op: room.TypeName(req), Err: h.errorOf(hd, err)})
}

// errorOf turns a failure into the error a client is shown.
func (h *Hub) errorOf(hd *room.Head, err error) *room.Error {
	var se *xmpp.StanzaError
	var ref *limits.Refusal
	switch {
	case errors.As(err, &ref):
		errors.As(refusalError(ref), &se)
	case errors.Is(err, limits.ErrShutdown):
		se = xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
	}
	if se == nil && !errors.As(err, &se) {
		h.log.Error("request failed", "to", hd.Origin.To.String(), "from", hd.Origin.From.String(), "err", err)
		h.m.internalErrors.Inc()
		se = xmpp.NewError(xmpp.InternalServerError, "")
	}
	return &room.Error{Type: string(se.Type), Condition: string(se.Condition), Text: se.Text}
}

// Hooks let tests act at moments the core does not otherwise show: an
// actor taking a request, a dispatch waiting for a full mailbox, an actor
// unloading. Production code sets none.
type Hooks struct {
	OnHandle func(room.Request)
	OnWait   func()
	OnUnload func(xmpp.JID)
}

// SetHooks installs test hooks; call it before any request.
func (h *Hub) SetHooks(k Hooks) { h.onHandle, h.onWait, h.onUnload = k.OnHandle, k.OnWait, k.OnUnload }

// Loaded counts the loaded room actors.
func (h *Hub) Loaded() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms)
}

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

	// ctx ends every room actor at Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.RWMutex
	rooms map[xmpp.JID]*room
	wg    sync.WaitGroup

	// idleTimeout unloads a room actor with nothing to do.
	idleTimeout time.Duration
	now         func() time.Time
	onUnload    func(xmpp.JID) // test hook
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
}

// mailboxSize bounds a room's queue of requests; a full mailbox is answered
// with resource-constraint rather than blocking the sender.
const mailboxSize = 1024

// NewHub builds the service for the given served domains.
func NewHub(opts Options, hosts []string, store Store, out Deliverer, ho HubOptions) *Hub {
	if ho.Logger == nil {
		ho.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts:        opts,
		limits:      ho.Limits,
		store:       store,
		out:         out,
		log:         ho.Logger.With("module", "muc_light"),
		services:    make(map[string]string, len(hosts)),
		ctx:         ctx,
		cancel:      cancel,
		rooms:       make(map[xmpp.JID]*room),
		idleTimeout: time.Minute,
		now:         time.Now,
	}
	if ho.IdleTimeout > 0 {
		h.idleTimeout = ho.IdleTimeout
	}
	if ho.Now != nil {
		h.now = ho.Now
	}
	h.m = newHubMetrics(ho.Registerer, h)
	for _, host := range hosts {
		h.services[opts.ServiceDomain(host)] = host
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

// Close stops every room actor and waits for them.
func (h *Hub) Close() {
	h.cancel()
	h.wg.Wait()
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
		h.dispatch(st.To, request{st: st, op: opGroupchat})
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
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get":
		h.discoItems(ctx, st, payload)
	case payload.Tag == "query" && ns == NSBlocking:
		h.blocking(ctx, st, payload)
	case payload.Tag == "query" && (ns == NSMAM2 || ns == NSMAM1) && h.archive != nil && isRoom:
		h.mamRequest(st, payload)
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
		h.dispatch(room, req)
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
		h.dispatch(st.To, req)
	case payload.Tag == "query" && (ns == NSConfiguration || ns == NSAffiliations || ns == NSInfo || ns == NSDestroy):
		h.replyError(st, badRequest("this request goes to a room, not to the service"))
	default:
		h.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
	}
}

// dispatch queues a request for the room's actor, starting the actor if the
// room has none. It never blocks.
func (h *Hub) dispatch(room xmpp.JID, req request) {
	h.mu.RLock()
	r := h.rooms[room]
	if r != nil {
		ok := r.post(req)
		h.mu.RUnlock()
		if !ok {
			h.busy(req)
		}
		return
	}
	h.mu.RUnlock()
	h.mu.Lock()
	r = h.rooms[room]
	if r == nil {
		if h.ctx.Err() != nil {
			h.mu.Unlock()
			h.replyError(req.st, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down"))
			return
		}
		r = newRoom(h, room)
		h.rooms[room] = r
		h.wg.Add(1)
		go r.run()
	}
	ok := r.post(req)
	h.mu.Unlock()
	if !ok {
		h.busy(req)
	}
}

func (h *Hub) busy(req request) {
	h.m.mailboxFull.Inc()
	h.replyError(req.st, xmpp.NewError(xmpp.ResourceConstraint, "the room is busy, try again"))
}

// unload removes an idle actor; it fails when a request arrived meanwhile.
// Requests are posted under the read lock, so none can slip in between the
// check and the removal.
func (h *Hub) unload(r *room) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(r.mailbox) > 0 {
		return false
	}
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
// room's actor, which checks that the requester is an occupant.
func (h *Hub) mamRequest(st *xmpp.Stanza, q *etree.Element) {
	if st.Type == "get" {
		h.reply(st, mamForm(q.NamespaceURI()))
		return
	}
	mq, err := h.parseMAMQuery(st, q)
	if err != nil {
		h.replyError(st, err)
		return
	}
	h.dispatch(st.To.Bare(), request{st: st, op: opMAMQuery, mam: &mq})
}

package rooms

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/muc"
	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/xmpp"
)

// Hub is the group-chat service of every served domain: it decodes each
// stanza with the codec of its dialect, hands the request to the room core,
// and renders the core's replies and events for each recipient session in
// the dialect that session uses in that room.
type Hub struct {
	core   *roomhub.Hub
	opts   Options
	out    Deliverer
	except ExceptDeliverer // nil: the Deliverer cannot leave sessions out
	log    *slog.Logger

	testHooks *roomhub.Hooks // tests only (export_test.go)

	tr interface {
		Dispatch(context.Context, room.Request) bool
	} // where requests go: the core, or the cluster transport

	entered *sessionIndex
	leaves  leaveQueue
	// occIDs makes the occupant ids (XEP-0421).
	occIDs *room.OccupantIDs
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
	// OrderedIDs keeps each room's archive ids after its newest archived
	// one, for rooms that move between nodes (cluster mode).
	OrderedIDs bool
	// Transport, when set, puts the room core behind a cluster: it gets
	// this node's core and the renderer of this node's sessions, and
	// returns where requests go and where the core's output goes. Nil: the
	// core is called directly (one node).
	Transport func(core *roomhub.Hub, edge roomhub.Sink) Transport
	// Admit, Redirect and Node fence the room core in a cluster; see
	// roomhub.HubOptions.
	Admit    func(ctx context.Context, rm xmpp.JID) (roomhub.Fence, error)
	Redirect func(req room.Request, owner string) bool
	Node     string
	// OnPosted, when set, sees every room message once, on the node that
	// owns the room, as its fan-out starts (after the archive write): push
	// notifications for offline members. It runs on the room's goroutine
	// and must never block (enqueue or drop); the event is shared and must
	// not be changed.
	OnPosted func(*room.Posted)
	// Secret keys the XEP-0421 occupant ids: the deployment's
	// (account.Store.ServerSecret), so every node and restart gives a user
	// the same id in a room. Empty: a random one for this process (tests).
	Secret []byte
}

// Transport takes a decoded request to the actor that owns its room,
// wherever it runs: the local core on one node, the owner's node in a
// cluster. Replies and events come back to the edge's Sink.
type Transport interface {
	// Dispatch hands over a request as roomhub.Hub.Dispatch does: it may
	// wait (bounded) on the sender's reader, and it answers refusals.
	Dispatch(ctx context.Context, req room.Request) bool
	// CoreSink is where the local core's replies and events go: to the
	// nodes whose sessions they concern.
	CoreSink() roomhub.Sink
}

// proxySink lets the core be built before the transport that receives its
// output.
type proxySink struct{ s roomhub.Sink }

func (p *proxySink) Reply(r room.Reply) { p.s.Reply(r) }
func (p *proxySink) Event(e room.Event) { p.s.Event(e) }

// postedSink shows the core's room messages to HubOptions.OnPosted before
// passing every event on: the core's own output, so once per message on the
// owner's node, whatever the transport does next.
type postedSink struct {
	roomhub.Sink
	onPosted func(*room.Posted)
}

func (p postedSink) Event(e room.Event) {
	if ev, ok := e.(*room.Posted); ok {
		p.onPosted(ev)
	}
	p.Sink.Event(e)
}

// Sink is the renderer of this node's sessions: a cluster transport feeds
// it the replies and events other nodes' cores sent here.
func (h *Hub) Sink() roomhub.Sink { return sink{h} }

// NewHub builds the service for the given served domains.
func NewHub(opts Options, hosts []string, store Store, out Deliverer, ho HubOptions) *Hub {
	if ho.Logger == nil {
		ho.Logger = slog.Default()
	}
	h := &Hub{opts: opts, out: out, log: ho.Logger.With("module", "muc_light"), entered: newSessionIndex()}
	secret := ho.Secret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	h.occIDs = room.NewOccupantIDs(secret)
	h.except, _ = out.(ExceptDeliverer)
	var notices roomhub.NoticeForm
	if !opts.LegacyMode {
		notices = muclight.Notices{} // legacy mode archives no room events, as MongooseIM
	}
	var coreSink roomhub.Sink = sink{h}
	var proxy *proxySink
	if ho.Transport != nil {
		proxy = &proxySink{}
		coreSink = proxy
	}
	if ho.OnPosted != nil {
		coreSink = postedSink{coreSink, ho.OnPosted}
	}
	h.core = roomhub.NewHub(opts, hosts, store, coreSink, roomhub.HubOptions{
		Logger: ho.Logger, Registerer: ho.Registerer, IdleTimeout: ho.IdleTimeout, Limits: ho.Limits, Now: ho.Now,
		MAM: ho.MAM, Notices: notices, StoreTimeout: ho.StoreTimeout, MailboxSize: ho.MailboxSize,
		OrderedIDs: ho.OrderedIDs, Admit: ho.Admit, Redirect: ho.Redirect, Node: ho.Node,
	})
	h.tr = h.core
	if ho.Transport != nil {
		t := ho.Transport(h.core, sink{h})
		h.tr, proxy.s = t, t.CoreSink()
	}
	h.leaves.start(h.tr)
	if ho.Registerer != nil {
		ho.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "muc_light_muc_occupancies", Help: "Rooms entered with XEP-0045 presence, counted per session (bounded: 1,000 per session).",
		}, func() float64 { return float64(h.entered.size()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "muc_light_muc_leaves_pending", Help: "XEP-0045 occupancies of ended sessions waiting to be left.",
		}, func() float64 { return float64(h.leaves.len()) }))
	}
	return h
}

// Services maps each service domain to the served domain it belongs to, for
// registration with the router.
func (h *Hub) Services() map[string]string { return h.core.Services() }

// Close stops the hub: new requests are refused, every room actor handles
// what is in its mailbox and settles its history, then everything stops.
func (h *Hub) Close() {
	h.leaves.stopping()
	h.core.Close()
	h.leaves.wait()
}

// DiscoNode is the node the server's disco#items announces the service
// with: MUC Light's namespace, or XEP-0045's in legacy mode.
func (h *Hub) DiscoNode() string {
	if h.opts.LegacyMode {
		return NSMUC
	}
	return NS
}

// RemoveUser takes a deleted account out of every room on the services of
// its domain, as if it had left each one, and deletes its blocking list.
func (h *Hub) RemoveUser(ctx context.Context, user xmpp.JID) error {
	return h.core.RemoveUser(ctx, user)
}

// RemoveDomain deletes every room of the domain's services and the blocking
// lists of its users.
func (h *Hub) RemoveDomain(ctx context.Context, domain string) error {
	return h.core.RemoveDomain(ctx, domain)
}

// SessionEnded implements ws.SessionWatcher: the XEP-0045 occupancies of a
// session that ended end with it. It never blocks: the leaves are handed to
// the hub's own goroutine.
func (h *Hub) SessionEnded(full xmpp.JID, session uint64) {
	rooms := h.entered.take(full, session)
	if len(rooms) == 0 {
		return
	}
	reqs := make([]room.Request, len(rooms))
	for i, rm := range rooms {
		reqs[i] = &room.Leave{Head: room.Head{Room: rm}, Occupant: full, Session: session, Reason: room.LeftDisconnected}
	}
	h.leaves.add(reqs)
}

// dispatch hands a decoded request to the core (which answers refusals).
func (h *Hub) dispatch(ctx context.Context, st *xmpp.Stanza, req room.Request, err error) {
	if err != nil {
		h.replyError(st, err)
		return
	}
	if req != nil {
		h.tr.Dispatch(ctx, req)
	}
}

// dispatchDecoded is dispatch for a decoder's two results.
func (h *Hub) dispatchDecoded(ctx context.Context, st *xmpp.Stanza) func(room.Request, error) {
	return func(req room.Request, err error) { h.dispatch(ctx, st, req, err) }
}

// replyError answers a stanza the codecs refused before any request existed.
func (h *Hub) replyError(st *xmpp.Stanza, err error) {
	h.core.Fail(&room.Ping{Head: room.Head{Room: st.To.Bare(), Origin: room.OriginOf(st, room.MUCLight)}}, err)
}

// reply sends a result element back to the requester.
func (h *Hub) reply(st *xmpp.Stanza, payload *etree.Element) {
	h.out.Deliver(st.From, xmpp.NewOutbound(xmpp.ResultIQ(st, payload)))
}

// HandleStanza is the entry point for every stanza addressed to a service
// domain or a room; the sender's JID is checked and stamped.
func (h *Hub) HandleStanza(ctx context.Context, st *xmpp.Stanza) {
	// Errors and results are never answered (no loops between rooms and
	// occupants that live on the service domain).
	if st.Type == "error" || (st.Kind == xmpp.KindIQ && st.Type == "result") {
		return
	}
	if st.Kind == xmpp.KindIQ && (st.To.Domain == "" || h.core.Services()[st.To.Domain] == "") {
		// An iq to the user's own account: the privacy-list form of blocking.
		h.privacy(ctx, st, st.El.ChildElements()[0])
		return
	}
	if h.opts.LegacyMode {
		h.handleLegacy(ctx, st)
		return
	}
	isRoom := st.To.Local != ""
	switch st.Kind {
	case xmpp.KindPresence:
		// Presence to room/nick enters or leaves in XEP-0045; presence to
		// a bare room or the service means nothing, as MUC Light says.
		if isRoom && st.To.Resource != "" {
			h.presence(ctx, st)
		}
		return
	case xmpp.KindMessage:
		h.message(ctx, st, isRoom)
		return
	}
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	if ns == xmpp.NSPing && isRoom {
		// XEP-0410 self-pings go to room/nick.
		h.dispatch(ctx, st, muc.DecodePing(st), nil)
		return
	}
	if st.To.Resource != "" {
		h.replyError(st, muclight.BadRequest("rooms and the service have no resources"))
		return
	}
	switch {
	case payload.Tag == "query" && ns == xmpp.NSDiscoInfo && st.Type == "get":
		h.discoInfo(ctx, st, isRoom)
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get" && isRoom:
		h.roomDiscoItems(ctx, st)
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get":
		h.discoItems(ctx, st, payload)
	case payload.Tag == "query" && ns == NSBlocking:
		h.blocking(ctx, st, payload)
	case payload.Tag == "query" && mam.IsQuery(ns) && h.core.History() && isRoom:
		h.mamRequest(ctx, st, payload, room.MUCLight)
	case payload.Tag == "query" && ns == NSCreate && st.Type == "set":
		rm, generated := st.To, !isRoom
		if generated {
			rm = xmpp.JID{Local: room.NewRoomName(), Domain: st.To.Domain}
		}
		h.dispatchDecoded(ctx, st)(muclight.DecodeCreate(st, payload, rm, generated))
	case payload.Tag == "query" && isRoom && muclight.IsRoomRequest(ns):
		h.dispatchDecoded(ctx, st)(muclight.DecodeRoomRequest(st, payload))
	case payload.Tag == "query" && muclight.IsRoomRequest(ns):
		h.replyError(st, muclight.BadRequest("this request goes to a room, not to the service"))
	case payload.Tag == "query" && ns == NSMUCOwner && isRoom:
		h.owner(ctx, st, payload)
	case payload.Tag == "query" && ns == NSMUCAdmin && isRoom:
		h.dispatchDecoded(ctx, st)(muc.DecodeAdmin(st, payload))
	case isModerate(payload) && isRoom:
		h.moderate(ctx, st, payload, room.MUCLight)
	case payload.Tag == "unread" && ns == NSUnread && !isRoom:
		h.unread(ctx, st, payload)
	default:
		h.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
	}
}

// message routes a message: groupchat is the same in both dialects; a
// subject-only groupchat and a mediated invitation are XEP-0045's.
func (h *Hub) message(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	switch {
	case !isRoom:
		h.replyError(st, muclight.BadRequest("only groupchat messages to a room are accepted"))
	case st.To.Resource != "":
		h.replyError(st, muclight.BadRequest("rooms and the service have no resources"))
	case st.Type == "groupchat" && muc.IsSubjectChange(st):
		h.dispatch(ctx, st, muc.DecodeSubject(st), nil)
	case st.Type == "groupchat":
		h.dispatchDecoded(ctx, st)(h.decodePost(st, room.MUCLight))
	case muc.IsInvitation(st):
		h.dispatchDecoded(ctx, st)(muc.DecodeInvitation(st))
	default:
		h.replyError(st, muclight.BadRequest("only groupchat messages to a room are accepted"))
	}
}

// presence enters or leaves a room in XEP-0045. An entry is indexed before
// it is dispatched, so that the session's end, which comes after every
// stanza it sent was dispatched, always finds it.
func (h *Hub) presence(ctx context.Context, st *xmpp.Stanza) {
	req, err := muc.DecodePresence(st)
	if err != nil || req == nil {
		h.dispatch(ctx, st, req, err)
		return
	}
	if _, ok := req.(*room.Join); ok && !h.entered.add(st.From, st.Session, st.To.Bare()) {
		h.replyError(st, xmpp.NewError(xmpp.ResourceConstraint, "this session is in as many rooms as it may enter"))
		return
	}
	h.dispatch(ctx, st, req, nil)
}

// owner maps muc#owner; a cancelled configuration form is answered here.
func (h *Hub) owner(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	req, answered, err := muc.DecodeOwner(st, q)
	if answered {
		h.reply(st, nil)
		return
	}
	h.dispatch(ctx, st, req, err)
}

// mamRequest answers the form request itself and passes a query to the
// room's actor, which checks that the requester is an occupant.
func (h *Hub) mamRequest(ctx context.Context, st *xmpp.Stanza, q *etree.Element, d room.Dialect) {
	if st.Type == "get" {
		h.reply(st, mam.Form(q.NamespaceURI()))
		return
	}
	def, max := h.core.PageSizes()
	req, err := mam.Decode(st, q, d, def, max)
	if err != nil {
		h.replyError(st, err)
		return
	}
	h.tr.Dispatch(ctx, req)
}

// sessionIndex remembers which rooms each XEP-0045 session entered, so
// that its end leaves them. Entries may be stale (a refused join, a room
// left meanwhile): a stale leave is ignored by the room.
type sessionIndex struct {
	mu   sync.Mutex
	byID map[sessionKey]map[xmpp.JID]struct{}
}

type sessionKey struct {
	full    xmpp.JID
	session uint64
}

// maxEnteredPerSession bounds the rooms one session may enter.
const maxEnteredPerSession = 1000

func newSessionIndex() *sessionIndex {
	return &sessionIndex{byID: map[sessionKey]map[xmpp.JID]struct{}{}}
}

func (x *sessionIndex) add(full xmpp.JID, session uint64, rm xmpp.JID) bool {
	k := sessionKey{full, session}
	x.mu.Lock()
	defer x.mu.Unlock()
	set := x.byID[k]
	if set == nil {
		set = map[xmpp.JID]struct{}{}
		x.byID[k] = set
	}
	if _, ok := set[rm]; !ok && len(set) >= maxEnteredPerSession {
		return false
	}
	set[rm] = struct{}{}
	return true
}

func (x *sessionIndex) remove(full xmpp.JID, session uint64, rm xmpp.JID) {
	k := sessionKey{full, session}
	x.mu.Lock()
	defer x.mu.Unlock()
	if set := x.byID[k]; set != nil {
		delete(set, rm)
		if len(set) == 0 {
			delete(x.byID, k)
		}
	}
}

func (x *sessionIndex) size() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, set := range x.byID {
		n += len(set)
	}
	return n
}

func (x *sessionIndex) take(full xmpp.JID, session uint64) []xmpp.JID {
	k := sessionKey{full, session}
	x.mu.Lock()
	set := x.byID[k]
	delete(x.byID, k)
	x.mu.Unlock()
	out := make([]xmpp.JID, 0, len(set))
	for rm := range set {
		out = append(out, rm)
	}
	return out
}

// leaveQueue posts the leaves of ended sessions from one goroutine the hub
// owns, so that a session's end never waits for a room.
type leaveQueue struct {
	mu      sync.Mutex
	queue   []room.Request
	closing bool
	poke    chan struct{}
	done    chan struct{}
}

func (q *leaveQueue) start(core interface {
	Dispatch(context.Context, room.Request) bool
}) {
	q.poke, q.done = make(chan struct{}, 1), make(chan struct{})
	go func() {
		defer close(q.done)
		for range q.poke {
			for {
				q.mu.Lock()
				if q.closing || len(q.queue) == 0 {
					closing := q.closing
					q.queue = nil
					q.mu.Unlock()
					if closing {
						return
					}
					break
				}
				req := q.queue[0]
				q.queue = q.queue[1:]
				q.mu.Unlock()
				core.Dispatch(context.Background(), req)
			}
		}
	}()
}

func (q *leaveQueue) add(reqs []room.Request) {
	q.mu.Lock()
	if !q.closing {
		q.queue = append(q.queue, reqs...)
	}
	q.mu.Unlock()
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

// stopping makes the goroutine drop what is queued and end.
func (q *leaveQueue) stopping() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

func (q *leaveQueue) wait() { <-q.done }

func (q *leaveQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

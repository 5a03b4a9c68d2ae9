package push

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/logthrottle"
	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// NS is XEP-0357's namespace: enable and disable, the notification, and
// the account's disco#info feature.
const NS = "urn:xmpp:push:0"

// The other namespaces and form types a notification uses.
const (
	NSPubSub       = "http://jabber.org/protocol/pubsub"
	FormSummary    = "urn:xmpp:push:summary"
	FormPublishOpt = "http://jabber.org/protocol/pubsub#publish-options"
)

// Namespaces of messages that change an earlier one (XEP-0308 corrections,
// XEP-0422 fastenings): they wake nobody.
const (
	nsCorrect = "urn:xmpp:message-correct:0"
	nsFasten  = "urn:xmpp:fasten:0"
)

// BodyPreview is how many characters of a message body a notification
// carries at most (include_body on).
const BodyPreview = 100

// Kinds of notification, the metrics' kind label.
const (
	KindXEP0357 = "xep0357"
	KindWebhook = "webhook"
)

// Presence says whether a user has a session anywhere: on this node or, in
// a cluster, on any other (a session detached for resumption counts).
type Presence interface {
	OnlineAnywhere(user xmpp.JID) bool
}

// Router delivers stanzas: replies to the requester's session, and
// notifications to an app server that is a local user, on whichever node
// its sessions are.
type Router interface {
	Deliver(to xmpp.JID, out *xmpp.Outbound) bool
	DeliverAnywhere(to xmpp.JID, out *xmpp.Outbound) bool
}

// Options configure New; the server fills them from [push].
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Store persists registrations; needed when XEP0357 is on.
	Store pushstore.Store
	// Presence and Router are the server's (ws.Router, with the cluster's
	// directory behind it).
	Presence Presence
	Router   Router
	// Hosts are the served domains: an app server elsewhere cannot be
	// reached (no server-to-server), so enabling it is refused.
	Hosts []string
	// XEP0357 accepts enable/disable and publishes to app servers.
	XEP0357 bool
	// Interval is the least time between two notifications of one member
	// about one room, per kind.
	Interval time.Duration
	// IncludeBody puts a preview of the body (BodyPreview characters) in
	// notifications.
	IncludeBody bool
	// MaxRegistrations caps one account's registrations (0: no cap).
	MaxRegistrations int
	// QueueLen bounds the room posts waiting for the push worker.
	QueueLen int
	// MaxThrottleEntries bounds the throttle's memory, per kind.
	MaxThrottleEntries int
	// StoreTimeout bounds one store call.
	StoreTimeout time.Duration
	// Webhook, when its URL is set, POSTs every notification there too.
	Webhook WebhookOptions
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is push for one server: the XEP-0357 account IQ handler, the room
// hook, the worker that decides who is notified, and the webhook sender.
type Service struct {
	opts  Options
	log   *slog.Logger
	warn  *logthrottle.Throttle
	m     *metrics
	hosts map[string]bool

	posts  chan *room.Posted
	closed atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	xep     *throttle // owned by the worker goroutine
	hook    *throttle
	webhook *webhook // nil: no webhook
}

// New starts the service's worker (and the webhook's). Close stops them.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1
	}
	if o.MaxThrottleEntries <= 0 {
		o.MaxThrottleEntries = 1
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		opts: o, log: o.Logger.With("module", "push"), warn: logthrottle.New(time.Minute, 1000, time.Now),
		hosts: map[string]bool{}, posts: make(chan *room.Posted, o.QueueLen), ctx: ctx, cancel: cancel,
		xep: newThrottle(o.Interval, o.MaxThrottleEntries), hook: newThrottle(o.Interval, o.MaxThrottleEntries),
	}
	for _, h := range o.Hosts {
		s.hosts[h] = true
	}
	s.m = newMetrics(s)
	if o.Webhook.URL != "" {
		s.webhook = newWebhook(o.Webhook, s.m, s.log)
		s.webhook.start(ctx, &s.wg)
	}
	if o.Registerer != nil {
		s.m.register(o.Registerer)
	}
	s.wg.Add(1)
	go s.work()
	return s
}

// Close stops the workers; what is still queued is dropped and counted.
// Call it after the room hub has closed (no more posts come).
func (s *Service) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.cancel()
	s.wg.Wait()
	for {
		select {
		case <-s.posts:
			s.m.postsDropped.Inc()
		default:
			if s.webhook != nil {
				s.webhook.drain()
			}
			return
		}
	}
}

// OnPosted is the room hook: called once per delivered room message, on the
// node that owns the room, on the room actor's goroutine. It never blocks:
// the post is queued for the worker, or dropped and counted when the queue
// is full.
func (s *Service) OnPosted(ev *room.Posted) {
	if s.closed.Load() {
		return
	}
	select {
	case s.posts <- ev:
	default:
		s.m.postsDropped.Inc()
		s.warn.Log(s.log, slog.LevelWarn, "queue", "push queue full, room post dropped", "room", ev.Room.String(), "queue", s.opts.QueueLen)
	}
}

func (s *Service) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev := <-s.posts:
			s.handle(ev)
		}
	}
}

// handle decides, for one post, who is notified and how.
func (s *Service) handle(ev *room.Posted) {
	now := s.opts.Now()
	var offline []xmpp.JID
	for i, a := range ev.Audience {
		u := a.User.Bare()
		if u == ev.Sender.Bare() {
			continue
		}
		if s.opts.Presence != nil && s.opts.Presence.OnlineAnywhere(u) {
			s.m.online.Inc()
			continue
		}
		if offline == nil {
			offline = make([]xmpp.JID, 0, len(ev.Audience)-i) // once, when the first is found
		}
		offline = append(offline, u)
	}
	if len(offline) == 0 {
		return // the common case: nothing parsed
	}
	id, body, ok := parsePost(ev.Stanza)
	if !ok {
		return // no body: a chat state, a marker; nothing to wake anyone for
	}
	if !s.opts.IncludeBody {
		body = ""
	}
	// App servers first: once a webhook item is queued, this post's
	// XEP-0357 notifications have gone (tests rely on the order).
	if s.opts.XEP0357 {
		s.toAppServers(ev, body, offline, now)
	}
	if s.webhook != nil {
		s.toWebhook(ev, id, body, offline, now)
	}
}

func (s *Service) toWebhook(ev *room.Posted, id, body string, offline []xmpp.JID, now time.Time) {
	var members []string
	for _, u := range offline {
		switch s.hook.take(throttleKey{u, ev.Room}, now) {
		case throttleSend:
			members = append(members, u.String())
		case throttleSuppress:
			s.m.outcome(KindWebhook, "suppressed")
		case throttleFull:
			s.m.dropped(KindWebhook, "throttle_full")
		}
	}
	if len(members) == 0 {
		return
	}
	s.webhook.enqueue(payload{
		ID: id, Room: ev.Room.String(), Sender: ev.Sender.String(), Body: body,
		Members: members, Time: ev.Time.UTC().Format(time.RFC3339Nano),
	})
}

func (s *Service) toAppServers(ev *room.Posted, body string, offline []xmpp.JID, now time.Time) {
	// Members notified within the interval are not looked up at all; one
	// store call reads the registrations of the rest.
	var ask []xmpp.JID
	for _, u := range offline {
		if s.xep.throttled(throttleKey{u, ev.Room}, now) {
			s.m.outcome(KindXEP0357, "suppressed")
			continue
		}
		ask = append(ask, u)
	}
	if len(ask) == 0 || s.opts.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.StoreTimeout)
	regs, err := s.opts.Store.PushRegistrations(ctx, ask)
	cancel()
	if err != nil {
		s.m.dropped(KindXEP0357, "store")
		s.warn.Log(s.log, slog.LevelError, "store", "reading push registrations", "room", ev.Room.String(), "err", err)
		return
	}
	sender := ev.Room.WithResource(ev.Sender.String())
	for _, u := range ask {
		list := regs[u]
		if len(list) == 0 {
			continue
		}
		switch s.xep.take(throttleKey{u, ev.Room}, now) {
		case throttleSuppress:
			s.m.outcome(KindXEP0357, "suppressed")
			continue
		case throttleFull:
			s.m.dropped(KindXEP0357, "throttle_full")
			continue
		}
		for _, r := range list {
			s.publish(r, sender, body)
		}
	}
}

// publish sends one XEP-0357 notification to an app server.
func (s *Service) publish(r pushstore.Registration, sender xmpp.JID, body string) {
	if !s.served(r.JID) {
		// Enable refuses these; a registration stored before the served
		// domains changed can still name one. No server-to-server: dropped.
		s.m.dropped(KindXEP0357, "remote")
		return
	}
	out := xmpp.NewOutbound(notification(r, sender, body))
	if s.opts.Router.DeliverAnywhere(r.JID, out) {
		s.m.outcome(KindXEP0357, "sent")
		return
	}
	s.m.outcome(KindXEP0357, "failed") // the app server has no session
}

// notification builds the pubsub publish of XEP-0357 §7, from the user's
// bare JID to the app server.
func notification(r pushstore.Registration, sender xmpp.JID, body string) *etree.Element {
	iq := xmpp.NewStanzaElement(xmpp.KindIQ, "set", "push-"+room.RandomHex(8), r.Account.Bare(), r.JID)
	ps := iq.CreateElement("pubsub")
	ps.CreateAttr("xmlns", NSPubSub)
	pub := ps.CreateElement("publish")
	pub.CreateAttr("node", r.Node)
	n := pub.CreateElement("item").CreateElement("notification")
	n.CreateAttr("xmlns", NS)
	fields := []pushstore.Field{{Var: "FORM_TYPE", Value: FormSummary}, {Var: "message-count", Value: "1"},
		{Var: "last-message-sender", Value: sender.String()}}
	if body != "" {
		fields = append(fields, pushstore.Field{Var: "last-message-body", Value: body})
	}
	n.AddChild(form(fields))
	if len(r.Options) > 0 {
		po := ps.CreateElement("publish-options")
		po.AddChild(form(append([]pushstore.Field{{Var: "FORM_TYPE", Value: FormPublishOpt}}, r.Options...)))
	}
	return iq
}

func form(fields []pushstore.Field) *etree.Element {
	x := xmpp.Elem("x", xmpp.NSDataForm)
	x.CreateAttr("type", "submit")
	for _, f := range fields {
		fe := x.CreateElement("field")
		fe.CreateAttr("var", f.Var)
		if f.Var == "FORM_TYPE" {
			fe.CreateAttr("type", "hidden")
		}
		fe.CreateElement("value").SetText(f.Value)
	}
	return x
}

// parsePost reads a framed groupchat message: the id a webhook receiver
// knows it by (the archive's stanza-id when history is on, as occupants see
// it, else the message id) and its body cut to BodyPreview characters;
// false when it has no body.
func parsePost(stanza []byte) (id, body string, ok bool) {
	el, err := xmpp.ParseElement(stanza)
	if err != nil {
		return "", "", false
	}
	b := xmpp.Child(el, "body", xmpp.NSClient)
	if b == nil || xmpp.Child(el, "replace", nsCorrect) != nil || xmpp.Child(el, "apply-to", nsFasten) != nil {
		// No body, or a correction or fastening of a message that
		// already woke whoever it should.
		return "", "", false
	}
	id = xmpp.Attr(el, "id")
	if sid := xmpp.Child(el, "stanza-id", "urn:xmpp:sid:0"); sid != nil {
		id = xmpp.Attr(sid, "id")
	}
	return id, preview(b.Text()), true
}

// preview cuts s to BodyPreview characters (runes, never in the middle of
// one) and marks the cut with an ellipsis.
func preview(s string) string {
	if utf8.RuneCountInString(s) <= BodyPreview {
		return s
	}
	r := []rune(s)
	return string(r[:BodyPreview-1]) + "…"
}

// served reports whether the app server JID is a user of a served domain.
func (s *Service) served(j xmpp.JID) bool { return j.Local != "" && s.hosts[j.Domain] }

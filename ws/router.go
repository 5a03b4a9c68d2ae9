package ws

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// Service handles every stanza addressed to a domain it was registered for
// (the MUC Light service is one). The stanza's 'from' is the sender's full
// JID, already checked. HandleStanza must not block on I/O for long: it is
// called on the sender's reader goroutine; it answers through the Router.
type Service interface {
	HandleStanza(ctx context.Context, st *xmpp.Stanza)
}

// RosterSource contributes items to a user's roster (MUC Light's
// rooms_in_rosters is one). Items are <item/> elements in jabber:iq:roster.
type RosterSource interface {
	RosterItems(ctx context.Context, user xmpp.JID) ([]*etree.Element, error)
}

// SessionWatcher learns that a bound session has ended, for state kept per
// session elsewhere (the rooms a session entered in XEP-0045 form).
//
// SessionEnded is called exactly once for every bound session, whatever
// ended it (the client's close, a stream error, a slow consumer's close, a
// newer session taking its resource, account deletion, Shutdown, which
// returns after the calls), with the full JID it was bound to and its
// epoch, the xmpp.Stanza.Session of every stanza it sent. It is called on
// the session's reader goroutine after the reader has stopped: every
// stanza the session sent has been handed to its service before, and the
// session no longer receives deliveries. A replaced session's call carries
// its own epoch, never its successor's, and may come after the successor
// has sent stanzas.
//
// SessionEnded must not block: the session's goroutine and connection are
// held until it returns. A watcher with slow work hands it to a goroutine
// of its own.
type SessionWatcher interface {
	SessionEnded(full xmpp.JID, session uint64)
}

// Router is the local session table and the stanza router. It is the
// single-node implementation of "deliver to whoever serves this JID": a
// later clustered implementation keeps the same Deliver contract.
type Router struct {
	srv *Server

	mu       sync.RWMutex
	users    map[xmpp.JID][]*session // bare JID → bound sessions
	services map[string]serviceEntry // domain → service
	rosters  []RosterSource
	watchers []SessionWatcher
	remote   Remote             // the other nodes of a cluster; nil on one node
	account  map[string]Service // payload namespace → handler of iqs to one's own account
	// accountFeats are extra features of accounts' disco#info (anywhere.go).
	accountFeats []string
}

type serviceEntry struct {
	host string // the served domain the service belongs to
	node string // disco node announced with the service's item
	svc  Service
}

func newRouter(srv *Server) *Router {
	return &Router{srv: srv, users: make(map[xmpp.JID][]*session), services: make(map[string]serviceEntry), account: make(map[string]Service)}
}

// RegisterService routes the stanzas for domain to svc and lists domain
// (with the disco node, if any) in host's disco#items.
func (r *Router) RegisterService(host, domain, node string, svc Service) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[domain] = serviceEntry{host: host, node: node, svc: svc}
}

// AddRosterSource adds items to every roster get.
func (r *Router) AddRosterSource(src RosterSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rosters = append(r.rosters, src)
}

// HandleAccountIQ routes the iqs a user sends to their own account whose
// payload is in namespace ns (legacy MUC Light maps blocking onto
// jabber:iq:privacy this way).
func (r *Router) HandleAccountIQ(ns string, svc Service) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.account[ns] = svc
}

// AddSessionWatcher makes w see the end of every bound session from now on.
func (r *Router) AddSessionWatcher(w SessionWatcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A new slice: sessionWatchers hands out the old one without a copy.
	r.watchers = append(slices.Clip(r.watchers), w)
}

func (r *Router) sessionWatchers() []SessionWatcher {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.watchers
}

func (r *Router) accountHandler(ns string) Service {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.account[ns]
}

// register adds a bound session and returns the session it replaces (same
// full JID), if any.
func (r *Router) register(s *session) (replaced *session) {
	full := *s.jid.Load()
	bare := full.Bare()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.users[bare]
	for i, o := range list {
		if *o.jid.Load() == full {
			// Copy on write: a delivery may be iterating list right now
			// (sessionsOf hands it out without a copy).
			nl := slices.Clone(list)
			nl[i] = s
			r.users[bare] = nl
			return o
		}
	}
	// Appending writes past every length handed out, never into it.
	r.users[bare] = append(list, s)
	return nil
}

// replace puts next in old's place (a resumed stream's session takes over
// its detached predecessor: same full JID, same epoch), so that nobody sees
// the session leave.
func (r *Router) replace(old, next *session) bool {
	bare := old.jid.Load().Bare()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.users[bare]
	for i, o := range list {
		if o == old {
			nl := slices.Clone(list) // copy on write, as register
			nl[i] = next
			r.users[bare] = nl
			return true
		}
	}
	return false
}

func (r *Router) unregister(s *session) {
	bare := s.jid.Load().Bare()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.users[bare]
	for i, o := range list {
		if o == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.users, bare)
	} else {
		r.users[bare] = list
	}
}

// sessionsOf returns the sessions a stanza to 'to' reaches: for a full JID
// that session, for a bare JID all of the user's sessions. The slice is
// shared, never written after it is stored (register and unregister build
// new ones), and must not be modified.
func (r *Router) sessionsOf(to xmpp.JID) []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	list := r.users[to.Bare()]
	if to.Resource == "" {
		return list
	}
	for _, s := range list {
		if s.jid.Load().Resource == to.Resource {
			return []*session{s}
		}
	}
	return nil
}

// Deliver hands a stanza to the sessions serving 'to' (one for a full JID,
// all of them for a bare JID), keeping 'to' as addressed (RFC 6121 §8.5.2).
// It never blocks; it reports whether any session took the stanza.
func (r *Router) Deliver(to xmpp.JID, out *xmpp.Outbound) bool {
	ok, _ := r.deliver(to, nil, out)
	return ok
}

// DeliverExcept is Deliver to every session serving 'to' but those named
// in except: a room sends its XEP-0045 occupants their own form of an event
// and everyone else of the user the MUC Light form. except names sessions
// by full JID and bind epoch, so a newer session that took the resource of
// one left out is not left out with it; it is only read. It reports
// whether any session took the stanza (false when all are left out).
func (r *Router) DeliverExcept(to xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) bool {
	ok, _ := r.deliver(to, except, out)
	return ok
}

// DeliverSession is Deliver to one session, the one ref names: nothing when
// that session has ended, even if a newer one took its resource (it has not
// entered the rooms its predecessor had).
func (r *Router) DeliverSession(ref xmpp.SessionRef, out *xmpp.Outbound) bool {
	for _, s := range r.sessionsOf(ref.JID) {
		if ref.JID.Resource != "" && ref.Names(*s.jid.Load(), s.epoch) {
			took, _ := s.deliver(out, s.jidStr)
			return took
		}
	}
	return false
}

// deliver is Deliver that skips the sessions named in except and also
// returns the stall channel of a recipient above its high-water mark, if
// any.
func (r *Router) deliver(to xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) (bool, <-chan struct{}) {
	targets := r.sessionsOf(to)
	ok := false
	var stall <-chan struct{}
	for _, s := range targets {
		if len(except) != 0 && excepted(except, *s.jid.Load(), s.epoch) {
			continue
		}
		// 'to' is the session's bare or full JID, whose strings it keeps.
		toStr := s.bareStr
		if to.Resource != "" {
			toStr = s.jidStr
		}
		took, st := s.deliver(out, toStr)
		if took {
			ok = true
		}
		if st != nil && stall == nil {
			stall = st
		}
	}
	return ok, stall
}

// DeliverPaced is Deliver for a stanza that cause's session made the server
// send (a room fan-out): a recipient above its high-water mark makes cause's
// reader wait (at most StallTimeout) before cause's next stanza, rather than
// anyone being dropped or the caller blocking. A cause that is not a local
// full JID is not paced. See rooms.Deliverer.
func (r *Router) DeliverPaced(cause, to xmpp.JID, out *xmpp.Outbound) bool {
	ok, stall := r.deliver(to, nil, out)
	r.pace(cause, stall)
	return ok
}

// DeliverPacedExcept is DeliverExcept with DeliverPaced's pacing of cause.
func (r *Router) DeliverPacedExcept(cause, to xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) bool {
	ok, stall := r.deliver(to, except, out)
	r.pace(cause, stall)
	return ok
}

func excepted(except []xmpp.SessionRef, full xmpp.JID, epoch uint64) bool {
	for _, ref := range except {
		if ref.Names(full, epoch) {
			return true
		}
	}
	return false
}

// pace makes the local session of cause, if any, wait on stall (if any)
// before its next stanza.
func (r *Router) pace(cause xmpp.JID, stall <-chan struct{}) {
	if stall != nil && cause.Resource != "" {
		if c := r.sessionsOf(cause); len(c) == 1 {
			c[0].paceOn(stall)
		}
	}
}

// DeliverElement is Deliver for a one-off element (replies, notifications
// to a single user).
func (r *Router) DeliverElement(to xmpp.JID, e *etree.Element) bool {
	return r.Deliver(to, xmpp.NewOutbound(e))
}

// Online reports whether the JID has a bound session (any, for a bare JID).
func (r *Router) Online(to xmpp.JID) bool { return len(r.sessionsOf(to)) > 0 }

// route sends a stanza from a local session on its way (RFC 6120 §10,
// RFC 6121 §8 for the local-user rules).
func (r *Router) route(ctx context.Context, from *session, st *xmpp.Stanza) {
	to := st.To
	if to.IsZero() {
		// No 'to': addressed to the sender's own account (RFC 6120 §10.3).
		switch st.Kind {
		case xmpp.KindIQ:
			r.accountIQ(ctx, from, st)
		case xmpp.KindMessage:
			r.toUser(from, st, from.user)
		}
		return // presence broadcast: no subscriptions to broadcast to
	}
	r.mu.RLock()
	entry, isService := r.services[to.Domain]
	r.mu.RUnlock()
	switch {
	case isService:
		entry.svc.HandleStanza(ctx, st)
	case !r.srv.servesHost(to.Domain):
		from.replyError(st, xmpp.NewError(xmpp.RemoteServerNotFound, "this server does not federate"))
	case to.Local == "":
		if to.Resource == "" && st.Kind == xmpp.KindIQ {
			r.serverIQ(ctx, from, st)
			return
		}
		if st.Kind != xmpp.KindPresence {
			from.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
		}
	case to.Resource == "" && st.Kind == xmpp.KindIQ:
		if to == from.user {
			r.accountIQ(ctx, from, st)
		} else if st.Type == "get" || st.Type == "set" {
			from.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
		}
	default:
		r.toUser(from, st, to)
	}
}

// toUser delivers to a local user's JID, applying RFC 6121 §8.5 for the
// cases where no session matches. Nothing is dropped silently except where
// the RFC says so (errors, headlines, presence to nobody, iq results).
func (r *Router) toUser(from *session, st *xmpp.Stanza, to xmpp.JID) {
	addr := to.String() // 'to' as addressed, kept on delivery (RFC 6121 §8.5.2)
	targets := r.sessionsOf(to)
	remote := r.remote != nil && r.remote.Has(to)
	if len(targets) == 0 && !remote && to.Resource != "" && st.Kind == xmpp.KindMessage && (st.Type == "" || st.Type == "normal" || st.Type == "chat") {
		// A message to a gone resource: the user's other sessions, here
		// and on other nodes.
		to = to.Bare()
		targets = r.sessionsOf(to)
		remote = r.remote != nil && r.remote.Has(to)
	}
	if len(targets) > 0 || remote {
		out := xmpp.NewOutbound(st.El)
		toStr := addr
		delivered := false
		for _, s := range targets {
			took, stall := s.deliver(out, toStr)
			if took {
				delivered = true
			}
			if stall != nil {
				from.paceOn(stall) // a flood of 1:1 messages slows its sender, not its target
			}
		}
		if remote && r.remote.Route(to, addr, out.Kind(), out.Bytes("")) {
			delivered = true
		}
		if delivered {
			return
		}
	}
	if st.Kind == xmpp.KindPresence || st.Type == "headline" || st.Type == "error" || st.Type == "result" {
		return
	}
	from.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, "the recipient is not online"))
}

// serviceItem is a service as the host's disco#items lists it.
type serviceItem struct{ domain, node string }

// sortedServices lists the services of a host, sorted by domain.
func (r *Router) sortedServices(host string) []serviceItem {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []serviceItem
	for d, e := range r.services {
		if e.host == host {
			out = append(out, serviceItem{domain: d, node: e.node})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].domain < out[j].domain })
	return out
}

func (r *Router) rosterSources() []RosterSource {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rosters
}

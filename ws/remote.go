package ws

import (
	"github.com/wschat/xmppws/xmpp"
)

// Remote is the rest of a cluster as the router sees it: which users have
// sessions on other nodes, and the way to them. A router without one is a
// single node. Its methods must not block for long: Bound and Unbound run
// on a session's goroutine, Route on a sender's reader.
type Remote interface {
	// Bound records that full is bound here by the session of epoch; a
	// session with the same full JID on another node is closed there with
	// conflict (the newest session wins cluster-wide).
	Bound(full xmpp.JID, epoch uint64)
	// Unbound removes that record, if it is still the session's own.
	Unbound(full xmpp.JID, epoch uint64)
	// Has reports whether another node has a session for to: that full
	// JID, or any of the bare JID's.
	Has(to xmpp.JID) bool
	// Route hands a stanza (serialised without 'to', of the given kind,
	// to be addressed addr) to the other nodes with sessions for to, once
	// per node, where DeliverAs delivers it; it reports whether any node
	// took it.
	Route(to xmpp.JID, addr, kind string, b []byte) bool
	// CloseUser closes the user's sessions on the other nodes.
	CloseUser(user xmpp.JID)
}

// SetRemote makes the router part of a cluster; call it before serving.
func (r *Router) SetRemote(rm Remote) { r.remote = rm }

// Kick closes the local session of full if it is the one of epoch (or any,
// for epoch 0), with conflict: a newer session took its resource on another
// node.
func (r *Router) Kick(full xmpp.JID, epoch uint64) {
	for _, s := range r.sessionsOf(full) {
		if full.Resource == "" || (epoch != 0 && s.epoch != epoch) {
			continue
		}
		r.srv.wg.Add(1)
		go func() {
			defer r.srv.wg.Done()
			s.stop(&xmpp.StreamError{Condition: xmpp.Conflict, Text: "replaced by a new connection with the same resource"}, endReplaced)
		}()
	}
}

// DeliverAs is Deliver with the 'to' attribute given: a stanza another node
// routed here keeps the address its sender wrote, as a local one does.
func (r *Router) DeliverAs(to xmpp.JID, addr string, out *xmpp.Outbound) bool {
	ok := false
	for _, s := range r.sessionsOf(to) {
		if took, _ := s.deliver(out, addr); took {
			ok = true
		}
	}
	return ok
}

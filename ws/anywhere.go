package ws

import (
	"slices"

	"github.com/wschat/xmppws/xmpp"
)

// OnlineAnywhere reports whether the JID has a bound session on this node
// or, in a cluster, on another (the session directory's view): push asks it
// before waking a room member.
func (r *Router) OnlineAnywhere(to xmpp.JID) bool {
	return r.Online(to) || (r.remote != nil && r.remote.Has(to))
}

// DeliverAnywhere is Deliver to the JID's sessions here and on the other
// nodes of a cluster (a stanza the server itself sends, such as a push
// notification to an app server that is a local user). It never blocks and
// reports whether any session, here or elsewhere, took it.
func (r *Router) DeliverAnywhere(to xmpp.JID, out *xmpp.Outbound) bool {
	ok := r.Deliver(to, out)
	if r.remote != nil && r.remote.Has(to) && r.remote.Route(to, to.String(), out.Kind(), out.Bytes("")) {
		ok = true
	}
	return ok
}

// AddAccountFeature lists a feature in the disco#info of every account
// (what a user sees asking their own bare JID), for handlers registered
// with HandleAccountIQ (XEP-0357's urn:xmpp:push:0).
func (r *Router) AddAccountFeature(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.accountFeats, ns) {
		r.accountFeats = append(slices.Clip(r.accountFeats), ns)
	}
}

func (r *Router) accountFeatures() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.accountFeats
}

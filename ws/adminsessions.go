package ws

import (
	"sort"

	"github.com/wschat/xmppws/xmpp"
)

// endAdminClosed ends a session the admin API closed.
const endAdminClosed = "admin-closed"

// SessionInfo is one bound session of this node, as the admin API lists it.
type SessionInfo struct {
	// JID is the session's full JID.
	JID xmpp.JID
	// PendingBytes is what waits in its send queue.
	PendingBytes int
}

// Sessions lists the bound sessions of a bare JID on this node that are
// not ending, sorted by resource, for the admin API.
func (s *Server) Sessions(user xmpp.JID) []SessionInfo {
	list := s.router.sessionsOf(user.Bare())
	out := make([]SessionInfo, 0, len(list))
	for _, sess := range list {
		sess.qmu.Lock()
		p, ending := sess.pending, sess.closing
		sess.qmu.Unlock()
		if !ending {
			out = append(out, SessionInfo{JID: *sess.jid.Load(), PendingBytes: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID.Resource < out[j].JID.Resource })
	return out
}

// CloseSession ends one bound session of this node, named by full JID, with
// the policy-violation stream error; it reports whether there was one.
func (s *Server) CloseSession(full xmpp.JID) bool {
	if full.Resource == "" {
		return false
	}
	closed := false
	for _, sess := range s.router.sessionsOf(full) {
		// Marked ending here, before the close runs: from now on it takes
		// no deliveries, is not listed, and is not closed twice.
		sess.qmu.Lock()
		ending := sess.closing
		sess.closing = true
		sess.qmu.Unlock()
		if ending {
			continue
		}
		closed = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sess.terminate(&xmpp.StreamError{Condition: xmpp.PolicyViolation, Text: "closed by the administrator"}, endAdminClosed)
		}()
	}
	return closed
}

package ws

import (
	"log/slog"
	"sync/atomic"

	"github.com/wschat/xmppws/xmpp"
)

// handleBind processes the stanzas allowed between SASL success and a bound
// resource: the bind request itself, and the legacy session request.
func (s *session) handleBind(st *xmpp.Stanza) *xmpp.StreamError {
	if st.Kind != xmpp.KindIQ || st.Type != "set" {
		return &xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "bind a resource first"}
	}
	req := xmpp.Child(st.El, "bind", xmpp.NSBind)
	if req == nil {
		return &xmpp.StreamError{Condition: xmpp.NotAuthorized, Text: "bind a resource first"}
	}
	res := ""
	if r := xmpp.Child(req, "resource", xmpp.NSBind); r != nil {
		res = r.Text()
	}
	if res == "" {
		res = randomID()
	}
	full, serr := s.bindResource(res)
	if serr != nil {
		s.sendElement(xmpp.ErrorReply(st, serr))
		return nil
	}
	payload := xmpp.Elem("bind", xmpp.NSBind)
	payload.CreateElement("jid").SetText(full.String())
	s.sendElement(xmpp.ResultIQ(st, payload))
	return nil
}

// bindResource binds res to this session, for the RFC 6120 bind and Bind2
// alike: the sessions-per-account cap, the conflict policy (the newest
// session wins) and the registration with the router. On success the
// session is active; an error is what the client is told.
func (s *session) bindResource(res string) (xmpp.JID, *xmpp.StanzaError) {
	full, err := xmpp.NewJID(s.user.Local, s.user.Domain, res)
	if err != nil {
		return xmpp.JID{}, xmpp.NewError(xmpp.BadRequest, "invalid resource")
	}
	s.srv.bindMu.Lock()
	if !s.srv.roomForSession(full) {
		s.srv.bindMu.Unlock()
		s.srv.im.bindRefused.Inc()
		s.srv.throttle.Log(s.log, slog.LevelInfo, "bind:"+s.user.String(), "session refused", "reason", "max-sessions-per-account",
			"max_sessions_per_account", s.srv.cfg.MaxSessionsPerAccount)
		return xmpp.JID{}, xmpp.NewError(xmpp.ResourceConstraint, "this account has the most sessions allowed: close one first")
	}
	s.jidStr, s.bareStr = full.String(), full.Bare().String()
	s.epoch = bindEpochs.Add(1)
	s.jid.Store(&full)
	s.bound.Store(true)
	old := s.srv.router.register(s)
	s.srv.bindMu.Unlock()
	if rm := s.srv.router.remote; rm != nil {
		rm.Bound(full, s.epoch)
	}
	s.srv.admit.release(s.raw) // bound: no longer counts as unauthenticated
	if old != nil {
		// Conflict policy: the newest session wins; the old one is told why.
		s.srv.wg.Add(1)
		go func() {
			defer s.srv.wg.Done()
			old.stop(&xmpp.StreamError{Condition: xmpp.Conflict, Text: "replaced by a new connection with the same resource"}, endReplaced)
		}()
	}
	s.srv.m.sessions.Inc()
	if s.timers.auth != nil {
		s.timers.auth.Stop()
	}
	s.st = stateActive
	s.setLog(s.log.With("jid", full.String()))
	return full, nil
}

// bindEpochs numbers bound sessions (xmpp.Stanza.Session). It is the
// process's, not a Server's, so that an epoch stays unique for anything that
// outlives one endpoint (a room hub wired to a restarted one); it holds no
// session's state.
var bindEpochs atomic.Uint64

// roomForSession reports whether binding full keeps its account within
// MaxSessionsPerAccount; replacing a session with the same resource does not
// add one. The caller holds bindMu.
func (srv *Server) roomForSession(full xmpp.JID) bool {
	limit := srv.cfg.MaxSessionsPerAccount
	if limit <= 0 {
		return true
	}
	n := 0
	for _, o := range srv.router.sessionsOf(full.Bare()) {
		if *o.jid.Load() == full {
			return true
		}
		n++
	}
	return n < limit
}

var (
	iqTypes       = map[string]bool{"get": true, "set": true, "result": true, "error": true}
	messageTypes  = map[string]bool{"": true, "normal": true, "chat": true, "groupchat": true, "headline": true, "error": true}
	presenceTypes = map[string]bool{"": true, "unavailable": true, "subscribe": true, "subscribed": true,
		"unsubscribe": true, "unsubscribed": true, "probe": true, "error": true}
)

// validate applies the RFC 6120/6121 rules every stanza must meet before it
// is routed; a violation is answered with bad-request.
func validate(st *xmpp.Stanza) *xmpp.StanzaError {
	switch st.Kind {
	case xmpp.KindIQ:
		if st.ID == "" {
			return xmpp.NewError(xmpp.BadRequest, "an iq needs an id")
		}
		if !iqTypes[st.Type] {
			return xmpp.NewError(xmpp.BadRequest, "invalid iq type")
		}
		n := len(st.El.ChildElements())
		if (st.Type == "get" || st.Type == "set") && n != 1 {
			return xmpp.NewError(xmpp.BadRequest, "an iq get or set carries exactly one payload")
		}
	case xmpp.KindMessage:
		if !messageTypes[st.Type] {
			return xmpp.NewError(xmpp.BadRequest, "invalid message type")
		}
	case xmpp.KindPresence:
		if !presenceTypes[st.Type] {
			return xmpp.NewError(xmpp.BadRequest, "invalid presence type")
		}
	}
	return nil
}

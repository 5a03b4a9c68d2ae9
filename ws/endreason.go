package ws

import (
	"errors"
	"io"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/xmppws/xmpp"
)

// Why a session ended, as the "session ended" log line names it: one short
// word each, stable, so that an operator can count them.
const (
	endClientClosed   = "client-closed"   // <close/>, a WebSocket close or EOF from the client
	endConnectionLost = "connection-lost" // a read or write failed without a close
	endReplaced       = "replaced"        // a newer session took the resource
	endSlowConsumer   = "slow-consumer"   // max_pending passed, or no write progress
	endIdle           = "idle"            // no answer to a ping
	endAuthTimeout    = "auth-timeout"    // not bound within auth_timeout
	endStreamError    = "stream-error"    // the client broke the protocol (condition says how)
	endShutdown       = "shutdown"        // the server is stopping
	endUserDeleted    = "user-deleted"    // the account was deleted
)

// throttleInterval is how often at most one line per key is written for
// refusals the ws package logs (connections over a cap, binds over
// max_sessions_per_account, shaped senders, store failures at login).
const throttleInterval = 10 * time.Second

// maxLoggedUser bounds an attempted user name in "login failed": it is
// whatever the client sent.
const maxLoggedUser = 64

// readEndReason names why the reader's read failed, for a session whose end
// nothing else explained first.
func (s *session) readEndReason(err error) string {
	switch {
	case s.slow.Load():
		return endSlowConsumer
	case s.srv.baseCtx.Err() != nil:
		return endShutdown
	case s.ctx.Err() != nil:
		return endConnectionLost // our own write failed and cancelled the session
	case websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF):
		return endClientClosed
	}
	return endConnectionLost
}

// logEnded writes "session ended": at info for a session that logged in,
// at debug for one that never did (the "login failed" line, if any, is at
// info already). It runs on the reader goroutine once terminate returned, so
// the reason the first terminate recorded is settled.
func (s *session) logEnded(readErr error) {
	level := s.log.Info
	if s.user.IsZero() {
		level = s.log.Debug
	}
	args := []any{"reason", s.endReason}
	if s.endCond != "" {
		args = append(args, "condition", s.endCond)
	}
	args = append(args, "duration", time.Since(s.started).Round(time.Millisecond),
		"stanzas_in", s.stanzasIn, "stanzas_out", s.stanzasOut.Load())
	if readErr != nil && s.endReason == endConnectionLost {
		args = append(args, "err", readErr.Error())
	}
	level("session ended", args...)
}

// countOut counts an outgoing frame as a stanza when it is one.
func (s *session) countOut(kind string) {
	switch kind {
	case xmpp.KindMessage, xmpp.KindPresence, xmpp.KindIQ:
		s.stanzasOut.Add(1)
	}
}

// truncateUser shortens an attempted user name for the log, on a rune
// boundary.
func truncateUser(u string) string {
	if len(u) <= maxLoggedUser {
		return u
	}
	for i := maxLoggedUser; i > 0; i-- {
		if u[i]&0xC0 != 0x80 {
			return u[:i] + "…"
		}
	}
	return ""
}

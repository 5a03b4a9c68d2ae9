package ws

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/xmppws/account"
)

// CountPasswordChecks counts the PLAIN password derivations from now until
// the test ends: what a login costs must not depend on whether the account
// exists.
func CountPasswordChecks(t testing.TB) *atomic.Int64 {
	var n atomic.Int64
	prev := verifyPassword
	verifyPassword = func(r account.Record, user, password string) bool {
		n.Add(1)
		return prev(r, user, password)
	}
	t.Cleanup(func() { verifyPassword = prev })
	return &n
}

// SetStallHook makes the flow-control tests wait for pacing as an event: f
// runs on the paced session's reader each time it starts to wait.
func SetStallHook(s *Server, f func()) { s.onStall.Store(&f) }

// SetClock replaces the clock of token issue and expiry, so that the FAST
// tests move time instead of waiting for it.
func SetClock(s *Server, now func() time.Time) { s.clock.Store(&now) }

// SetSMHook makes the stream-management tests wait for detachment, resume
// and the end of a detached session as events.
func SetSMHook(s *Server, f func(event string)) { s.smt.hook.Store(&f) }

// SetSMStart makes every stream-management counter start at n instead of 0
// from now on, so that a test reaches the 2^32 wrap in a few stanzas.
func SetSMStart(s *Server, n uint32) {
	s.smt.mu.Lock()
	s.smt.start = n
	s.smt.mu.Unlock()
}

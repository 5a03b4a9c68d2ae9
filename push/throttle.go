package push

import (
	"sync/atomic"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// throttleKey is one member in one room.
type throttleKey struct{ member, room xmpp.JID }

type throttleEntry struct {
	key throttleKey
	at  time.Time
}

// throttle remembers when each member was last notified about each room,
// so that a burst gives one notification per interval. Entries
// expire after the interval, oldest first (they are added in time order by
// the one worker goroutine that owns the throttle), and at most max are
// kept: when full with nothing expired, a notification is refused rather
// than sent twice within the interval.
type throttle struct {
	interval time.Duration
	max      int
	last     map[throttleKey]time.Time
	order    []throttleEntry // oldest first, from head on
	head     int
	size     atomic.Int64 // len(last), for the gauge
}

func newThrottle(interval time.Duration, max int) *throttle {
	return &throttle{interval: interval, max: max, last: map[throttleKey]time.Time{}}
}

// expire forgets entries older than the interval.
func (t *throttle) expire(now time.Time) {
	for ; t.head < len(t.order) && now.Sub(t.order[t.head].at) >= t.interval; t.head++ {
		e := t.order[t.head]
		if at, ok := t.last[e.key]; ok && at.Equal(e.at) {
			delete(t.last, e.key)
		}
	}
	if t.head > len(t.order)/2 {
		// Compact now and then: amortised O(1) per entry.
		t.order = append(t.order[:0:0], t.order[t.head:]...)
		t.head = 0
	}
	t.size.Store(int64(len(t.last)))
}

// throttled reports whether k was notified within the interval, without
// changing anything.
func (t *throttle) throttled(k throttleKey, now time.Time) bool {
	at, ok := t.last[k]
	return ok && now.Sub(at) < t.interval
}

// outcome of take.
const (
	throttleSend = iota
	throttleSuppress
	throttleFull
)

// take decides for one notification of k: send (and remember it),
// suppress (k was notified within the interval), or full (no room to
// remember it, so it is not sent either).
func (t *throttle) take(k throttleKey, now time.Time) int {
	t.expire(now)
	if t.throttled(k, now) {
		return throttleSuppress
	}
	if len(t.last) >= t.max {
		return throttleFull
	}
	t.last[k] = now
	t.order = append(t.order, throttleEntry{key: k, at: now})
	t.size.Store(int64(len(t.last)))
	return throttleSend
}

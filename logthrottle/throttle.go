// Package logthrottle keeps repeated log lines (limiter refusals, store
// errors) to at most one per key and interval, each carrying the number of
// events it stands for, so that a flood shows in the log without filling it.
//
// It must never keep unbounded state (the keys it tracks are capped) nor
// import another package of this module: everything may use it.
package logthrottle

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of keys a Throttle tracks when New is given
// no cap: enough for every active sender of a busy node, small enough
// (about a megabyte) that a flood of distinct keys cannot grow it further.
const DefaultMaxKeys = 10000

// Throttle decides, per key, whether an event is logged now. The first event
// of a key is; later ones within the interval are only counted, and the
// first one after it is logged with that count. The tail of a burst is thus
// reported with the key's next event, or never if none comes (the metrics
// still count it). When MaxKeys keys are tracked, a new key evicts the one
// logged longest ago, whose pending count is lost. Safe for concurrent use.
type Throttle struct {
	interval time.Duration
	maxKeys  int
	now      func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *entry
	order *list.List               // by last logged line, oldest first
}

type entry struct {
	key        string
	last       time.Time // when the key's last line was written
	suppressed int       // events since then that wrote none
}

// New returns a throttle of one line per key per interval, tracking at most
// maxKeys keys (DefaultMaxKeys if not positive); now is its clock (time.Now
// if nil), replaceable so that tests need no wall time.
func New(interval time.Duration, maxKeys int, now func() time.Time) *Throttle {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{interval: interval, maxKeys: maxKeys, now: now, keys: map[string]*list.Element{}, order: list.New()}
}

// Allow records one event of key. It reports whether to write a line now
// and, if so, how many events the line stands for: this one and those
// suppressed since the key's last line.
func (t *Throttle) Allow(key string) (count int, ok bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prune(now)
	if el, found := t.keys[key]; found {
		e := el.Value.(*entry)
		if now.Sub(e.last) < t.interval {
			e.suppressed++
			return 0, false
		}
		count = e.suppressed + 1
		e.last, e.suppressed = now, 0
		t.order.MoveToBack(el)
		return count, true
	}
	if len(t.keys) >= t.maxKeys {
		oldest := t.order.Front()
		delete(t.keys, oldest.Value.(*entry).key)
		t.order.Remove(oldest)
	}
	t.keys[key] = t.order.PushBack(&entry{key: key, last: now})
	return 1, true
}

// prune forgets, oldest first, keys whose interval is over with nothing
// suppressed: their next event would be logged anyway. Each call does work
// in proportion to what it removes, so tracking costs nothing once quiet.
func (t *Throttle) prune(now time.Time) {
	for el := t.order.Front(); el != nil; el = t.order.Front() {
		e := el.Value.(*entry)
		if e.suppressed > 0 || now.Sub(e.last) < t.interval {
			return
		}
		delete(t.keys, e.key)
		t.order.Remove(el)
	}
}

// Len is the number of keys tracked, for tests and the curious.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// Log writes msg at level with args and a "count" attribute when Allow lets
// key through, and nothing otherwise. A nil logger, or one that would drop
// the level, writes nothing and costs no lock.
func (t *Throttle) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	if log == nil || !log.Enabled(context.Background(), level) {
		return
	}
	n, ok := t.Allow(key)
	if !ok {
		return
	}
	log.Log(context.Background(), level, msg, append(args, "count", n)...)
}

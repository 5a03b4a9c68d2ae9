package rooms

import (
	"context"
	"sync"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// maxCreateBuckets bounds the users whose create_rate buckets the hub keeps.
// When it is reached, buckets that have refilled (their user has been idle)
// are dropped; if none has, an arbitrary one is, which at worst gives that
// user a fresh burst.
const maxCreateBuckets = 10000

// createLimiter is create_rate: a token bucket per bare JID for the rooms
// that user creates, shared by every room actor of the hub.
type createLimiter struct {
	rate, burst float64 // tokens per second; capacity
	mu          sync.Mutex
	buckets     map[xmpp.JID]*Bucket
}

// newCreateLimiter returns nil (no cap) when perMinute is zero.
func newCreateLimiter(perMinute float64, burst int) *createLimiter {
	if perMinute <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &createLimiter{rate: perMinute / 60, burst: float64(burst), buckets: map[xmpp.JID]*Bucket{}}
}

// take spends one creation of user's; false when the bucket is empty.
func (c *createLimiter) take(user xmpp.JID, now time.Time) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[user]
	if b == nil {
		if len(c.buckets) >= maxCreateBuckets {
			c.evict(now)
		}
		nb := NewBucket(c.rate, c.burst/c.rate, now)
		b = &nb
		c.buckets[user] = b
	}
	return b.Take(1, now)
}

// evict drops the buckets that are full again, or one bucket if none is.
func (c *createLimiter) evict(now time.Time) {
	for u, b := range c.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.capacity {
			delete(c.buckets, u)
		}
	}
	for u := range c.buckets {
		if len(c.buckets) < maxCreateBuckets {
			return
		}
		delete(c.buckets, u)
	}
}

// size is the number of tracked users, for the metrics.
func (c *createLimiter) size() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buckets)
}

// queryLimiter caps the archive queries running at once: slots for the
// server, a count per room.
type queryLimiter struct {
	slots   chan struct{}
	perRoom int
	mu      sync.Mutex
	rooms   map[xmpp.JID]int
}

func newQueryLimiter(server, perRoom int) *queryLimiter {
	if server <= 0 {
		server = DefaultMaxQueries
	}
	if perRoom <= 0 {
		perRoom = DefaultMaxQueriesPerRoom
	}
	return &queryLimiter{slots: make(chan struct{}, server), perRoom: perRoom, rooms: map[xmpp.JID]int{}}
}

var (
	errRoomQueries   = &xmpp.StanzaError{Type: xmpp.Wait, Condition: xmpp.ResourceConstraint, Text: "too many history queries in this room, try again"}
	errServerQueries = &xmpp.StanzaError{Type: xmpp.Wait, Condition: xmpp.ResourceConstraint, Text: "the history service is busy, try again"}
)

// acquire takes a place for a query of room: refused at once over the
// room's cap, waited for (mailbox_wait at most, the caller's ctx, the hub)
// over the server's. The returned func gives it back; calling it twice is
// harmless.
func (q *queryLimiter) acquire(ctx context.Context, h *Hub, room xmpp.JID) (func(), error) {
	q.mu.Lock()
	if q.rooms[room] >= q.perRoom {
		q.mu.Unlock()
		h.m.queryRefusals.WithLabelValues("room").Inc()
		return nil, errRoomQueries
	}
	q.rooms[room]++
	q.mu.Unlock()
	leaveRoom := func() {
		q.mu.Lock()
		if q.rooms[room]--; q.rooms[room] <= 0 {
			delete(q.rooms, room)
		}
		q.mu.Unlock()
	}
	select {
	case q.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.opts.MailboxWait)
		defer t.Stop()
		select {
		case q.slots <- struct{}{}:
		case <-t.C:
			leaveRoom()
			h.m.queryRefusals.WithLabelValues("server").Inc()
			return nil, errServerQueries
		case <-ctx.Done():
			leaveRoom()
			return nil, errServerQueries
		case <-h.ctx.Done():
			leaveRoom()
			return nil, xmpp.NewError(xmpp.ServiceUnavailable, "shutting down")
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-q.slots
			leaveRoom()
		})
	}, nil
}

// canonicalOverrides keys per-room limiter overrides by the room's
// canonical JID, the form rooms are looked up by; the operator may write
// them in any case. Keys that do not parse were refused by Validate.
func canonicalOverrides(in map[string]RateOverride) map[string]RateOverride {
	if len(in) == 0 {
		return in
	}
	out := make(map[string]RateOverride, len(in))
	for k, v := range in {
		if j, err := xmpp.ParseJID(k); err == nil {
			k = j.String()
		}
		out[k] = v
	}
	return out
}

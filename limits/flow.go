package limits

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// maxCreateBuckets bounds the users whose create_rate buckets the hub keeps.
// When it is reached, buckets that have refilled (their user has been idle)
// are dropped; if none has, an arbitrary one is, which at worst gives that
// user a fresh burst.
const maxCreateBuckets = 10000

// CreateLimiter is create_rate: a token bucket per bare JID for the rooms
// that user creates, shared by every room actor of the hub.
type CreateLimiter struct {
	rate, burst float64 // tokens per second; capacity
	mu          sync.Mutex
	buckets     map[xmpp.JID]*Bucket
}

// NewCreateLimiter is create_rate; nil (no cap) when perMinute is zero.
// It returns nil (no cap) when perMinute is zero.
func NewCreateLimiter(perMinute float64, burst int) *CreateLimiter {
	if perMinute <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &CreateLimiter{rate: perMinute / 60, burst: float64(burst), buckets: map[xmpp.JID]*Bucket{}}
}

// Take spends one creation of user's; false when the bucket is empty.
func (c *CreateLimiter) Take(user xmpp.JID, now time.Time) bool {
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
func (c *CreateLimiter) evict(now time.Time) {
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

// Size is the number of tracked users, for the metrics.
func (c *CreateLimiter) Size() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buckets)
}

// QueryLimiter caps the archive queries running at once: slots for the
// server, a count per room.
type QueryLimiter struct {
	slots   chan struct{}
	perRoom int
	mu      sync.Mutex
	rooms   map[xmpp.JID]int
}

// NewQueryLimiter caps queries per server and per room (0: the defaults).
func NewQueryLimiter(server, perRoom int) *QueryLimiter {
	if server <= 0 {
		server = DefaultMaxQueries
	}
	if perRoom <= 0 {
		perRoom = DefaultMaxQueriesPerRoom
	}
	return &QueryLimiter{slots: make(chan struct{}, server), perRoom: perRoom, rooms: map[xmpp.JID]int{}}
}

// Errors of Acquire: the room's cap or the server's was reached.
var (
	ErrRoomQueries   = &Refusal{Reason: "room", Condition: "resource-constraint", Text: "too many history queries in this room, try again", Wait: true}
	ErrServerQueries = &Refusal{Reason: "server", Condition: "resource-constraint", Text: "the history service is busy, try again", Wait: true}
	// ErrShutdown is a wait cut short by the end of the service's life.
	ErrShutdown = errors.New("limits: shutting down")
)

// Acquire takes a place for a query of room: refused at once over the
// room's cap, waited for (wait at most, while ctx and life last) over the
// server's. The returned func gives it back; calling it twice is harmless.
// A refusal names its scope ("room" or "server") for the metrics; a
// cancelled wait has none.
func (q *QueryLimiter) Acquire(ctx, life context.Context, room xmpp.JID, wait time.Duration) (func(), string, error) {
	q.mu.Lock()
	if q.rooms[room] >= q.perRoom {
		q.mu.Unlock()
		return nil, "room", ErrRoomQueries
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
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case q.slots <- struct{}{}:
		case <-t.C:
			leaveRoom()
			return nil, "server", ErrServerQueries
		case <-ctx.Done():
			leaveRoom()
			return nil, "", ErrServerQueries
		case <-life.Done():
			leaveRoom()
			return nil, "", ErrShutdown
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-q.slots
			leaveRoom()
		})
	}, "", nil
}

// CanonicalOverrides keys per-room limiter overrides by the room's
// canonical JID, the form rooms are looked up by; the operator may write
// them in any case. Keys that do not parse were refused by Validate.
func CanonicalOverrides(in map[string]RateOverride) map[string]RateOverride {
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

// Default caps on concurrent archive queries, per server and per room: a
// query pages at most max_result_limit messages, so 64 at once keep the
// store busy without starving message writes, and 2 per room let a client
// page while another catches up, but not a script fan out.
const (
	DefaultMaxQueries        = 64
	DefaultMaxQueriesPerRoom = 2
)

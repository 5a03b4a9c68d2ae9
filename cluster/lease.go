package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wschat/xmppws/xmpp"
)

// Why a lease ended (Lease.Err).
var (
	// ErrReleased: the holder released it, or the node left the cluster.
	ErrReleased = errors.New("cluster: lease released")
	// ErrMembershipLost: the node could not show it was alive in time, so
	// another node may hold the room soon. Acquire answers it too while the
	// node is between incarnations.
	ErrMembershipLost = errors.New("cluster: membership lost")
)

// HeldError is Acquire's answer when a live node holds the room, so that
// the caller can send the room's work there. Owner is this node itself when
// one of its own leases (or an Acquire in flight) holds the room: a lease
// is exclusive on its node too.
type HeldError struct{ Owner string }

// Error names the holder.
func (e *HeldError) Error() string { return "cluster: the room is held by node " + e.Owner }

// roomValue is the value of a room's key: who holds it, under which
// incarnation, and the room itself (the key is an encoding of it).
type roomValue struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
	Room  string `json:"room,omitempty"`
}

func roomKey(room xmpp.JID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(room.Bare().String()))
}

// maxAttempts bounds the compare-and-set retries of one Acquire.
const maxAttempts = 8

// Lease is this node's right to act for one room. It needs no renewal of
// its own: it is valid while the node's membership is (the incarnation
// under which it was taken), and ends with it.
type Lease struct {
	c     *Cluster
	room  xmpp.JID
	key   string
	epoch uint64
	rev   uint64 // the room key's revision this lease wrote

	done    chan struct{}
	ended   atomic.Bool
	endOnce sync.Once
	relOnce sync.Once
	mu      sync.Mutex
	err     error
}

// Acquire takes the room's lease for this node. It fails with *HeldError
// when a live node (this one included) holds it; a key left by a dead node
// or by an earlier incarnation of this one is taken over by compare-and-set.
func (c *Cluster) Acquire(ctx context.Context, room xmpp.JID) (*Lease, error) {
	if room.Domain == "" {
		return nil, errors.New("cluster: acquiring a room without a JID")
	}
	key := roomKey(room)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("cluster: acquiring %s: %w", room, ErrReleased)
	}
	if _, busy := c.leases[key]; busy {
		c.mu.Unlock()
		return nil, &HeldError{Owner: c.o.Node}
	}
	pending := &Lease{} // holds the room for this Acquire
	c.leases[key] = pending
	c.mu.Unlock()
	l, err := c.acquire(ctx, room, key)
	c.mu.Lock()
	if c.leases[key] == pending {
		delete(c.leases, key)
	}
	// Register only under the incarnation that took it: a membership lost
	// during the Acquire has ended its leases already.
	stale := false
	if err == nil {
		if m := c.current(); m == nil || m.epoch != l.epoch || c.closed {
			stale = true
		} else {
			c.leases[key] = l
		}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if stale {
		l.end(ErrMembershipLost)
		l.release(ctx)
		return nil, fmt.Errorf("cluster: acquiring %s: %w", room, ErrMembershipLost)
	}
	return l, nil
}

func (c *Cluster) acquire(ctx context.Context, room xmpp.JID, key string) (*Lease, error) {
	for range maxAttempts {
		m := c.current()
		if m == nil {
			return nil, fmt.Errorf("cluster: acquiring %s: %w", room, ErrMembershipLost)
		}
		b, _ := json.Marshal(roomValue{Node: c.o.Node, Epoch: m.epoch, Room: room.Bare().String()})
		var rev uint64
		e, err := c.rooms.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = c.rooms.Create(ctx, key, b)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		case err != nil:
		default:
			v, ok := readRoom(e)
			// Our own key with no lease behind it is a Release whose
			// delete did not reach NATS: take it again like any other.
			if ok && !(v.Node == c.o.Node && v.Epoch == m.epoch) {
				alive, herr := c.holds(ctx, v)
				if herr != nil {
					return nil, fmt.Errorf("cluster: reading the holder of %s: %w", room, herr)
				}
				if alive {
					return nil, &HeldError{Owner: v.Node}
				}
			}
			rev, err = c.rooms.Update(ctx, key, b, e.Revision())
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: acquiring %s: %w", room, err)
		}
		return &Lease{c: c, room: room.Bare(), key: key, epoch: m.epoch, rev: rev, done: make(chan struct{})}, nil
	}
	return nil, fmt.Errorf("cluster: acquiring %s: too many concurrent changes", room)
}

// holds reads the holder's node key itself (not the watch, which may lag):
// the holder is alive while its key shows the incarnation that took the
// room. The buckets have one replica, so the read is the stream's own.
func (c *Cluster) holds(ctx context.Context, v roomValue) (bool, error) {
	if v.Node == c.o.Node {
		m := c.current()
		return m != nil && m.epoch == v.Epoch, nil
	}
	e, err := c.nodes.Get(ctx, v.Node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	nv, ok := readNode(e)
	return ok && nv.Epoch == v.Epoch, nil
}

// Holder is the node holding the room's lease now, "" if none does or its
// holder is dead.
func (c *Cluster) Holder(ctx context.Context, room xmpp.JID) (string, error) {
	e, err := c.rooms.Get(ctx, roomKey(room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: reading the holder of %s: %w", room, err)
	}
	v, ok := readRoom(e)
	if !ok {
		return "", nil
	}
	alive, err := c.holds(ctx, v)
	if err != nil || !alive {
		return "", err
	}
	return v.Node, nil
}

func readRoom(e jetstream.KeyValueEntry) (roomValue, bool) {
	var v roomValue
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &v) != nil || v.Node == "" {
		return v, false
	}
	return v, true
}

// Room is the room the lease is for.
func (l *Lease) Room() xmpp.JID { return l.room }

// Valid reports whether this node may act for the room now: the lease is
// not released and the node's membership, under the incarnation that took
// the lease, is still provably alive. Check it before each write and each
// delivery batch.
func (l *Lease) Valid() bool {
	if l.ended.Load() {
		return false
	}
	m := l.c.current()
	return m != nil && m.epoch == l.epoch
}

// Done is closed when the lease ends: released, or membership lost.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lease is held, then why it ended (ErrReleased,
// ErrMembershipLost).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Release stops acting for the room and deletes its key by compare-and-set
// on the revision this lease wrote, so it never removes a key another node
// has taken since. It waits for NATS at most a bounded time; a delete that
// does not land leaves a key that the next Acquire takes over. Idempotent.
func (l *Lease) Release() {
	l.end(ErrReleased)
	if err := l.release(context.Background()); err != nil {
		l.c.log.Warn("releasing a room's lease", "room", l.room.String(), "err", err)
	}
}

// end stops the lease: Valid is false before Done closes.
func (l *Lease) end(why error) {
	l.endOnce.Do(func() {
		l.mu.Lock()
		l.err = why
		l.mu.Unlock()
		l.ended.Store(true)
		c := l.c
		c.mu.Lock()
		if c.leases[l.key] == l {
			delete(c.leases, l.key)
		}
		c.mu.Unlock()
		close(l.done)
	})
}

// release deletes the room's key once, if it is still this lease's.
func (l *Lease) release(ctx context.Context) error {
	var err error
	l.relOnce.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		err = l.c.rooms.Delete(dctx, l.key, jetstream.LastRevision(l.rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongSequence(err) {
			err = nil // someone took it over since: not ours to delete
		}
	})
	return err
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

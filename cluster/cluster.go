// Package cluster is a node's membership of the cluster and its right to
// act for rooms: which nodes are alive (a key per node in a NATS JetStream
// key-value bucket, renewed by compare-and-set), which node a room prefers
// (rendezvous hashing over the live set), and which node may act for a
// room now (a fenced lease, a key per room that names a node and the
// incarnation of its membership).
//
// Leases are attached to the membership, as etcd attaches keys to a lease:
// one heartbeat per node keeps every room it holds, and when the heartbeat
// can no longer be shown to have landed in time, every lease of the node
// ends at once, before any other node can take one over.
//
// It must never run a consensus or election protocol of its own (NATS's
// compare-and-set and key expiry are the only arbiters), act for a room
// itself, or import the room core: the server adapts a Lease to the actor's
// fence.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Buckets of the cluster: one key per live node, one key per held room.
const (
	NodesBucket = "xmppws_nodes"
	RoomsBucket = "xmppws_rooms"
)

// Options say who this node is and how fast it must prove it is alive.
// Every node of one cluster must use the same NodeTTL: it is the nodes
// bucket's MaxAge, and Join refuses a bucket made with another.
type Options struct {
	Node      string        // this node's name, required, [A-Za-z0-9_-]+ (it is used in NATS subjects)
	Heartbeat time.Duration // default 1s: how often the node renews its membership key
	NodeTTL   time.Duration // default 5s: a node whose key was not renewed for this long is dead (bucket MaxAge)
	Logger    *slog.Logger
	// OnChange, if set, is called with the live set once the node has
	// joined and then after each change, from the cluster's goroutine, one
	// call at a time; it must not block for long.
	OnChange func(live []string)
}

// Defaults of Options.
const (
	DefaultHeartbeat = time.Second
	DefaultNodeTTL   = 5 * time.Second
)

// opTimeout bounds one bucket read or write made on the cluster's own
// behalf (a Release, a deletion at Close).
const opTimeout = 2 * time.Second

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ErrNameInUse is Join's answer when another live process renews the key
// of the same node name.
var ErrNameInUse = errors.New("cluster: node name in use")

// membership is one incarnation of this node in the nodes bucket. A new
// value replaces it on every renewal; nil means not a member.
type membership struct {
	epoch uint64    // revision of the Create that joined
	rev   uint64    // revision of the last write of the node's key
	until time.Time // monotonic: stop acting at this instant
}

// nodeValue is the value of a node's key.
type nodeValue struct {
	Epoch uint64 `json:"epoch"`
}

// Cluster is this node's membership and its leases.
type Cluster struct {
	nc    *nats.Conn
	nodes jetstream.KeyValue
	rooms jetstream.KeyValue
	o     Options
	log   *slog.Logger

	member    atomic.Pointer[membership]
	lastEpoch uint64 // the latest incarnation, for rejoining; heartbeat goroutine only after Join

	mu     sync.Mutex
	leases map[string]*Lease // by room key: unended leases of the current incarnation, and placeholders of Acquires in flight
	seen   map[string]time.Time
	closed bool

	poke    chan struct{} // membership changed: re-evaluate the live set now
	stalled atomic.Bool   // tests: the heartbeat sends nothing while set

	cancel    context.CancelFunc
	hbWG      sync.WaitGroup
	watchWG   sync.WaitGroup
	stopWatch context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Join makes this node a member: it creates the node's key, reads the live
// set, and starts the heartbeat. A key already under the name is waited
// for (up to about two NodeTTLs: a previous, crashed incarnation's key
// expires in one, and the server removes it a little later), unless it is
// renewed meanwhile: then a live process has the name and Join refuses
// with ErrNameInUse. The context bounds Join only.
func Join(ctx context.Context, nc *nats.Conn, o Options) (*Cluster, error) {
	if !nodeName.MatchString(o.Node) {
		return nil, fmt.Errorf("cluster: node name %q is not [A-Za-z0-9_-]+", o.Node)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Heartbeat >= o.NodeTTL-margin(o.NodeTTL) {
		return nil, fmt.Errorf("cluster: heartbeat %v must be shorter than four fifths of the node TTL %v", o.Heartbeat, o.NodeTTL)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	nodes, err := bucket(ctx, js, jetstream.KeyValueConfig{Bucket: NodesBucket, History: 1, TTL: o.NodeTTL})
	if err != nil {
		return nil, err
	}
	rooms, err := bucket(ctx, js, jetstream.KeyValueConfig{Bucket: RoomsBucket, History: 1})
	if err != nil {
		return nil, err
	}
	c := &Cluster{nc: nc, nodes: nodes, rooms: rooms, o: o, log: o.Logger.With("module", "cluster", "node", o.Node),
		leases: map[string]*Lease{}, seen: map[string]time.Time{}, poke: make(chan struct{}, 1)}
	if err := c.join(ctx); err != nil {
		return nil, err
	}
	wctx, stopWatch := context.WithCancel(context.Background())
	c.stopWatch = stopWatch
	w, err := nodes.WatchAll(wctx)
	if err != nil {
		stopWatch()
		c.deleteOwnKey(ctx)
		return nil, err
	}
	synced := make(chan struct{})
	c.watchWG.Add(1)
	go c.follow(wctx, w, synced)
	hctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.hbWG.Add(1)
	go c.heartbeat(hctx)
	select {
	case <-synced:
	case <-ctx.Done():
		c.Close(context.Background())
		return nil, ctx.Err()
	}
	return c, nil
}

// bucket opens a bucket with cfg, creating it if needed, and refuses one
// whose MaxAge differs: a shorter one would let others see a node expire
// while it still acts.
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if err == nil {
		return kv, nil
	}
	if kv, err = js.KeyValue(ctx, cfg.Bucket); err != nil {
		return nil, fmt.Errorf("cluster: opening bucket %s: %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading bucket %s: %w", cfg.Bucket, err)
	}
	if st.TTL() != cfg.TTL {
		return nil, fmt.Errorf("cluster: bucket %s has MaxAge %v, this node's is %v: every node needs the same node TTL", cfg.Bucket, st.TTL(), cfg.TTL)
	}
	return kv, nil
}

func margin(ttl time.Duration) time.Duration { return ttl / 5 }

// Node is this node's name.
func (c *Cluster) Node() string { return c.o.Node }

// join creates a new incarnation of the node's key. A key already there is
// either a previous incarnation's (it expires within NodeTTL, or it is this
// process's own and is removed at once) or a live namesake's (its revision
// moves: ErrNameInUse).
func (c *Cluster) join(ctx context.Context) error {
	// The server removes an expired key a little after its MaxAge.
	deadline := time.Now().Add(2*c.o.NodeTTL + c.o.Heartbeat)
	var firstRev uint64
	for {
		m, err := c.create(ctx)
		if err == nil {
			c.setMember(m)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("cluster: joining as %s: %w", c.o.Node, err)
		}
		e, err := c.nodes.Get(ctx, c.o.Node)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue
		case err != nil:
			return fmt.Errorf("cluster: joining as %s: %w", c.o.Node, err)
		}
		if v, ok := readNode(e); ok && c.lastEpoch != 0 && v.Epoch == c.lastEpoch {
			// This process's own previous incarnation: its leases have
			// ended, so nobody needs to wait for it.
			if err := c.nodes.Delete(ctx, c.o.Node, jetstream.LastRevision(e.Revision())); err == nil {
				continue
			}
		}
		if firstRev == 0 {
			firstRev = e.Revision()
			c.log.Info("waiting for a previous incarnation's key to expire", "ttl", c.o.NodeTTL)
		} else if e.Revision() != firstRev || time.Now().After(deadline) {
			return fmt.Errorf("%w: %s is renewed by another process (revision %d, then %d)", ErrNameInUse, c.o.Node, firstRev, e.Revision())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.o.Heartbeat / 2):
		}
	}
}

// create writes a new key for the node and then its epoch (the Create's
// revision, which only the Create's answer tells). Validity counts from
// before the first write.
func (c *Cluster) create(ctx context.Context) (*membership, error) {
	t0 := time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.o.NodeTTL-margin(c.o.NodeTTL))
	defer cancel()
	rev, err := c.nodes.Create(cctx, c.o.Node, []byte(`{"epoch":0}`))
	if err != nil {
		return nil, err
	}
	m := &membership{epoch: rev, rev: rev, until: t0.Add(c.o.NodeTTL - margin(c.o.NodeTTL))}
	return c.update(cctx, m)
}

// update renews m's key by compare-and-set on its last revision.
func (c *Cluster) update(ctx context.Context, m *membership) (*membership, error) {
	t0 := time.Now()
	b, _ := json.Marshal(nodeValue{Epoch: m.epoch})
	rev, err := c.nodes.Update(ctx, c.o.Node, b, m.rev)
	if err != nil {
		return nil, err
	}
	return &membership{epoch: m.epoch, rev: rev, until: t0.Add(c.o.NodeTTL - margin(c.o.NodeTTL))}, nil
}

func (c *Cluster) setMember(m *membership) {
	c.mu.Lock()
	c.lastEpoch = m.epoch
	c.member.Store(m)
	c.mu.Unlock()
	c.pokeWatch()
}

func (c *Cluster) pokeWatch() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// current is the membership if it is valid now.
func (c *Cluster) current() *membership {
	m := c.member.Load()
	if m == nil || !time.Now().Before(m.until) {
		return nil
	}
	return m
}

// heartbeat renews the node's key every Heartbeat, ends the membership
// when a renewal fails or validity lapses, and then rejoins.
func (c *Cluster) heartbeat(ctx context.Context) {
	defer c.hbWG.Done()
	tick := time.NewTicker(c.o.Heartbeat)
	defer tick.Stop()
	for {
		m := c.member.Load()
		var lapse <-chan time.Time
		var t *time.Timer
		if m != nil {
			t = time.NewTimer(time.Until(m.until))
			lapse = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-lapse:
			c.lose(m, "the membership was not renewed in time")
		case <-tick.C:
			switch {
			case c.stalled.Load():
			case m == nil:
				if err := c.rejoin(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("rejoining the cluster", "err", err)
				}
			default:
				c.renew(ctx, m)
			}
		}
		if t != nil {
			t.Stop()
		}
	}
}

// renew sends one renewal, allowed to take until the membership lapses.
func (c *Cluster) renew(ctx context.Context, m *membership) {
	if time.Until(m.until) <= 0 {
		c.lose(m, "the membership was not renewed in time")
		return
	}
	uctx, cancel := context.WithDeadline(ctx, m.until)
	next, err := c.update(uctx, m)
	cancel()
	switch {
	case err == nil:
		c.mu.Lock()
		if c.member.Load() == m {
			c.member.Store(next)
		}
		c.mu.Unlock()
	case ctx.Err() != nil:
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
		c.lose(m, "the membership key was changed or removed: "+err.Error())
	default:
		// Unknown outcome (a timeout, a lost connection): keep trying
		// until validity lapses; a renewal that did land shows up as a
		// revision mismatch next time.
		c.log.Warn("renewing the membership", "err", err)
	}
}

// rejoin starts a new incarnation after the membership was lost.
func (c *Cluster) rejoin(ctx context.Context) error {
	jctx, cancel := context.WithTimeout(ctx, 2*c.o.NodeTTL+2*c.o.Heartbeat)
	defer cancel()
	if err := c.join(jctx); err != nil {
		return err
	}
	c.log.Info("rejoined the cluster", "epoch", c.member.Load().epoch)
	return nil
}

// lose ends membership m, if it is still the current one, and every lease
// held under it.
func (c *Cluster) lose(m *membership, why string) {
	c.mu.Lock()
	if c.member.Load() != m {
		c.mu.Unlock()
		return
	}
	c.member.Store(nil)
	leases := c.takeLeases()
	c.mu.Unlock()
	c.log.Warn("membership lost, leaving every room", "epoch", m.epoch, "why", why, "rooms", len(leases))
	for _, l := range leases {
		l.end(ErrMembershipLost)
	}
	c.pokeWatch()
}

// takeLeases empties the lease set; c.mu held.
func (c *Cluster) takeLeases() []*Lease {
	out := make([]*Lease, 0, len(c.leases))
	for _, l := range c.leases {
		if l.done != nil { // not a placeholder
			out = append(out, l)
		}
	}
	clear(c.leases)
	return out
}

// Close releases every lease, deletes this node's key so that the others
// see it leave at once, and stops the cluster's goroutines. It is
// idempotent; later calls return the first call's error.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.hbWG.Wait()
		c.mu.Lock()
		c.closed = true
		m := c.member.Swap(nil)
		leases := c.takeLeases()
		c.mu.Unlock()
		var errs []error
		for _, l := range leases {
			l.end(ErrReleased)
			errs = append(errs, l.release(ctx))
		}
		if m != nil {
			// The leases have ended: now the others may take the rooms.
			dctx, cancel := context.WithTimeout(ctx, opTimeout)
			if err := c.nodes.Delete(dctx, c.o.Node, jetstream.LastRevision(m.rev)); err != nil {
				errs = append(errs, fmt.Errorf("cluster: deleting the node's key: %w", err))
			}
			cancel()
		}
		c.stopWatch()
		c.watchWG.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// deleteOwnKey undoes a Join that failed after its Create.
func (c *Cluster) deleteOwnKey(ctx context.Context) {
	if m := c.member.Swap(nil); m != nil {
		dctx, cancel := context.WithTimeout(ctx, opTimeout)
		c.nodes.Delete(dctx, c.o.Node, jetstream.LastRevision(m.rev))
		cancel()
	}
}

func readNode(e jetstream.KeyValueEntry) (nodeValue, bool) {
	var v nodeValue
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &v) != nil {
		return v, false
	}
	return v, true
}

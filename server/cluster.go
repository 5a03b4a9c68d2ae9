package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/cluster"
	"github.com/wschat/xmppws/cluster/directory"
	"github.com/wschat/xmppws/cluster/transport"
	"github.com/wschat/xmppws/logthrottle"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// clusterNode is this process's part in a cluster (docs/08_cluster.md):
// its NATS connection, its membership, the leases of the rooms it acts
// for, the room transport and the session directory.
type clusterNode struct {
	node string
	log  *slog.Logger
	nc   *nats.Conn
	c    *cluster.Cluster
	// joined is c once Join returned: the membership's first OnChange may
	// run before that.
	joined atomic.Pointer[cluster.Cluster]
	tr     *transport.Transport
	trErr  error
	dir    *directory.Directory

	mu   sync.Mutex
	held map[xmpp.JID]*leaseFence // rooms this node acts for, or is acquiring

	stop    chan struct{}
	wg      sync.WaitGroup // the rebalancer
	fenceWG sync.WaitGroup // each lease's watcher, until the lease ends
}

// rebalanceEvery is how often a node looks for rooms it acts for that the
// placement now gives to another node (besides every membership change):
// a room acquired while the views of the live set differed moves soon.
const rebalanceEvery = time.Second

// spanHook, when set (by tests), is told when this process starts acting
// for a room and each time it acts: the no-two-owners checker.
var spanHook func(room, node string) actingSpan

type actingSpan interface {
	Acted()
	End()
}

// joinCluster connects to NATS and joins the cluster as cfg.Cluster.Node.
func joinCluster(ctx context.Context, cfg Config, log *slog.Logger) (*clusterNode, error) {
	cc := cfg.Cluster
	errLog := logthrottle.New(10*time.Second, 100, time.Now)
	cn := &clusterNode{node: cc.Node, log: log.With("module", "cluster"), held: map[xmpp.JID]*leaseFence{}, stop: make(chan struct{})}
	nc, err := nats.Connect(cc.NATSURL, nats.Name("xmppws "+cc.Node), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { cn.log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { cn.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// A subscription that fell behind drops messages (NATS's slow
			// consumer): say so, once per subject and interval.
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			errLog.Log(cn.log, slog.LevelWarn, subject, "nats error", "subject", subject, "err", err)
		}))
	if err != nil {
		return nil, fmt.Errorf("cluster.nats_url: %w", err)
	}
	cn.nc = nc
	cn.c, err = cluster.Join(ctx, nc, cluster.Options{Node: cc.Node, Heartbeat: cc.Heartbeat.Duration, NodeTTL: cc.NodeTTL.Duration,
		Logger: log, OnChange: func([]string) { cn.rebalance() }})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: joining as %q: %w", cc.Node, err)
	}
	cn.joined.Store(cn.c)
	cn.log.Info("cluster joined", "node", cc.Node, "nats", nc.ConnectedUrlRedacted(), "live", cn.c.Live(),
		"heartbeat", cc.Heartbeat.Duration.String(), "node_ttl", cc.NodeTTL.Duration.String())
	cn.wg.Add(1)
	go cn.rebalancer()
	return cn, nil
}

// roomOptions puts the room core behind the cluster: requests go to each
// room's owner, an actor starts only with the room's lease, and a request
// reaching a node while another still holds the lease goes to the holder.
func (cn *clusterNode) roomOptions(ho *rooms.HubOptions) {
	ho.OrderedIDs = true
	ho.Node = cn.node
	ho.Admit = cn.admit
	ho.Redirect = func(req room.Request, owner string) bool {
		if cn.tr == nil {
			return false
		}
		return cn.tr.Forward(req, owner)
	}
	ho.Transport = func(core *roomhub.Hub, edge roomhub.Sink) rooms.Transport {
		tr, err := transport.New(cn.nc, cn.node, cn.c, core, edge, transport.Options{Logger: cn.log})
		if err != nil {
			// Subscribing fails only on a closed connection; attach
			// reports it and the server does not start.
			cn.trErr = err
			return deadTransport{core, edge}
		}
		cn.tr = tr
		return tr
	}
}

// deadTransport stands in for a transport that could not subscribe, until
// the failed start is unwound: it refuses every request.
type deadTransport struct {
	core *roomhub.Hub
	edge roomhub.Sink
}

func (d deadTransport) Dispatch(_ context.Context, req room.Request) bool {
	d.core.Fail(req, xmpp.NewError(xmpp.ServiceUnavailable, "the cluster is not reachable"))
	return false
}

func (d deadTransport) CoreSink() roomhub.Sink { return d.edge }

// register exports the transport's inbound queue.
func (cn *clusterNode) register(reg prometheus.Registerer) {
	read := func(f func(*transport.Transport) int) func() float64 {
		return func() float64 {
			if cn.tr == nil {
				return 0
			}
			return float64(f(cn.tr))
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xmppws_cluster_inbound_pending",
			Help: "Room requests, replies and events from other nodes waiting to be handled (bound: 4,096 over 16 lanes)."},
			read((*transport.Transport).Pending)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xmppws_cluster_inbound_dropped_total",
			Help: "Messages from other nodes NATS dropped because this node fell behind (the lanes and NATS's buffer were full)."},
			read((*transport.Transport).Dropped)),
	)
}

// sessionLocal is this node's end of the session directory.
type sessionLocal struct {
	*ws.Router
	srv *ws.Server
}

func (l sessionLocal) CloseLocalUser(user xmpp.JID) { l.srv.CloseLocalUser(user) }

func (l sessionLocal) Sessions(user xmpp.JID) []ws.SessionInfo { return l.srv.Sessions(user) }

func (l sessionLocal) CloseSession(full xmpp.JID) bool { return l.srv.CloseSession(full) }

// attach opens the session directory for the endpoint and makes its router
// deliver across nodes; call it before serving.
func (cn *clusterNode) attach(ctx context.Context, srv *ws.Server) error {
	if cn.trErr != nil {
		return fmt.Errorf("cluster: the room transport did not start: %w", cn.trErr)
	}
	d, err := directory.New(ctx, cn.nc, cn.node, cn.c.Live, sessionLocal{srv.Router(), srv}, cn.log)
	if err != nil {
		return fmt.Errorf("cluster: session directory: %w", err)
	}
	cn.dir = d
	srv.Router().SetRemote(d)
	return nil
}

// Close leaves the cluster; call it after the room hub closed, so every
// actor has settled and let go of its lease.
func (cn *clusterNode) Close(ctx context.Context) error {
	close(cn.stop)
	cn.wg.Wait()
	if cn.tr != nil {
		cn.tr.Close()
	}
	if cn.dir != nil {
		cn.dir.Close()
	}
	err := cn.c.Close(ctx) // ends every lease still held
	cn.fenceWG.Wait()
	cn.nc.Close()
	cn.log.Info("cluster left", "node", cn.node)
	return err
}

// admit is the hub's Admit: the room's lease, or who holds it.
func (cn *clusterNode) admit(ctx context.Context, rm xmpp.JID) (roomhub.Fence, error) {
	cn.mu.Lock()
	if f := cn.held[rm]; f != nil {
		cn.mu.Unlock()
		// Another request of this node is starting the room's actor, or
		// one still holds it: wait for that acquisition, then the hub
		// finds the actor (roomhub treats a HeldError naming this node so).
		select {
		case <-f.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, &roomhub.HeldError{Owner: cn.node}
	}
	f := &leaseFence{cn: cn, room: rm, ready: make(chan struct{}), move: make(chan struct{}), done: make(chan struct{})}
	cn.held[rm] = f
	cn.mu.Unlock()

	l, err := cn.c.Acquire(ctx, rm)
	if err != nil {
		cn.forget(f)
		close(f.ready)
		var held *cluster.HeldError
		if errors.As(err, &held) {
			return nil, &roomhub.HeldError{Owner: held.Owner}
		}
		return nil, xmpp.NewError(xmpp.ServiceUnavailable, "the cluster cannot place the room now, try again")
	}
	var span actingSpan
	if spanHook != nil {
		span = spanHook(rm.String(), cn.node)
	}
	cn.mu.Lock() // rebalance reads lease under mu
	f.lease, f.span = l, span
	cn.mu.Unlock()
	close(f.ready)
	cn.fenceWG.Add(1)
	go f.watch()
	return f, nil
}

func (cn *clusterNode) forget(f *leaseFence) {
	cn.mu.Lock()
	if cn.held[f.room] == f {
		delete(cn.held, f.room)
	}
	cn.mu.Unlock()
}

func (cn *clusterNode) rebalancer() {
	defer cn.wg.Done()
	t := time.NewTicker(rebalanceEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			cn.rebalance()
		case <-cn.stop:
			return
		}
	}
}

// rebalance asks every actor of a room the placement now gives to another
// live node to settle and let go; the next request acquires it there.
func (cn *clusterNode) rebalance() {
	c := cn.joined.Load()
	if c == nil {
		return
	}
	cn.mu.Lock()
	var moving []*leaseFence
	for rm, f := range cn.held {
		if f.lease != nil && c.Owner(rm) != cn.node {
			moving = append(moving, f)
		}
	}
	cn.mu.Unlock()
	for _, f := range moving {
		f.moveOnce.Do(func() { close(f.move) })
	}
}

// leaseFence is an actor's roomhub.Fence over the room's lease: valid
// while the lease is, done when the lease ends or the room is to move (the
// lease is still valid then, so the actor settles its writes first).
type leaseFence struct {
	cn    *clusterNode
	room  xmpp.JID
	lease *cluster.Lease
	span  actingSpan

	ready    chan struct{} // closed once the acquisition is decided
	move     chan struct{}
	moveOnce sync.Once
	done     chan struct{}
	release  sync.Once
}

func (f *leaseFence) watch() {
	defer f.cn.fenceWG.Done()
	select {
	case <-f.lease.Done():
	case <-f.move:
	}
	close(f.done)
}

func (f *leaseFence) Valid() bool {
	ok := f.lease.Valid()
	if ok && f.span != nil {
		f.span.Acted()
	}
	return ok
}

func (f *leaseFence) Done() <-chan struct{} { return f.done }

func (f *leaseFence) Release() {
	f.release.Do(func() {
		if f.span != nil {
			f.span.End()
		}
		f.lease.Release()
		f.moveOnce.Do(func() { close(f.move) })
		f.cn.forget(f)
	})
}

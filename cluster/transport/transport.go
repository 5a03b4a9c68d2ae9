// Package transport carries the room core's traffic between cluster nodes
// over NATS: an edge's request to the node that owns the room, the owner's
// replies to the requester's node, and its events once to every live node,
// each as the room core's wire form (room.Marshal).
//
// It must never decide who owns a room (a Placement says), render or parse
// XML, or keep anything per room or per session: it only moves plain data
// in order, one subject per node.
package transport

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/xmpp"
)

// Placement says which node acts for a room and which nodes are alive.
type Placement interface {
	// Owner is the node whose core handles the room's requests now.
	Owner(rm xmpp.JID) string
	// Live lists the nodes that get events.
	Live() []string
}

// Core is the local room core: the actors of the rooms this node owns.
type Core interface {
	Dispatch(ctx context.Context, req room.Request) bool
	Fail(req room.Request, err error)
}

// Subjects of one node: requests for the rooms it owns, and the replies and
// events for its sessions.
func roomSubject(node string) string { return "xmppws.room." + node }
func edgeSubject(node string) string { return "xmppws.edge." + node }

// Transport is one node's end of the bus. Dispatch is the edge's way to a
// room's owner; CoreSink is the local core's way back to the edges.
type Transport struct {
	nc    *nats.Conn
	node  string
	place Placement
	core  Core
	edge  roomhub.Sink
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	subs   []*nats.Subscription
	wg     sync.WaitGroup
	// lanes carry what arrives from the bus to the core (requests) and to
	// the renderer (replies, events), a room always on the same lane: its
	// order is kept, and one busy room or slow render does not hold up the
	// others, as on one node where each room's actor delivers on its own.
	lanes []chan any
}

// Lanes is how many rooms' traffic from the bus is handled at once.
const Lanes = 16

// Options are a transport's collaborators.
type Options struct {
	Logger *slog.Logger
	// Pending bounds what was received from other nodes and not yet handed
	// to the core or the renderer (default 4,096, spread over the lanes):
	// when a lane is full its subject's NATS reader waits, NATS buffers
	// up to its subscription limits, and past those drops and counts them
	// as for any slow subscriber.
	Pending int
}

// New subscribes node's subjects on nc. core is this node's room core,
// edge the renderer of this node's sessions.
func New(nc *nats.Conn, node string, place Placement, core Core, edge roomhub.Sink, o Options) (*Transport, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Pending <= 0 {
		o.Pending = 4096
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{nc: nc, node: node, place: place, core: core, edge: edge, log: o.Logger.With("module", "cluster"),
		ctx: ctx, cancel: cancel, lanes: make([]chan any, Lanes)}
	for i := range t.lanes {
		t.lanes[i] = make(chan any, max(1, o.Pending/Lanes))
	}
	rs, err := nc.Subscribe(roomSubject(node), t.toCore)
	if err != nil {
		cancel()
		return nil, err
	}
	es, err := nc.Subscribe(edgeSubject(node), t.fromOwner)
	if err != nil {
		rs.Unsubscribe()
		cancel()
		return nil, err
	}
	t.subs = []*nats.Subscription{rs, es}
	for _, l := range t.lanes {
		t.wg.Add(1)
		go t.serve(l)
	}
	return t, nil
}

// Close unsubscribes and stops the request goroutine.
func (t *Transport) Close() {
	for _, s := range t.subs {
		s.Unsubscribe()
	}
	t.cancel()
	t.wg.Wait()
}

// Dispatch implements rooms.Transport: a request for a room this node owns
// goes to the local core, any other to its owner's node.
func (t *Transport) Dispatch(ctx context.Context, req room.Request) bool {
	hd := req.Header()
	if !hd.Origin.Internal() && hd.Origin.Node == "" {
		hd.Origin.Node = t.node
	}
	owner := t.place.Owner(hd.Room)
	if owner == "" || owner == t.node {
		return t.core.Dispatch(ctx, req)
	}
	return t.send(req, owner)
}

// Forward sends a request to node, the holder of its room's lease, when
// that is not the node placement names: a room whose ownership is moving
// still has one acting owner, and its requests go there until it lets go.
func (t *Transport) Forward(req room.Request, node string) bool {
	if node == t.node {
		t.core.Fail(req, xmpp.NewError(xmpp.ResourceConstraint, "the room is moving to another server, try again"))
		return false
	}
	return t.send(req, node)
}

func (t *Transport) send(req room.Request, owner string) bool {
	hd := req.Header()
	b, err := room.Marshal(req)
	if err == nil {
		err = t.nc.Publish(roomSubject(owner), b)
	}
	if err != nil {
		t.core.Fail(req, xmpp.NewError(xmpp.ServiceUnavailable, "the room's node cannot be reached, try again"))
		t.log.Error("forwarding a room request", "room", hd.Room.String(), "owner", owner, "err", err)
		return false
	}
	return true
}

// Pending is how many items wait on the lanes: the inbound queue's depth.
func (t *Transport) Pending() int {
	n := 0
	for _, l := range t.lanes {
		n += len(l)
	}
	return n
}

// Dropped is how many messages NATS dropped on this node's subjects since
// they were subscribed because the lanes and NATS's own buffer were full.
func (t *Transport) Dropped() int {
	n := 0
	for _, s := range t.subs {
		if d, err := s.Dropped(); err == nil {
			n += d
		}
	}
	return n
}

// lane picks a room's lane.
func (t *Transport) lane(rm xmpp.JID) chan any {
	h := fnv.New32a()
	h.Write([]byte(rm.String()))
	return t.lanes[h.Sum32()%uint32(len(t.lanes))]
}

// enqueue puts v on its room's lane, waiting while the lane is full.
func (t *Transport) enqueue(rm xmpp.JID, v any) {
	select {
	case t.lane(rm) <- v:
	case <-t.ctx.Done():
	}
}

// toCore takes a request from another node for this node's core.
func (t *Transport) toCore(m *nats.Msg) {
	v, err := room.Unmarshal(m.Data)
	req, ok := v.(room.Request)
	if err != nil || !ok {
		t.log.Error("unreadable room request from the bus", "err", errors.Join(err, errNotRequest(ok)))
		return
	}
	t.enqueue(req.Header().Room, req)
}

func errNotRequest(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("not a request")
}

// fromOwner takes what another node's core sent for this node's sessions.
func (t *Transport) fromOwner(m *nats.Msg) {
	v, err := room.Unmarshal(m.Data)
	if err != nil {
		t.log.Error("unreadable room output from the bus", "err", err)
		return
	}
	switch v := v.(type) {
	case *room.Reply:
		t.enqueue(v.Room, v)
	case room.Event:
		t.enqueue(v.EventHeader().Room, v)
	default:
		t.log.Error("unexpected wire type from the bus", "type", room.TypeName(v))
	}
}

// serve hands one lane's requests to the core and its replies and events
// to the renderer, in arrival order. A core that waits for a full mailbox
// holds up this lane only.
func (t *Transport) serve(l chan any) {
	defer t.wg.Done()
	for {
		select {
		case v := <-l:
			switch v := v.(type) {
			case room.Request:
				t.core.Dispatch(t.ctx, v)
			case *room.Reply:
				t.edge.Reply(*v)
			case room.Event:
				t.edge.Event(v)
			}
		case <-t.ctx.Done():
			return
		}
	}
}

// CoreSink implements rooms.Transport: the local core's replies go to the
// requester's node, its events once to every live node.
func (t *Transport) CoreSink() roomhub.Sink { return coreSink{t} }

type coreSink struct{ t *Transport }

func (s coreSink) Reply(r room.Reply) {
	t := s.t
	if r.Origin.Node == "" || r.Origin.Node == t.node {
		t.edge.Reply(r)
		return
	}
	t.publish(edgeSubject(r.Origin.Node), &r)
}

func (s coreSink) Event(e room.Event) {
	t := s.t
	var b []byte
	self := false
	for _, n := range t.place.Live() {
		if n == t.node {
			self = true
			t.edge.Event(e)
			continue
		}
		if b == nil {
			var err error
			if b, err = room.Marshal(e); err != nil {
				t.log.Error("encoding a room event", "type", room.TypeName(e), "err", err)
				return
			}
		}
		if err := t.nc.Publish(edgeSubject(n), b); err != nil {
			t.log.Error("publishing a room event", "node", n, "err", err)
		}
	}
	if !self { // this node's sessions, even before it shows as live
		t.edge.Event(e)
	}
}

func (t *Transport) publish(subject string, v any) {
	b, err := room.Marshal(v)
	if err == nil {
		err = t.nc.Publish(subject, b)
	}
	if err != nil {
		t.log.Error("publishing room output", "subject", subject, "type", room.TypeName(v), "err", err)
	}
}

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
	reqs   chan *nats.Msg // requests for this node's core, in arrival order
}

// Options are a transport's collaborators.
type Options struct {
	Logger *slog.Logger
	// Pending bounds the requests received from other nodes and not yet
	// handed to the core (default 4,096): past it NATS drops and counts
	// them as for any slow subscriber, and the senders' clients retry.
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
		ctx: ctx, cancel: cancel, reqs: make(chan *nats.Msg, o.Pending)}
	// Requests go through a channel to one goroutine, so that a core that
	// waits for a full mailbox holds up this node's inbound requests in
	// their order, never NATS's reader.
	rs, err := nc.ChanSubscribe(roomSubject(node), t.reqs)
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
	t.wg.Add(1)
	go t.serve()
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

// serve hands requests from other nodes to the core in arrival order.
func (t *Transport) serve() {
	defer t.wg.Done()
	for {
		select {
		case m := <-t.reqs:
			v, err := room.Unmarshal(m.Data)
			req, ok := v.(room.Request)
			if err != nil || !ok {
				t.log.Error("unreadable room request from the bus", "err", errors.Join(err, errNotRequest(ok)))
				continue
			}
			t.core.Dispatch(t.ctx, req)
		case <-t.ctx.Done():
			return
		}
	}
}

func errNotRequest(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("not a request")
}

// fromOwner renders what another node's core sent for this node's sessions.
func (t *Transport) fromOwner(m *nats.Msg) {
	v, err := room.Unmarshal(m.Data)
	if err != nil {
		t.log.Error("unreadable room output from the bus", "err", err)
		return
	}
	switch v := v.(type) {
	case *room.Reply:
		t.edge.Reply(*v)
	case room.Event:
		t.edge.Event(v)
	default:
		t.log.Error("unexpected wire type from the bus", "type", room.TypeName(v))
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

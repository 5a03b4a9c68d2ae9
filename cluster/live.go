package cluster

import (
	"context"
	"hash/fnv"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wschat/xmppws/xmpp"
)

// follow keeps c.seen equal to what the nodes bucket's watch shows and
// reports changes of the live set. A key that expires by MaxAge produces
// nothing in a watch, so a node stays live only while its last put was seen
// less than NodeTTL ago (local monotonic time), and the set is re-evaluated
// every heartbeat.
func (c *Cluster) follow(ctx context.Context, w jetstream.KeyWatcher, synced chan struct{}) {
	defer c.watchWG.Done()
	defer w.Stop()
	tick := time.NewTicker(c.o.Heartbeat)
	defer tick.Stop()
	var last []string
	reported := false
	report := func() {
		if synced != nil {
			return
		}
		live := c.Live()
		if reported && slices.Equal(live, last) {
			return
		}
		last, reported = live, true
		if c.o.OnChange != nil {
			c.o.OnChange(slices.Clone(live))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are in
				if synced != nil {
					close(synced)
					synced = nil
				}
			} else {
				c.record(e, synced != nil)
			}
			report()
		case <-tick.C:
			report()
		case <-c.poke:
			report()
		}
	}
}

// record notes one put or removal of a node's key. An initial value is
// dated by its age on the server, so that a node that died just before this
// one joined does not look alive for a whole NodeTTL.
func (c *Cluster) record(e jetstream.KeyValueEntry, initial bool) {
	node := e.Key()
	if node == c.o.Node {
		return // this node's liveness is its own membership
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(c.seen, node)
		return
	}
	at := time.Now()
	if initial {
		at = at.Add(-min(max(time.Since(e.Created()), 0), c.o.NodeTTL))
	}
	c.seen[node] = at
}

// Live lists the live nodes, sorted; it includes this node while it is a
// member.
func (c *Cluster) Live() []string {
	now := time.Now()
	c.mu.Lock()
	out := make([]string, 0, len(c.seen)+1)
	for n, at := range c.seen {
		if now.Sub(at) < c.o.NodeTTL {
			out = append(out, n)
		}
	}
	c.mu.Unlock()
	if c.current() != nil {
		out = append(out, c.o.Node)
	}
	slices.Sort(out)
	return out
}

// Owner is the live node a room prefers: rendezvous (highest random
// weight) hashing of the room's bare JID over Live(), so every node with
// the same live set gives the same answer, and a node's leaving moves only
// the rooms it preferred. It is "" when no node is live.
func (c *Cluster) Owner(room xmpp.JID) string { return OwnerOf(room, c.Live()) }

// OwnerOf is the placement itself: the node of highest weight for room
// among nodes, a tie going to the smaller name. Tools and tests that are
// not members use it to know where a room lives.
func OwnerOf(room xmpp.JID, nodes []string) string {
	r := room.Bare().String()
	best, bestW := "", uint64(0)
	for _, n := range nodes {
		w := weight(n, r)
		if best == "" || w > bestW || (w == bestW && n < best) {
			best, bestW = n, w
		}
	}
	return best
}

// weight is FNV-64a of node and room: the same in every process (a seeded
// hash such as maphash would not be).
func weight(node, room string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(room))
	return h.Sum64()
}

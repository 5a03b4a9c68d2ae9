package directory

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// NodeSession is a session another node holds, as the admin API lists it:
// the API of any node shows a user's sessions on every node.
type NodeSession struct {
	// Node is the node holding the session.
	Node string
	ws.SessionInfo
}

// sessionsReply is a node's answer to "sessions" and "close_sessions".
type sessionsReply struct {
	Sessions []wireSession `json:"sessions,omitempty"`
	Closed   int           `json:"closed,omitempty"`
}

type wireSession struct {
	JID          xmpp.JID `json:"jid"`
	PendingBytes int      `json:"pending_bytes"`
}

// Node is this node's name, the one the table records its sessions under.
func (d *Directory) Node() string { return d.node }

// RemoteSessions lists the user's sessions on the other live nodes the
// table names, asking them all at once and each for at most askTimeout;
// the nodes that did not answer are returned, sorted, in unreachable. The
// sessions are sorted by node, then resource.
func (d *Directory) RemoteSessions(ctx context.Context, user xmpp.JID) (list []NodeSession, unreachable []string) {
	user = user.Bare()
	answers, unreachable := d.ask(ctx, d.nodesFor(user), op{Op: "sessions", To: user})
	for node, r := range answers {
		for _, s := range r.Sessions {
			if s.JID.Bare() == user && s.JID.Resource != "" { // what the node was asked about, nothing else
				list = append(list, NodeSession{Node: node, SessionInfo: ws.SessionInfo{JID: s.JID, PendingBytes: s.PendingBytes}})
			}
		}
	}
	slices.SortFunc(list, func(a, b NodeSession) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.JID.Resource, b.JID.Resource)
	})
	return list, unreachable
}

// CloseRemote closes, on the other live nodes the table names, the
// sessions of j with the policy-violation stream error (as
// ws.Server.CloseSession does): the one session of a full JID, every one
// of a bare JID. It returns how many the nodes closed and, sorted, the
// nodes that did not answer within askTimeout (their sessions may be open).
func (d *Directory) CloseRemote(ctx context.Context, j xmpp.JID) (closed int, unreachable []string) {
	answers, unreachable := d.ask(ctx, d.nodesFor(j), op{Op: "close_sessions", To: j})
	for _, r := range answers {
		closed += r.Closed
	}
	return closed, unreachable
}

// ask sends o to each of nodes at once and gathers their answers, waiting
// for each at most askTimeout (and no longer than ctx allows). A node with
// no subscriber on its subject (NATS says so at once), one that does not
// answer in time and one whose answer is unreadable are unreachable.
func (d *Directory) ask(ctx context.Context, nodes []string, o op) (map[string]sessionsReply, []string) {
	if len(nodes) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, slices.Sorted(slices.Values(nodes))
	}
	type result struct {
		node string
		r    sessionsReply
		err  error
	}
	// One goroutine per node, each ended by its timeout: the fan-out is
	// bounded by the cluster's size, and ask returns only once all are in.
	results := make(chan result, len(nodes))
	for _, n := range nodes {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, d.askTimeout)
			defer cancel()
			res := result{node: n}
			var m *nats.Msg
			if m, res.err = d.nc.RequestWithContext(cctx, deliverSubject(n), b); res.err == nil {
				res.err = json.Unmarshal(m.Data, &res.r)
			}
			results <- res
		}()
	}
	answers := make(map[string]sessionsReply, len(nodes))
	var unreachable []string
	for range nodes {
		res := <-results
		if res.err != nil {
			d.log.Warn("a node did not answer the admin API about its sessions", "node", res.node, "op", o.Op, "err", res.err)
			unreachable = append(unreachable, res.node)
			continue
		}
		answers[res.node] = res.r
	}
	slices.Sort(unreachable)
	return answers, unreachable
}

// answer carries out an admin question another node asked and replies.
func (d *Directory) answer(m *nats.Msg, o op) {
	if m.Reply == "" || o.To.Local == "" {
		return
	}
	var r sessionsReply
	switch o.Op {
	case "sessions":
		for _, s := range d.local.Sessions(o.To.Bare()) {
			r.Sessions = append(r.Sessions, wireSession{JID: s.JID, PendingBytes: s.PendingBytes})
		}
	case "close_sessions":
		r.Closed = closeLocal(d.local, o.To)
	}
	b, err := json.Marshal(r)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		d.log.Error("answering a node about sessions", "op", o.Op, "err", err)
	}
}

// closeLocal closes this node's session of a full JID, or every session
// of a bare JID, and counts those it closed.
func closeLocal(l Local, j xmpp.JID) int {
	if j.Resource != "" {
		if l.CloseSession(j) {
			return 1
		}
		return 0
	}
	n := 0
	for _, s := range l.Sessions(j) {
		if l.CloseSession(s.JID) {
			n++
		}
	}
	return n
}

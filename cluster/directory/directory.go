// Package directory is the cluster-wide session table: which node holds
// which user's sessions, kept in a NATS JetStream key-value bucket that
// every node watches (so lookups are local reads), and the subject on which
// nodes hand each other 1:1 stanzas, resource-conflict kicks and account
// closures, and answer the admin API's questions about their sessions. It
// implements ws.Remote.
//
// It must never decide a routing rule (the router applies RFC 6121; this
// only says where sessions are and carries what it is given), keep
// sessions of its own, or block a session for longer than one bucket
// write.
package directory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// Bucket is the key-value bucket of the session table: key the user's bare
// JID (base64url), value the user's sessions by resource.
const Bucket = "xmppws_sessions"

func deliverSubject(node string) string { return "xmppws.deliver." + node }

// Local is this node's end: the router and the endpoint.
type Local interface {
	DeliverAs(to xmpp.JID, addr string, out *xmpp.Outbound) bool
	Kick(full xmpp.JID, epoch uint64)
	CloseLocalUser(user xmpp.JID)
	// Sessions and CloseSession are this node's sessions as the admin API
	// lists and closes them (ws.Server's), asked for by another node.
	Sessions(user xmpp.JID) []ws.SessionInfo
	CloseSession(full xmpp.JID) bool
}

// entry is one session in the table.
type entry struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
}

// sessions are one user's, by resource.
type sessions map[string]entry

// op is what one node asks another on its deliver subject.
type op struct {
	Op    string   `json:"op"` // stanza, kick, close_user; asked with a reply: sessions, close_sessions
	To    xmpp.JID `json:"to"`
	Addr  string   `json:"addr,omitempty"`
	Kind  string   `json:"kind,omitempty"`
	B     []byte   `json:"b,omitempty"`
	Epoch uint64   `json:"epoch,omitempty"`
}

// Directory is one node's view of the session table.
type Directory struct {
	nc    *nats.Conn
	kv    jetstream.KeyValue
	node  string
	live  func() []string
	local Local
	log   *slog.Logger

	mu    sync.RWMutex
	users map[xmpp.JID]sessions // from the bucket's watch

	// askTimeout bounds the wait for one node's answer to an admin question.
	askTimeout time.Duration

	sub    *nats.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// opTimeout bounds one bucket read or write.
const opTimeout = 5 * time.Second

// askTimeout bounds the wait for one node's answer to the admin API's
// question about its sessions: a node that does not answer by then is
// reported unreachable and the others' answers still count.
const askTimeout = 2 * time.Second

// New opens the table on nc for node. live lists the nodes whose entries
// count (nil: all); an entry of a node that is not live is stale (it
// crashed) and routes nothing. New returns once the table is read.
func New(ctx context.Context, nc *nats.Conn, node string, live func() []string, local Local, log *slog.Logger) (*Directory, error) {
	if log == nil {
		log = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	d := &Directory{nc: nc, kv: kv, node: node, live: live, local: local, log: log.With("module", "cluster"),
		users: map[xmpp.JID]sessions{}, askTimeout: askTimeout, cancel: cancel}
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, err
	}
	synced := make(chan struct{})
	d.wg.Add(1)
	go d.follow(w, synced)
	select {
	case <-synced:
	case <-ctx.Done():
		d.Close()
		return nil, ctx.Err()
	}
	if d.sub, err = nc.Subscribe(deliverSubject(node), d.handle); err != nil {
		d.Close()
		return nil, err
	}
	d.forgetOwn(ctx)
	return d, nil
}

// Close stops the watch and the subscription.
func (d *Directory) Close() {
	if d.sub != nil {
		d.sub.Unsubscribe()
	}
	d.cancel()
	d.wg.Wait()
}

func userKey(bare xmpp.JID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(bare.String()))
}

func userOfKey(k string) (xmpp.JID, error) {
	b, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return xmpp.JID{}, err
	}
	return xmpp.ParseJID(string(b))
}

// follow keeps users equal to the bucket.
func (d *Directory) follow(w jetstream.KeyWatcher, synced chan struct{}) {
	defer d.wg.Done()
	defer w.Stop()
	for u := range w.Updates() {
		if u == nil { // the initial values are in
			if synced != nil {
				close(synced)
				synced = nil
			}
			continue
		}
		user, err := userOfKey(u.Key())
		if err != nil {
			continue
		}
		var s sessions
		if u.Operation() == jetstream.KeyValuePut {
			if err := json.Unmarshal(u.Value(), &s); err != nil {
				d.log.Error("unreadable session table entry", "user", user.String(), "err", err)
				continue
			}
		}
		d.mu.Lock()
		if len(s) == 0 {
			delete(d.users, user)
		} else {
			d.users[user] = s
		}
		d.mu.Unlock()
	}
}

// forgetOwn removes the entries a previous life of this node left behind
// (it crashed with sessions bound): none of them is a session now.
func (d *Directory) forgetOwn(ctx context.Context) {
	d.mu.RLock()
	var stale []xmpp.JID
	for u, s := range d.users {
		for res, e := range s {
			if e.Node == d.node {
				stale = append(stale, u.WithResource(res))
			}
		}
	}
	d.mu.RUnlock()
	for _, full := range stale {
		d.change(ctx, full, func(s sessions) bool {
			if e, ok := s[full.Resource]; ok && e.Node == d.node {
				delete(s, full.Resource)
				return true
			}
			return false
		})
	}
}

// change applies f to the user's sessions with compare-and-set on the
// bucket, retrying on a concurrent write; f reports whether it changed
// anything.
func (d *Directory) change(ctx context.Context, full xmpp.JID, f func(sessions) bool) (sessions, error) {
	key := userKey(full.Bare())
	for attempt := 0; attempt < 16; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		s, rev := sessions{}, uint64(0)
		e, err := d.kv.Get(cctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			cancel()
			return nil, err
		default:
			rev = e.Revision()
			if e.Operation() == jetstream.KeyValuePut {
				if err := json.Unmarshal(e.Value(), &s); err != nil {
					s = sessions{}
				}
			}
		}
		before := clone(s)
		if !f(s) {
			cancel()
			return before, nil
		}
		switch {
		case len(s) == 0 && rev != 0:
			err = d.kv.Delete(cctx, key, jetstream.LastRevision(rev))
		case rev == 0:
			var b []byte
			b, _ = json.Marshal(s)
			_, err = d.kv.Create(cctx, key, b)
		default:
			var b []byte
			b, _ = json.Marshal(s)
			_, err = d.kv.Update(cctx, key, b, rev)
		}
		cancel()
		if err == nil {
			return before, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return nil, err
		}
	}
	return nil, errors.New("directory: too many concurrent changes to " + full.Bare().String())
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func clone(s sessions) sessions {
	out := make(sessions, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// Bound implements ws.Remote.
func (d *Directory) Bound(full xmpp.JID, epoch uint64) {
	mine := entry{Node: d.node, Epoch: epoch}
	before, err := d.change(context.Background(), full, func(s sessions) bool {
		s[full.Resource] = mine
		return true
	})
	if err != nil {
		d.log.Error("recording a session in the session table", "jid", full.String(), "err", err)
		return
	}
	if prev, ok := before[full.Resource]; ok && prev.Node != d.node && d.isLive(prev.Node) {
		d.send(prev.Node, op{Op: "kick", To: full, Epoch: prev.Epoch})
	}
}

// Unbound implements ws.Remote.
func (d *Directory) Unbound(full xmpp.JID, epoch uint64) {
	mine := entry{Node: d.node, Epoch: epoch}
	if _, err := d.change(context.Background(), full, func(s sessions) bool {
		if s[full.Resource] != mine {
			return false // a newer session holds the resource now
		}
		delete(s, full.Resource)
		return true
	}); err != nil {
		d.log.Error("removing a session from the session table", "jid", full.String(), "err", err)
	}
}

// nodesFor lists the other live nodes with sessions for to.
func (d *Directory) nodesFor(to xmpp.JID) []string {
	d.mu.RLock()
	s := d.users[to.Bare()]
	var out []string
	for res, e := range s {
		if e.Node == d.node || (to.Resource != "" && res != to.Resource) || slices.Contains(out, e.Node) {
			continue
		}
		out = append(out, e.Node)
	}
	d.mu.RUnlock()
	return slices.DeleteFunc(out, func(n string) bool { return !d.isLive(n) })
}

func (d *Directory) isLive(node string) bool {
	return d.live == nil || slices.Contains(d.live(), node)
}

// Has implements ws.Remote.
func (d *Directory) Has(to xmpp.JID) bool { return len(d.nodesFor(to)) > 0 }

// Route implements ws.Remote.
func (d *Directory) Route(to xmpp.JID, addr, kind string, b []byte) bool {
	nodes := d.nodesFor(to)
	for _, n := range nodes {
		d.send(n, op{Op: "stanza", To: to, Addr: addr, Kind: kind, B: b})
	}
	return len(nodes) > 0
}

// CloseUser implements ws.Remote.
func (d *Directory) CloseUser(user xmpp.JID) {
	for _, n := range d.nodesFor(user.Bare()) {
		d.send(n, op{Op: "close_user", To: user.Bare()})
	}
}

func (d *Directory) send(node string, o op) {
	b, err := json.Marshal(o)
	if err == nil {
		err = d.nc.Publish(deliverSubject(node), b)
	}
	if err != nil {
		d.log.Error("sending to a node", "node", node, "op", o.Op, "err", err)
	}
}

// handle carries out what another node asked.
func (d *Directory) handle(m *nats.Msg) {
	var o op
	if err := json.Unmarshal(m.Data, &o); err != nil {
		d.log.Error("unreadable request from a node", "err", err)
		return
	}
	switch o.Op {
	case "stanza":
		if len(o.B) > len(o.Kind) && string(o.B[1:1+len(o.Kind)]) == o.Kind {
			d.local.DeliverAs(o.To, o.Addr, xmpp.OutboundBytes(o.Kind, o.B))
		}
	case "kick":
		d.local.Kick(o.To, o.Epoch)
	case "close_user":
		d.local.CloseLocalUser(o.To)
	case "sessions", "close_sessions":
		d.answer(m, o)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/cluster"
	"github.com/wschat/xmppws/cluster/natstest"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

func TestClusterNeedsASharedStore(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\nnode = \"a\"\n", "shares"},
		{"[storage]\nbackend = \"mongodb\"\n[modules.mod_mam]\nbackend = \"embedded\"\n[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\nnode = \"a\"\n", "shares"},
		{"[storage]\nbackend = \"mongodb\"\n[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\nnode = \"a.b\"\n", "cluster.node"},
		{"[storage]\nbackend = \"mongodb\"\n[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\nnode = \"a\"\nheartbeat = \"1s\"\nnode_ttl = \"1s\"\n", "node_ttl"},
	} {
		cfg := defaultConfig()
		err := decodeConfig(tc.toml, &cfg)
		if err == nil {
			err = cfg.validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error about %s", tc.toml, err, tc.want)
		}
	}
	// One node, no NATS: the embedded store is fine, and the hostname names
	// a cluster node when node is empty.
	cfg := defaultConfig()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if got := nodeName("host.example.org"); got != "host-example-org" || !validNodeName(got) {
		t.Errorf("nodeName = %q", got)
	}
}

// recordOwners makes this process's nodes report their acting spans to
// the no-two-owners checker for the rest of the test.
func recordOwners(t *testing.T) *natstest.OwnerLog {
	owners := &natstest.OwnerLog{}
	spanHook = func(rm, node string) actingSpan { return owners.Start(rm, node) }
	t.Cleanup(func() { spanHook = nil })
	return owners
}

// testNode is one node of an in-process cluster.
type testNode struct {
	name string
	cfg  Config
	app  *app
}

func (n *testNode) url() string { return "ws://" + n.app.Addr() + n.cfg.WebSocket.Path }

// startCluster runs len(names) nodes on one MongoDB database (embedded
// FerretDB unless MONGODB_URI is set) and one embedded NATS server, each
// node with its own connections, and waits until every node sees all.
func startCluster(t *testing.T, extraTOML string, names ...string) []*testNode {
	t.Helper()
	ns := natstest.Start(t)
	uri := mongotest.URI(t)
	base := mongoConfig(t, uri)
	var nodes []*testNode
	for _, name := range names {
		nodes = append(nodes, startNode(t, ns.URL(), uri, base.Storage.MongoDB.Database, extraTOML, name))
	}
	waitLive(t, nodes, names)
	for _, u := range []string{"alice", "bob", "kate", "mike"} {
		if _, e, c := userCmd(t, nodes[0].cfg, "pw\n", "add", u+"@localhost"); c != 0 {
			t.Fatalf("add %s: %s", u, e)
		}
	}
	return nodes
}

// startNode starts one node of the cluster on NATS natsURL and the
// MongoDB database db.
func startNode(t *testing.T, natsURL, uri, db, extraTOML, name string) *testNode {
	t.Helper()
	cfg := mongoConfig(t, uri)
	cfg.Storage.MongoDB.Database = db
	cfg.Cluster = ClusterConfig{NATSURL: natsURL, Node: name, Heartbeat: duration{100 * time.Millisecond}, NodeTTL: duration{time.Second}}
	if err := decodeConfig(extraTOML, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, cfg: cfg, app: a}
	t.Cleanup(func() { n.stop() })
	return n
}

// waitLive waits until every node's live set is names.
func waitLive(t *testing.T, nodes []*testNode, names []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		for !slices.Equal(n.app.cluster.c.Live(), names) {
			if ctx.Err() != nil {
				t.Fatalf("node %s sees %v, want %v", n.name, n.app.cluster.c.Live(), names)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (n *testNode) stop() {
	if n.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.app.Shutdown(ctx)
	n.app = nil
}

// seenEverywhere waits until every node's directory lists full.
func seenEverywhere(ctx context.Context, t *testing.T, nodes []*testNode, full string) {
	t.Helper()
	j := xmpp.MustParseJID(full)
	for _, n := range nodes {
		for !n.app.ws.Router().Online(j) && !n.app.cluster.dir.Has(j) {
			if ctx.Err() != nil {
				t.Fatalf("node %s never saw %s", n.name, full)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func clusterLogin(ctx context.Context, t *testing.T, nodes []*testNode, n *testNode, full string) *client.Client {
	t.Helper()
	c, err := client.Login(ctx, n.url(), xmpp.MustParseJID(full), "pw")
	if err != nil {
		t.Fatalf("%s on %s: %v", full, n.name, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	seenEverywhere(ctx, t, nodes, full)
	return c
}

// post sends groupchat with id to rm and returns what answers it on c:
// the room's echo, or the error.
func post(ctx context.Context, t *testing.T, c *client.Client, rm, id string) *etree.Element {
	t.Helper()
	m := client.Message(rm, "groupchat", id)
	m.CreateAttr("id", id)
	c.Send(ctx, m)
	el, err := c.Expect(ctx, func(el *etree.Element) bool { return el.SelectAttrValue("id", "") == id })
	if err != nil {
		t.Fatalf("no answer to %s in %s: %v", id, rm, err)
	}
	return el
}

// postUntilAccepted posts tag0, tag1, … until the room takes one (a room
// that moves, or whose node died, refuses with "try again" until it is
// back) and returns that one's id.
func postUntilAccepted(ctx context.Context, t *testing.T, c *client.Client, rm, tag string) string {
	t.Helper()
	for i := 0; ; i++ {
		id := fmt.Sprint(tag, i)
		if client.ErrorOf(post(ctx, t, c, rm, id)) == nil {
			return id
		}
		time.Sleep(20 * time.Millisecond) // retry pacing, as a client would
	}
}

func isGroupchat(body string) func(*etree.Element) bool {
	return func(el *etree.Element) bool {
		b := el.SelectElement("body")
		return el.Tag == "message" && el.SelectAttrValue("type", "") == "groupchat" && b != nil && b.Text() == body
	}
}

// roomsOwnedBy finds one room name per node that the placement gives it.
func roomsOwnedBy(nodes []*testNode) map[string]string {
	out := map[string]string{}
	c := nodes[0].app.cluster.c
	for i := 0; len(out) < len(nodes) && i < 1000; i++ {
		rm := fmt.Sprintf("room%d@muclight.localhost", i)
		if o := c.Owner(xmpp.MustParseJID(rm)); out[o] == "" {
			out[o] = rm
		}
	}
	return out
}

// TestClusterThreeNodes: occupants spread over three nodes get groupchat,
// 1:1 messages, affiliation notifications and history with the semantics
// of one node, for rooms owned by each node; the newest session of a
// resource wins across nodes; no room ever has two acting owners.
func TestClusterThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	owners := recordOwners(t)
	// The flood limiter holds about nothing but its burst of 3 events
	// (per room, 0.01 per second), and a user may be in 4 rooms.
	nodes := startCluster(t, "[modules.mod_muc_light]\nrooms_per_user = 4\n[modules.mod_muc_limits]\nmuc_event_rate = 0.01\nmuc_burst_factor = 300.0\nexempt_affiliations = [\"owner\"]\n", "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice := clusterLogin(ctx, t, nodes, nodes[0], "alice@localhost/a")
	bob := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/b")
	kate := clusterLogin(ctx, t, nodes, nodes[2], "kate@localhost/k")
	mike := clusterLogin(ctx, t, nodes, nodes[0], "mike@localhost/m")
	all := []*client.Client{alice, bob, kate}

	for owner, rm := range roomsOwnedBy(nodes) {
		t.Run("room owned by "+owner, func(t *testing.T) {
			if _, err := alice.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSCreate,
				"<occupants><user affiliation='member'>bob@localhost</user><user affiliation='member'>kate@localhost</user></occupants>"))); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*client.Client{bob, kate} { // the creation notices
				if _, err := c.Expect(ctx, func(el *etree.Element) bool {
					return el.Tag == "message" && el.SelectAttrValue("from", "") == rm && xmpp.Child(el, "x", rooms.NSAffiliations) != nil
				}); err != nil {
					t.Fatalf("%s: no affiliation notice: %v", c.JID(), err)
				}
			}
			// Every occupant, on every node, sees the messages in one
			// order, with the same stanza-ids.
			var ids [3][]string
			for i := range 10 { // alice is exempt from the limiter, as owner
				alice.Send(ctx, client.Message(rm, "groupchat", fmt.Sprint(owner, "-", i)))
				for j, c := range all {
					el, err := c.Expect(ctx, isGroupchat(fmt.Sprint(owner, "-", i)))
					if err != nil {
						t.Fatalf("%s missed message %d: %v", c.JID(), i, err)
					}
					ids[j] = append(ids[j], stanzaID(el))
				}
			}
			if !slices.Equal(ids[0], ids[1]) || !slices.Equal(ids[0], ids[2]) {
				t.Fatalf("stanza-ids differ between nodes: %v", ids)
			}
			// An affiliation change from node b reaches a and c.
			if _, err := alice.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSAffiliations, "<user affiliation='member'>mike@localhost</user>"))); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*client.Client{bob, kate} {
				if _, err := c.Expect(ctx, func(el *etree.Element) bool {
					x := xmpp.Child(el, "x", rooms.NSAffiliations)
					return x != nil && strings.Contains(xmpp.String(x), "mike@localhost")
				}); err != nil {
					t.Fatalf("%s: no notice of mike: %v", c.JID(), err)
				}
			}
			// History from a node that does not own the room.
			archived := archivedIDs(ctx, t, kate, rm)
			for _, id := range ids[0] {
				if !archived[id] {
					t.Fatalf("message %s is not in the archive read from node c (%d archived)", id, len(archived))
				}
			}
		})
	}

	t.Run("flood limiter cluster-wide", func(t *testing.T) {
		// One room, members on three nodes: the room's one bucket lets 3
		// events through whoever sends them, then refuses the fourth.
		rm := roomsOwnedBy(nodes)["b"]
		for i, c := range []*client.Client{bob, kate, bob, kate} {
			id := fmt.Sprint("flood", i)
			el := post(ctx, t, c, rm, id)
			refused := client.ErrorOf(el) != nil && client.ErrorOf(el).Condition == "policy-violation"
			if refused != (i == 3) {
				t.Fatalf("message %d from %s: %s, want refused only for the fourth", i, c.JID(), xmpp.String(el))
			}
		}
	})

	t.Run("rooms_per_user cluster-wide", func(t *testing.T) {
		// mike is in the three rooms above; he may create one more, on any
		// node, and no fifth.
		byOwner := map[string]string{}
		c := nodes[0].app.cluster.c
		for i := 0; len(byOwner) < 2 && i < 1000; i++ {
			rm := fmt.Sprintf("mike%d@muclight.localhost", i)
			if o := c.Owner(xmpp.MustParseJID(rm)); o != "a" && byOwner[o] == "" {
				byOwner[o] = rm
			}
		}
		var rms []string
		for _, rm := range byOwner {
			rms = append(rms, rm)
		}
		if _, err := mike.IQ(ctx, client.IQ("set", rms[0], mucQuery(rooms.NSCreate, ""))); err != nil {
			t.Fatalf("mike's fourth room: %v", err)
		}
		_, err := mike.IQ(ctx, client.IQ("set", rms[1], mucQuery(rooms.NSCreate, "")))
		var se *client.StanzaError
		if !errors.As(err, &se) {
			t.Fatalf("mike's fifth room, on another node: %v, want refused", err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		text := scrape(t, nodes[1].app)
		for _, m := range []string{"xmppws_cluster_inbound_pending ", "xmppws_cluster_inbound_dropped_total 0"} {
			if !strings.Contains(text, m) {
				t.Errorf("/metrics lacks %q", m)
			}
		}
	})

	t.Run("chat across nodes", func(t *testing.T) {
		alice.Send(ctx, client.Message("kate@localhost/k", "chat", "hello kate"))
		if _, err := kate.Expect(ctx, func(el *etree.Element) bool {
			b := el.SelectElement("body")
			return el.Tag == "message" && b != nil && b.Text() == "hello kate" && el.SelectAttrValue("from", "") == "alice@localhost/a"
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("resource conflict across nodes", func(t *testing.T) {
		newer, err := client.Login(ctx, nodes[2].url(), xmpp.MustParseJID("bob@localhost/b"), "pw")
		if err != nil {
			t.Fatal(err)
		}
		defer newer.CloseNow()
		_, err = bob.Expect(ctx, func(*etree.Element) bool { return false })
		var se *client.StreamError
		if !errors.As(err, &se) || se.Condition != "conflict" {
			t.Fatalf("bob's older session on b ended with %v, want conflict", err)
		}
	})

	for _, n := range nodes {
		n.stop()
	}
	owners.Check(t)
	if owners.Spans() < 4 {
		t.Fatalf("%d acting spans recorded, want one per room at least", owners.Spans())
	}
}

// TestClusterNodeStops: a node leaves (a graceful stop) while a room it
// owns streams messages; the rooms move to the others, every message a
// client got is archived, and no room has two acting owners.
func TestClusterNodeStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	owners := recordOwners(t)
	nodes := startCluster(t, "", "a", "b", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rm := roomsOwnedBy(nodes)["c"]
	alice := clusterLogin(ctx, t, nodes, nodes[0], "alice@localhost/a")
	bob := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/b")
	if _, err := alice.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))); err != nil {
		t.Fatal(err)
	}
	rec := collectIDs(ctx, 50, bob)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			m := client.Message(rm, "groupchat", fmt.Sprint("m", i))
			m.CreateAttr("id", fmt.Sprint("m", i))
			alice.Send(ctx, m)
		}
	}
	send(0, 50)
	select {
	case <-rec.enough:
	case <-ctx.Done():
		t.Fatal("the first 50 messages did not arrive before the stop")
	}
	go send(50, 100) // in flight while c stops
	nodes[2].stop()
	// The room works again from the remaining nodes: a message gets
	// through (a refusal while the room moves is answered, and retried).
	postUntilAccepted(ctx, t, alice, rm, "after")
	if o := nodes[0].app.cluster.c.Owner(xmpp.MustParseJID(rm)); o == "c" {
		t.Fatal("node c still owns the room after it stopped")
	}
	archived := archivedIDs(ctx, t, alice, rm)
	bob.CloseNow()
	if lost := missingFrom(rec.done(), archived); lost > 0 {
		t.Errorf("%d messages reached bob but are not in the archive", lost)
	}
	for _, n := range nodes {
		n.stop()
	}
	owners.Check(t)
}

// TestClusterNodeJoins: a third node joins while a room it will prefer is
// busy on another; the room moves to it (settled, its lease handed over),
// messages keep flowing in one order with increasing archive ids, and no
// room has two acting owners.
func TestClusterNodeJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	owners := recordOwners(t)
	ns := natstest.Start(t)
	uri := mongotest.URI(t)
	db := mongoConfig(t, uri).Storage.MongoDB.Database
	nodes := []*testNode{startNode(t, ns.URL(), uri, db, "", "a"), startNode(t, ns.URL(), uri, db, "", "b")}
	waitLive(t, nodes, []string{"a", "b"})
	for _, u := range []string{"alice", "bob"} {
		if _, e, c := userCmd(t, nodes[0].cfg, "pw\n", "add", u+"@localhost"); c != 0 {
			t.Fatalf("add %s: %s", u, e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A room that c will own once it is there.
	rm := ""
	for i := 0; rm == ""; i++ {
		if r := fmt.Sprintf("join%d@muclight.localhost", i); cluster.OwnerOf(xmpp.MustParseJID(r), []string{"a", "b", "c"}) == "c" {
			rm = r
		}
	}
	alice := clusterLogin(ctx, t, nodes, nodes[0], "alice@localhost/a")
	bob := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/b")
	if _, err := alice.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))); err != nil {
		t.Fatal(err)
	}
	var ids []string
	exchange := func(tag string) {
		t.Helper()
		id := postUntilAccepted(ctx, t, alice, rm, tag)
		got, err := bob.Expect(ctx, isGroupchat(id))
		if err != nil {
			t.Fatalf("bob missed %s: %v", id, err)
		}
		ids = append(ids, stanzaID(got))
	}
	for range 5 {
		exchange("before")
	}
	nodes = append(nodes, startNode(t, ns.URL(), uri, db, "", "c"))
	waitLive(t, nodes, []string{"a", "b", "c"})
	// The old holder lets go within a rebalance; the next message starts
	// the room on c.
	for i := 0; ; i++ {
		exchange(fmt.Sprint("after", i, "-"))
		h, err := nodes[0].app.cluster.c.Holder(ctx, xmpp.MustParseJID(rm))
		if err != nil {
			t.Fatal(err)
		}
		if h == "c" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the room is still held by %s after c joined", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 5 {
		exchange("on-c")
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("archive ids went backwards when the room moved: %v", ids)
	}
	archived := archivedIDs(ctx, t, bob, rm)
	for _, id := range ids {
		if !archived[id] {
			t.Fatalf("message %s is not in the archive", id)
		}
	}
	for _, n := range nodes {
		n.stop()
	}
	owners.Check(t)
	if owners.Spans() < 2 {
		t.Fatalf("%d acting spans: the room never moved", owners.Spans())
	}
}

package directory_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/cluster/directory"
	"github.com/wschat/xmppws/cluster/natstest"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is one endpoint of the cluster under test.
type node struct {
	name string
	url  string
	srv  *ws.Server
	dir  *directory.Directory
	nc   *nats.Conn
}

// local joins the router and the endpoint into the directory's Local.
type local struct {
	*ws.Router
	srv *ws.Server
}

func (l local) CloseLocalUser(u xmpp.JID) { l.srv.CloseLocalUser(u) }

func (l local) Sessions(u xmpp.JID) []ws.SessionInfo { return l.srv.Sessions(u) }

func (l local) CloseSession(full xmpp.JID) bool { return l.srv.CloseSession(full) }

// cluster starts an embedded NATS server with JetStream and the named
// endpoints on one account store, each with its directory.
func cluster(t *testing.T, names ...string) []*node {
	t.Helper()
	ns := natstest.Start(t)
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		rec, _ := account.New(xmpp.MustParseJID(u+"@localhost"), "pw")
		if err := st.CreateAccount(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	live := func() []string { return names }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out []*node
	for _, name := range names {
		cfg := ws.Defaults()
		cfg.Hosts = []string{"localhost"}
		srv := ws.New(cfg, st, ws.Options{Logger: log})
		nc := ns.Connect(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := directory.New(ctx, nc, name, live, local{srv.Router(), srv}, log)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		srv.Router().SetRemote(d)
		mux := http.NewServeMux()
		mux.Handle("/xmpp-websocket", srv)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: mux}
		go hs.Serve(ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			hs.Close()
			d.Close()
			nc.Close()
		})
		out = append(out, &node{name: name, url: "ws://" + ln.Addr().String() + "/xmpp-websocket", srv: srv, dir: d, nc: nc})
	}
	return out
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func login(t *testing.T, n *node, full string) *client.Client {
	t.Helper()
	c, err := client.Login(tctx(t), n.url, xmpp.MustParseJID(full), "pw")
	if err != nil {
		t.Fatalf("login %s at %s: %v", full, n.name, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// seen waits until every node's table lists full, so that a test does not
// race the bucket's watch.
func seen(t *testing.T, nodes []*node, full string) {
	t.Helper()
	j := xmpp.MustParseJID(full)
	for _, n := range nodes {
		for !n.dir.Has(j) && !n.srv.Router().Online(j) {
			select {
			case <-tctx(t).Done():
				t.Fatalf("node %s never saw %s", n.name, full)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func chat(to, body string) *etree.Element { return client.Message(to, "chat", body) }

// body waits for the next message and checks its body and 'to'.
func body(t *testing.T, c *client.Client, who, want, to string) {
	t.Helper()
	el, err := c.Expect(tctx(t), func(e *etree.Element) bool { return e.Tag == "message" })
	if err != nil {
		t.Fatalf("%s: no message: %v", who, err)
	}
	b := xmpp.Child(el, "body", xmpp.NSClient)
	if b == nil || b.Text() != want || el.SelectAttrValue("to", "") != to {
		t.Fatalf("%s got %s, want body %q to %s", who, xmpp.String(el), want, to)
	}
}

func TestOneToOneAcrossNodes(t *testing.T) {
	nodes := cluster(t, "a", "b", "c")
	alice := login(t, nodes[0], "alice@localhost/desk")
	phone := login(t, nodes[1], "bob@localhost/phone")
	laptop := login(t, nodes[2], "bob@localhost/laptop")
	seen(t, nodes, "bob@localhost/phone")
	seen(t, nodes, "bob@localhost/laptop")

	// To the bare JID: each of bob's sessions once, on both other nodes.
	alice.Send(tctx(t), chat("bob@localhost", "to all of bob"))
	body(t, phone, "bob/phone", "to all of bob", "bob@localhost")
	body(t, laptop, "bob/laptop", "to all of bob", "bob@localhost")

	// To one full JID: that session alone.
	alice.Send(tctx(t), chat("bob@localhost/laptop", "to the laptop"))
	body(t, laptop, "bob/laptop", "to the laptop", "bob@localhost/laptop")
	alice.Send(tctx(t), chat("bob@localhost/phone", "to the phone"))
	body(t, phone, "bob/phone", "to the phone", "bob@localhost/phone") // not the laptop message first

	// To a resource nobody has: the user's sessions, 'to' as written.
	alice.Send(tctx(t), chat("bob@localhost/gone", "to a gone resource"))
	body(t, phone, "bob/phone", "to a gone resource", "bob@localhost/gone")
	body(t, laptop, "bob/laptop", "to a gone resource", "bob@localhost/gone")

	// To someone offline on every node: the sender is told.
	m := chat("carol@localhost", "nobody home")
	m.CreateAttr("id", "m-carol")
	alice.Send(tctx(t), m)
	el, err := alice.Expect(tctx(t), func(e *etree.Element) bool { return e.SelectAttrValue("id", "") == "m-carol" })
	if err != nil || el.SelectAttrValue("type", "") != "error" || xmpp.Child(xmpp.Child(el, "error", xmpp.NSClient), string(xmpp.ServiceUnavailable), xmpp.NSStanzas) == nil {
		t.Fatalf("offline carol: %v %v", err, el)
	}
	// And the way back.
	phone.Send(tctx(t), chat("alice@localhost/desk", "reply"))
	body(t, alice, "alice", "reply", "alice@localhost/desk")
}

func TestResourceConflictAcrossNodes(t *testing.T) {
	nodes := cluster(t, "a", "b")
	old := login(t, nodes[0], "bob@localhost/phone")
	seen(t, nodes, "bob@localhost/phone")
	newer := login(t, nodes[1], "bob@localhost/phone")
	// The older session, on the other node, is closed with conflict.
	_, err := old.Expect(tctx(t), func(*etree.Element) bool { return false })
	var se *client.StreamError
	if !errors.As(err, &se) || se.Condition != "conflict" {
		t.Fatalf("the old session ended with %v, want a conflict stream error", err)
	}
	// The resource now leads to the new session only.
	alice := login(t, nodes[0], "alice@localhost/desk")
	for !nodes[0].dir.Has(xmpp.MustParseJID("bob@localhost/phone")) || nodes[0].srv.Router().Online(xmpp.MustParseJID("bob@localhost/phone")) {
		select {
		case <-tctx(t).Done():
			t.Fatal("node a never saw the resource move")
		case <-time.After(5 * time.Millisecond):
		}
	}
	alice.Send(tctx(t), chat("bob@localhost/phone", "to the new phone"))
	body(t, newer, "new bob/phone", "to the new phone", "bob@localhost/phone")
}

func TestCloseUserAcrossNodes(t *testing.T) {
	nodes := cluster(t, "a", "b", "c")
	phone := login(t, nodes[1], "bob@localhost/phone")
	laptop := login(t, nodes[2], "bob@localhost/laptop")
	seen(t, nodes, "bob@localhost/phone")
	seen(t, nodes, "bob@localhost/laptop")
	nodes[0].srv.CloseUser(xmpp.MustParseJID("bob@localhost")) // user del, run on node a
	for name, c := range map[string]*client.Client{"phone": phone, "laptop": laptop} {
		_, err := c.Expect(tctx(t), func(*etree.Element) bool { return false })
		var se *client.StreamError
		if !errors.As(err, &se) || se.Condition != "not-authorized" {
			t.Errorf("bob/%s ended with %v, want not-authorized", name, err)
		}
	}
}

// A session's end removes it from the table on every node, and a message
// to the user then bounces.
func TestUnboundLeavesTheTable(t *testing.T) {
	nodes := cluster(t, "a", "b")
	phone := login(t, nodes[1], "bob@localhost/phone")
	seen(t, nodes, "bob@localhost/phone")
	phone.Close(tctx(t))
	for nodes[0].dir.Has(xmpp.MustParseJID("bob@localhost")) {
		select {
		case <-tctx(t).Done():
			t.Fatal("node a still lists bob after his session ended")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ended waits for c's stream to end with the stream error cond.
func ended(t *testing.T, c *client.Client, cond string) {
	t.Helper()
	_, err := c.Expect(tctx(t), func(*etree.Element) bool { return false })
	var se *client.StreamError
	if !errors.As(err, &se) || se.Condition != cond {
		t.Fatalf("%s ended with %v, want %s", c.JID(), err, cond)
	}
}

// listed renders RemoteSessions' answer as "node jid" lines.
func listed(list []directory.NodeSession) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Node+" "+s.JID.String())
	}
	return out
}

// The admin API's questions: a node lists and closes a user's sessions on
// the other nodes (its own are not the directory's to answer); a node that
// has the user's sessions in the table but does not answer is unreachable,
// after the ask timeout, and the others' answers still count.
func TestAdminSessionsAcrossNodes(t *testing.T) {
	nodes := cluster(t, "a", "b", "c")
	login(t, nodes[0], "bob@localhost/desk")
	phone := login(t, nodes[1], "bob@localhost/phone")
	login(t, nodes[2], "bob@localhost/laptop")
	tablet := login(t, nodes[2], "bob@localhost/tablet")
	for _, r := range []string{"desk", "phone", "laptop", "tablet"} {
		seen(t, nodes, "bob@localhost/"+r)
	}
	a, bob := nodes[0].dir, xmpp.MustParseJID("bob@localhost")
	list, unreachable := a.RemoteSessions(tctx(t), bob)
	if want := []string{"b bob@localhost/phone", "c bob@localhost/laptop", "c bob@localhost/tablet"}; !slices.Equal(listed(list), want) || unreachable != nil {
		t.Fatalf("listed %v, unreachable %v; want %v", listed(list), unreachable, want)
	}
	if list, _ := a.RemoteSessions(tctx(t), xmpp.MustParseJID("carol@localhost")); len(list) != 0 {
		t.Fatalf("carol has no session, listed %v", listed(list))
	}

	if n, unreachable := a.CloseRemote(tctx(t), xmpp.MustParseJID("bob@localhost/tablet")); n != 1 || unreachable != nil {
		t.Fatalf("closing bob/tablet: %d, unreachable %v", n, unreachable)
	}
	ended(t, tablet, "policy-violation")
	if n, _ := a.CloseRemote(tctx(t), xmpp.MustParseJID("bob@localhost/tablet")); n != 0 {
		t.Fatalf("closing bob/tablet again closed %d", n)
	}

	// Node c goes silent: its subject has a subscriber that never answers.
	nodes[2].dir.Close()
	asked := make(chan string, 4)
	sub, err := nodes[2].nc.Subscribe("xmppws.deliver.c", func(m *nats.Msg) { asked <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nodes[2].nc.Flush(); err != nil {
		t.Fatal(err)
	}
	directory.SetAskTimeout(a, 50*time.Millisecond)
	list, unreachable = a.RemoteSessions(tctx(t), bob)
	if want := []string{"b bob@localhost/phone"}; !slices.Equal(listed(list), want) || !slices.Equal(unreachable, []string{"c"}) {
		t.Fatalf("with c silent: listed %v, unreachable %v; want %v, unreachable [c]", listed(list), unreachable, want)
	}
	select {
	case <-asked:
	case <-tctx(t).Done():
		t.Fatal("node c was not asked")
	}
	if n, unreachable := a.CloseRemote(tctx(t), bob); n != 1 || !slices.Equal(unreachable, []string{"c"}) {
		t.Fatalf("closing bob with c silent: %d, unreachable %v", n, unreachable)
	}
	ended(t, phone, "policy-violation")
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

const nsSM = "urn:xmpp:sm:3"

// TestSMResumeKeepsRoom: a member of a MUC Light room who entered it in
// XEP-0045 form loses its socket and resumes. The room's messages sent
// meanwhile arrive on the resumed stream, once and in order, later ones keep
// coming, and the room never saw the member leave (the other occupant gets
// no unavailable presence).
func TestSMResumeKeepsRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := testConfig(t)
	a, cs := flowServer(t, ctx, cfg, 2)
	owner, member := cs[0], cs[1]
	room := "resumed@muclight.localhost"
	next := func(c *client.Client) *etree.Element {
		t.Helper()
		el, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	send := func(c *client.Client, el *etree.Element) {
		t.Helper()
		if err := c.Send(ctx, el); err != nil {
			t.Fatal(err)
		}
	}
	create := client.IQ("set", room, client.Query(rooms.NSCreate,
		"<occupants><user affiliation='member'>u01@localhost</user></occupants>"))
	create.CreateAttr("id", "create")
	send(owner, create)
	if _, err := owner.Expect(ctx, func(el *etree.Element) bool { return el.SelectAttrValue("id", "") == "create" }); err != nil {
		t.Fatal(err)
	}
	next(member) // the affiliation notification
	join := func(c *client.Client) {
		t.Helper()
		p := etree.NewElement("presence")
		p.CreateAttr("to", room+"/"+c.JID().Bare().String())
		p.AddChild(xmpp.Elem("x", rooms.NSMUC))
		send(c, p)
		if _, err := c.Expect(ctx, func(el *etree.Element) bool { return el.Tag == "message" }); err != nil {
			t.Fatalf("join: %v", err) // the subject: in
		}
	}
	join(owner)
	join(member)

	// The member enables resumption and counts stanzas from here.
	en := xmpp.Elem("enable", nsSM)
	en.CreateAttr("resume", "true")
	send(member, en)
	var h uint32
	previd := ""
	for previd == "" {
		if el := next(member); el.Tag == "enabled" {
			previd = el.SelectAttrValue("id", "")
		}
	}
	post := func(body string) {
		t.Helper()
		send(owner, client.Message(room, "groupchat", body))
		// The owner's own echo: the room has fanned it out.
		if _, err := owner.Expect(ctx, func(el *etree.Element) bool {
			return el.Tag == "message" && textOf(el) == body
		}); err != nil {
			t.Fatal(err)
		}
	}
	post("g1")
	for {
		el := next(member)
		if el.Tag == "message" {
			h++
			if textOf(el) != "g1" {
				t.Fatalf("member got %s, want g1", xmpp.String(el))
			}
			break
		}
	}
	member.CloseNow()
	for i := 2; i <= 4; i++ {
		post(fmt.Sprint("g", i))
	}

	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", "u01", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	res := xmpp.Elem("resume", nsSM)
	res.CreateAttr("previd", previd)
	res.CreateAttr("h", strconv.FormatUint(uint64(h), 10))
	send(c, res)
	if el := next(c); el.Tag != "resumed" {
		t.Fatalf("resume: %s", xmpp.String(el))
	}
	post("g5")
	want := []string{"g2", "g3", "g4", "g5"}
	for len(want) > 0 {
		el := next(c)
		if el.Tag != "message" {
			continue // <r/>
		}
		if textOf(el) != want[0] {
			t.Fatalf("resumed member got %s, want %s", xmpp.String(el), want[0])
		}
		if from := el.SelectAttrValue("from", ""); from != room+"/u00@localhost" {
			t.Fatalf("from %q, want the owner's occupant", from)
		}
		want = want[1:]
	}
	// The owner saw no leave of the member's occupant.
	ping := client.IQ("get", "localhost", xmpp.Elem("ping", xmpp.NSPing))
	ping.CreateAttr("id", "last")
	send(owner, ping)
	for {
		el := next(owner)
		if el.SelectAttrValue("id", "") == "last" {
			break
		}
		if el.Tag == "presence" && el.SelectAttrValue("type", "") == "unavailable" {
			t.Fatalf("the room saw a leave: %s", xmpp.String(el))
		}
	}
}

func textOf(el *etree.Element) string {
	if b := xmpp.Child(el, "body", xmpp.NSClient); b != nil {
		return b.Text()
	}
	return ""
}

// TestSMClusterDetached: a detached session stays in the cluster's session
// directory, so a 1:1 message from another node still reaches it; only its
// own node can resume it, another node answers item-not-found.
func TestSMClusterDetached(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two nodes")
	}
	nodes := startCluster(t, "", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := clusterLogin(ctx, t, nodes, nodes[0], "alice@localhost/phone")
	bob := clusterLogin(ctx, t, nodes, nodes[1], "bob@localhost/b")
	en := xmpp.Elem("enable", nsSM)
	en.CreateAttr("resume", "true")
	if err := alice.Send(ctx, en); err != nil {
		t.Fatal(err)
	}
	enabled, err := alice.Expect(ctx, func(el *etree.Element) bool { return el.Tag == "enabled" })
	if err != nil {
		t.Fatal(err)
	}
	previd := enabled.SelectAttrValue("id", "")
	alice.CloseNow()
	// Wait until node a has detached the session (the socket's end is
	// noticed on its reader).
	for !strings.Contains(scrape(t, nodes[0].app), "\nxmpp_sm_detached_sessions 1\n") {
		if ctx.Err() != nil {
			t.Fatal("node a never detached alice's session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := client.Message("alice@localhost/phone", "chat", "across nodes")
	m.CreateAttr("id", "x1")
	if err := bob.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	// bob's ping answered with nothing before it: no bounce.
	if _, err := bob.IQ(ctx, client.IQ("get", "localhost", xmpp.Elem("ping", xmpp.NSPing))); err != nil {
		t.Fatal(err)
	}
	resume := func(n *testNode) (*client.Client, *etree.Element) {
		t.Helper()
		c, err := client.Dial(ctx, n.url(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if _, err := c.Open(ctx, "localhost"); err != nil {
			t.Fatal(err)
		}
		if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", "alice", "pw"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Open(ctx, "localhost"); err != nil {
			t.Fatal(err)
		}
		r := xmpp.Elem("resume", nsSM)
		r.CreateAttr("previd", previd)
		r.CreateAttr("h", "0")
		c.Send(ctx, r)
		el, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c, el
	}
	if _, el := resume(nodes[1]); el.Tag != "failed" || xmpp.Child(el, "item-not-found", xmpp.NSStanzas) == nil {
		t.Fatalf("resume on the other node: %s, want item-not-found", xmpp.String(el))
	}
	c, el := resume(nodes[0])
	if el.Tag != "resumed" {
		t.Fatalf("resume on alice's node: %s", xmpp.String(el))
	}
	got, err := c.Expect(ctx, func(el *etree.Element) bool { return el.Tag == "message" })
	if err != nil {
		t.Fatal(err)
	}
	if textOf(got) != "across nodes" || got.SelectAttrValue("from", "") != "bob@localhost/b" {
		t.Fatalf("resumed alice got %s", xmpp.String(got))
	}
}

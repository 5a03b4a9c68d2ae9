package main

import (
	"context"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// A XEP-0045 occupancy ends with its session: the whole server wires the
// room hub to see every session's end. Observed through max_occupants,
// which bounds the sessions present: a room of two users, one of whose
// sessions entered and disconnected, still lets both users' new sessions
// in.
func TestOccupancyEndsWithSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.Modules.MucLight.MaxOccupants = 2
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	a, cs := flowServer(t, ctx, cfg, 2)
	owner, member := cs[0], cs[1]
	room := "present@muclight.localhost"
	next := func(c *client.Client) *etree.Element {
		t.Helper()
		el, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	create := client.IQ("set", room, client.Query(rooms.NSCreate,
		"<occupants><user affiliation='member'>u01@localhost</user></occupants>"))
	create.CreateAttr("id", "create")
	owner.Send(ctx, create)
	next(owner) // the notification
	if el := next(owner); el.SelectAttrValue("type", "") != "result" {
		t.Fatalf("create: %s", xmpp.String(el))
	}
	next(member)
	// join enters c and reports whether it got in (its own presence, 110,
	// after the others' and before the subject).
	join := func(c *client.Client) bool {
		t.Helper()
		p := etree.NewElement("presence")
		p.CreateAttr("to", room+"/"+c.JID().Bare().String())
		p.AddChild(xmpp.Elem("x", rooms.NSMUC))
		c.Send(ctx, p)
		for {
			el := next(c)
			if el.SelectAttrValue("type", "") == "error" {
				if se := client.ErrorOf(el); se == nil || se.Condition != "resource-constraint" {
					t.Fatalf("join refused: %s", xmpp.String(el))
				}
				return false
			}
			if el.Tag == "message" {
				return true // the subject: in
			}
		}
	}
	if !join(member) {
		t.Fatal("the first session could not enter")
	}
	member.Close(ctx)
	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	again, err := client.Login(ctx, url, xmpp.MustParseJID("u01@localhost/again"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer again.CloseNow()
	if !join(again) {
		t.Fatal("the member's new session could not enter")
	}
	// The closed session's leave is on its way; until it lands the room
	// holds three sessions. A refused join changes nothing, so try until
	// the deadline.
	for !join(owner) {
		if ctx.Err() != nil {
			t.Fatal("the closed session still counts as present")
		}
	}
}

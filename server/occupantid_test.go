package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// An occupant id is keyed with the store's server secret, so a user keeps
// theirs in a room across a restart of the server.
func TestOccupantIDSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	a, cs := flowServer(t, ctx, cfg, 1)
	room := "stable@muclight.localhost"
	post := func(c *client.Client, id string) string {
		t.Helper()
		m := client.Message(room, "groupchat", "hello")
		m.CreateAttr("id", id)
		c.Send(ctx, m)
		for {
			el, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if el.Tag == "message" && el.SelectAttrValue("id", "") == id {
				occ := xmpp.Child(el, "occupant-id", rooms.NSOccupantID)
				if occ == nil {
					t.Fatalf("no occupant-id: %s", xmpp.String(el))
				}
				return occ.SelectAttrValue("id", "")
			}
		}
	}
	create := client.IQ("set", room, client.Query(rooms.NSCreate, "<occupants/>"))
	create.CreateAttr("id", "create")
	cs[0].Send(ctx, create)
	before := post(cs[0], "before")
	cs[0].CloseNow()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	c, err := client.Login(ctx, "ws://"+a.Addr()+cfg.WebSocket.Path, xmpp.MustParseJID("u00@localhost/r2"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if after := post(c, "after"); after != before || before == "" {
		t.Errorf("occupant-id before the restart %q, after %q", before, after)
	}
}

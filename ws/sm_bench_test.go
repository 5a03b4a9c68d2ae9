package ws_test

import (
	"context"
	"testing"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// loginResumable logs full in with SCRAM and bind and enables stream
// management with resumption; it returns the client and the session's id.
func loginResumable(ctx context.Context, b *testing.B, url string, full xmpp.JID) (*client.Client, string) {
	b.Helper()
	c, err := client.Login(ctx, url, full, "pw-alice")
	if err != nil {
		b.Fatal(err)
	}
	en := xmpp.Elem("enable", "urn:xmpp:sm:3")
	en.CreateAttr("resume", "true")
	c.Send(ctx, en)
	enabled, err := c.Expect(ctx, func(el *etree.Element) bool { return el.Tag == "enabled" })
	if err != nil {
		b.Fatal(err)
	}
	return c, enabled.SelectAttrValue("id", "")
}

// BenchmarkResume is the cost of getting a dropped session back, per
// reconnect, client and server on this machine: "login" is a full SCRAM
// login with bind and <enable/> (what a client without resumption does,
// before it reloads rosters, rooms and history), "resume" is SCRAM and
// <resume/> of the detached session, which brings the missed stanzas with it.
// Round trips: login 6 (open, SCRAM ×2, open, bind, enable), resume 5
// (open, SCRAM ×2, open, resume). Both pay the same SCRAM key derivation;
// compare server CPU with -cpuprofile.
func BenchmarkResume(b *testing.B) {
	full := xmpp.MustParseJID("alice@localhost/phone")
	b.Run("login", func(b *testing.B) {
		_, url := benchServer(b, nil)
		ctx := context.Background()
		for b.Loop() {
			c, _ := loginResumable(ctx, b, url, full)
			c.CloseNow()
		}
	})
	b.Run("resume", func(b *testing.B) {
		srv, url := benchServer(b, nil)
		events := make(chan string, 16)
		ws.SetSMHook(srv, func(ev string) {
			if ev == "detached" {
				events <- ev
			}
		})
		ctx := context.Background()
		c, previd := loginResumable(ctx, b, url, full)
		var err error
		for b.Loop() {
			c.CloseNow()
			<-events
			if c, err = client.Dial(ctx, url, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Open(ctx, "localhost"); err != nil {
				b.Fatal(err)
			}
			if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", "alice", "pw-alice"); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Open(ctx, "localhost"); err != nil {
				b.Fatal(err)
			}
			r := xmpp.Elem("resume", "urn:xmpp:sm:3")
			r.CreateAttr("previd", previd)
			r.CreateAttr("h", "0")
			c.Send(ctx, r)
			el, err := c.Next(ctx)
			if err != nil || el.Tag != "resumed" {
				b.Fatalf("resume: %v %v", el, err)
			}
		}
		c.CloseNow()
	})
}

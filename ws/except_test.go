package ws_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// splitter is a service on split.localhost standing in for a room that
// serves two dialects: each message it is sent names, in its body, a
// recipient and the full JIDs to leave out ("to|ex1,ex2", whatever their epoch); it delivers the
// message there with DeliverExcept, or DeliverPacedExcept for an id that
// starts with "paced-", and reports what the call returned.
type splitter struct {
	router *ws.Router
	took   chan bool
}

func (s *splitter) HandleStanza(_ context.Context, st *xmpp.Stanza) {
	body := ""
	if b := xmpp.Child(st.El, "body", xmpp.NSClient); b != nil {
		body = b.Text()
	}
	to, exList, _ := strings.Cut(body, "|")
	var except []xmpp.SessionRef
	for _, x := range strings.Split(exList, ",") {
		if x != "" {
			except = append(except, xmpp.SessionRef{JID: xmpp.MustParseJID(x)})
		}
	}
	out := xmpp.NewOutbound(st.El)
	if strings.HasPrefix(st.ID, "paced-") {
		s.took <- s.router.DeliverPacedExcept(st.From, xmpp.MustParseJID(to), except, out)
	} else {
		s.took <- s.router.DeliverExcept(xmpp.MustParseJID(to), except, out)
	}
}

// TestDeliverExcept: a delivery reaches every session serving the address
// but those left out, keeps the address as given, and reports whether any
// session took it; the paced variant delivers the same.
func TestDeliverExcept(t *testing.T) {
	e := newEnv(t, nil)
	sp := &splitter{router: e.srv.Router(), took: make(chan bool, 1)}
	e.srv.Router().RegisterService("localhost", "split.localhost", "", sp)
	ctx := ctxT(t)
	alice := e.login("alice", "a")
	bob := map[string]*client.Client{}
	for _, r := range []string{"b1", "b2", "b3"} {
		bob[r] = e.login("bob", r)
	}
	for _, tc := range []struct {
		name   string
		to     string
		except string
		want   []string // bob's resources that get it
	}{
		{"one left out", "bob@localhost", "bob@localhost/b1", []string{"b2", "b3"}},
		{"two left out and a stranger", "bob@localhost", "bob@localhost/b1,alice@localhost/a,bob@localhost/b3", []string{"b2"}},
		{"a bare JID leaves out nobody", "bob@localhost", "bob@localhost", []string{"b1", "b2", "b3"}},
		{"nobody left out", "bob@localhost", "", []string{"b1", "b2", "b3"}},
		{"everyone left out", "bob@localhost", "bob@localhost/b3,bob@localhost/b1,bob@localhost/b2", nil},
		{"full JID", "bob@localhost/b2", "bob@localhost/b1", []string{"b2"}},
		{"full JID left out", "bob@localhost/b2", "bob@localhost/b2", nil},
		{"offline user", "carol@localhost", "", nil},
	} {
		for _, paced := range []bool{false, true} {
			name := tc.name
			id := fmt.Sprintf("plain-%d", epochProbes.Add(1))
			if paced {
				name += " paced"
				id = "paced-" + id
			}
			t.Run(name, func(t *testing.T) {
				m := client.Message("r@split.localhost", "groupchat", tc.to+"|"+tc.except)
				m.CreateAttr("id", id)
				if err := alice.Send(ctx, m); err != nil {
					t.Fatal(err)
				}
				var took bool
				select {
				case took = <-sp.took:
				case <-ctx.Done():
					t.Fatal("the service was never called")
				}
				if took != (len(tc.want) > 0) {
					t.Errorf("returned %v, want %v", took, len(tc.want) > 0)
				}
				// The marker goes out after the delivery, from the same
				// reader: it is queued behind it on every session of bob's.
				alice.Send(ctx, client.Message("bob@localhost", "chat", "marker"))
				for _, r := range []string{"b1", "b2", "b3"} {
					el, err := bob[r].Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					wanted := false
					for _, w := range tc.want {
						wanted = wanted || w == r
					}
					if wanted {
						if el.SelectAttrValue("id", "") != id || el.SelectAttrValue("to", "") != tc.to {
							t.Fatalf("%s got %s, want the delivery addressed to %s", r, xmpp.String(el), tc.to)
						}
						if el, err = bob[r].Next(ctx); err != nil {
							t.Fatal(err)
						}
					}
					if textOf(el, "body", xmpp.NSClient) != "marker" {
						t.Fatalf("%s got %s, want only the marker", r, xmpp.String(el))
					}
				}
			})
		}
	}
}

// TestDeliverNamesSessionsByEpoch: a session that took a replaced
// session's resource is not the replaced session: DeliverSession for the
// old epoch reaches nobody, and leaving the old epoch out of a delivery
// does not leave out its successor.
func TestDeliverNamesSessionsByEpoch(t *testing.T) {
	e := newEnv(t, nil)
	l := watchSessions(e)
	ctx := ctxT(t)
	old := e.login("bob", "phone")
	oldEpoch := l.epochOf(t, old)
	newer := e.login("bob", "phone")
	expectStreamError(t, old, "conflict")
	newEpoch := l.epochOf(t, newer)
	pc := e.login("bob", "pc")
	r := e.srv.Router()
	phone, bob := newer.JID(), xmpp.MustParseJID("bob@localhost")
	msg := func(id string) *xmpp.Outbound {
		m := client.Message("", "chat", id)
		m.CreateAttr("id", id)
		return xmpp.NewOutbound(m)
	}
	if r.DeliverSession(xmpp.SessionRef{JID: phone, Session: oldEpoch}, msg("to-old")) {
		t.Error("a delivery to the replaced session was taken")
	}
	if !r.DeliverSession(xmpp.SessionRef{JID: phone, Session: newEpoch}, msg("to-new")) {
		t.Error("a delivery to the new session was not taken")
	}
	r.DeliverExcept(bob, []xmpp.SessionRef{{JID: phone, Session: oldEpoch}}, msg("except-old"))
	r.DeliverExcept(bob, []xmpp.SessionRef{{JID: phone, Session: newEpoch}}, msg("except-new"))
	r.Deliver(bob, msg("marker"))
	for c, want := range map[*client.Client][]string{
		newer: {"to-new", "except-old", "marker"},
		pc:    {"except-old", "except-new", "marker"},
	} {
		for _, id := range want {
			el, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if el.SelectAttrValue("id", "") != id {
				t.Fatalf("%s got %s, want %s", c.JID(), xmpp.String(el), id)
			}
		}
	}
}

package rooms_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// A burst from one occupant: the first muc_event_rate × muc_burst_factor
// messages reach everyone, the rest bounce to the sender alone as
// wait/policy-violation with the body echoed; another room is unaffected.
// The hub's clock is frozen, so no token refills during the test.
func TestFloodLimiterOverWebSocket(t *testing.T) {
	frozen := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvFull(t, nil, nil, rooms.HubOptions{Limits: rooms.DefaultLimits(), Now: func() time.Time { return frozen }}, []string{"localhost"})
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := createRoom(t, "flood", alice, bob) // creation is not an event of the bucket
	quiet := createRoom(t, "quiet", kate, bob) // another room, another bucket
	const capacity = 3                         // 0.5 × 6
	for i := 0; i < capacity+4; i++ {
		m := client.Message(room, "groupchat", fmt.Sprintf("spam %d", i))
		m.CreateAttr("id", fmt.Sprintf("s%d", i))
		bob.Send(tctx(t), m)
	}
	for i := 0; i < capacity+4; i++ {
		el := bob.next()
		id := fmt.Sprintf("s%d", i)
		if el.SelectAttrValue("id", "") != id {
			t.Fatalf("bob: got %s, want id %s", xmpp.String(el), id)
		}
		if i < capacity {
			if el.SelectAttrValue("type", "") != "groupchat" {
				t.Fatalf("accepted message %d: %s", i, xmpp.String(el))
			}
			continue
		}
		expectError(t, el, "policy-violation")
		se := client.ErrorOf(el)
		if se.Type != "wait" || se.Text != "The room is currently overactive, please try again later" {
			t.Errorf("refusal %+v", se)
		}
		if b, _ := childText(el, "body"); b != fmt.Sprintf("spam %d", i) {
			t.Errorf("refusal does not echo the body: %s", xmpp.String(el))
		}
	}
	for i := 0; i < capacity; i++ {
		el := alice.next()
		if b, _ := childText(el, "body"); b != fmt.Sprintf("spam %d", i) {
			t.Fatalf("alice got %s", xmpp.String(el))
		}
	}
	alice.quiet()
	// The other room still has its full bucket.
	for i := 0; i < capacity; i++ {
		m := client.Message(quiet, "groupchat", "calm")
		m.CreateAttr("id", fmt.Sprintf("q%d", i))
		kate.Send(tctx(t), m)
		if el := kate.next(); el.SelectAttrValue("type", "") != "groupchat" {
			t.Fatalf("quiet room refused: %s", xmpp.String(el))
		}
		bob.next()
	}
	// A too-long body is refused with modify, before the (empty) bucket.
	long := client.Message(quiet, "groupchat", strings.Repeat("x", 6000))
	long.CreateAttr("id", "long")
	kate.Send(tctx(t), long)
	el := kate.next()
	expectError(t, el, "policy-violation")
	if se := client.ErrorOf(el); se.Type != "modify" {
		t.Errorf("too long: %+v", se)
	}
	bob.quiet()
}

// A reader's displayed markers do not spend the room's flood bucket: they
// are not fanned out, each is one small store write that the sender's
// ingress shaper already paces, and a reader refused for reading (with a
// "room is overactive" error) would be punished for keeping up. With the
// hub's clock frozen the bucket holds 3 events: after alice's message and
// five of bob's markers, bob can still speak.
func TestMarkersSpareTheFloodLimiter(t *testing.T) {
	frozen := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ho := rooms.HubOptions{Limits: rooms.DefaultLimits(), Now: func() time.Time { return frozen }, MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}}
	e := newEnvFull(t, nil, nil, ho, []string{"localhost"})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "reading", alice, bob)
	alice.send(room, "a1", "<body>hello</body>")
	hello := sidOf(fanned(t, "a1", alice, bob))
	for i := range 5 {
		bob.send(room, fmt.Sprint("d", i), "<displayed xmlns='urn:xmpp:chat-markers:0' id='"+hello+"'/>")
	}
	// Markers are stored silently; an unknown id is the first answer bob
	// gets, so none of the five was refused before it.
	bob.send(room, "d-bad", "<displayed xmlns='urn:xmpp:chat-markers:0' id='0000000000000000ffff'/>")
	refused(t, bob, "d-bad", "item-not-found")
	bob.send(room, "b1", "<body>read it</body>")
	fanned(t, "b1", bob, alice)
}

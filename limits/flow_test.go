package limits

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

func TestCreateLimiterBucketPerUser(t *testing.T) {
	if c := NewCreateLimiter(0, 5); c != nil || !c.Take(xmpp.MustParseJID("a@x"), t0) || c.Size() != 0 {
		t.Fatal("a zero create_rate must allow everything and track no one")
	}
	c := NewCreateLimiter(60, 2) // one a second, two at once
	alice, bob := xmpp.MustParseJID("alice@x"), xmpp.MustParseJID("bob@x")
	if !c.Take(alice, t0) || !c.Take(alice, t0) {
		t.Fatal("burst of 2 refused")
	}
	if c.Take(alice, t0) {
		t.Fatal("a third creation passed the burst")
	}
	if !c.Take(bob, t0) {
		t.Fatal("alice's bucket was spent on bob")
	}
	if c.Take(alice, t0.Add(time.Second-time.Millisecond)) {
		t.Fatal("passed before one refill interval")
	}
	if !c.Take(alice, t0.Add(time.Second)) {
		t.Fatal("refused after one refill interval")
	}
	if n := c.Size(); n != 2 {
		t.Fatalf("%d users tracked, want 2", n)
	}
}

func TestCreateLimiterIsBounded(t *testing.T) {
	c := NewCreateLimiter(60, 1)
	for i := range maxCreateBuckets + 10 {
		c.Take(xmpp.JID{Local: fmt.Sprintf("u%d", i), Domain: "x"}, t0)
	}
	if n := c.Size(); n > maxCreateBuckets {
		t.Fatalf("%d buckets kept, bound %d", n, maxCreateBuckets)
	}
}

// TestCreateLimiterEvictsIdleFirst checks that at the bound the buckets
// that have refilled go, and a user still limited keeps an empty bucket
// instead of getting a fresh burst.
func TestCreateLimiterEvictsIdleFirst(t *testing.T) {
	c := NewCreateLimiter(60, 1) // one a second, capacity one
	for i := range maxCreateBuckets - 1 {
		c.Take(xmpp.JID{Local: fmt.Sprintf("u%d", i), Domain: "x"}, t0)
	}
	alice, bob := xmpp.MustParseJID("alice@x"), xmpp.MustParseJID("bob@x")
	later := t0.Add(2 * time.Second) // every u has refilled; alice spends hers now
	if !c.Take(alice, later) {
		t.Fatal("alice's first creation refused")
	}
	if n := c.Size(); n != maxCreateBuckets {
		t.Fatalf("%d buckets, want the bound %d", n, maxCreateBuckets)
	}
	now := later.Add(time.Second / 2) // alice has half a token back
	if !c.Take(bob, now) {
		t.Fatal("bob's first creation refused")
	}
	if n := c.Size(); n != 2 {
		t.Fatalf("%d buckets after eviction, want alice's and bob's", n)
	}
	if c.Take(alice, now) {
		t.Fatal("eviction gave alice, still limited, a fresh burst")
	}
}

// TestCreateLimiterEvictsOneWhenNoneIdle checks that when no bucket has
// refilled, the bound holds by dropping one.
func TestCreateLimiterEvictsOneWhenNoneIdle(t *testing.T) {
	c := NewCreateLimiter(60, 1)
	for i := range maxCreateBuckets {
		c.Take(xmpp.JID{Local: fmt.Sprintf("u%d", i), Domain: "x"}, t0)
	}
	if !c.Take(xmpp.MustParseJID("bob@x"), t0) {
		t.Fatal("a new user's first creation refused")
	}
	if n := c.Size(); n != maxCreateBuckets {
		t.Fatalf("%d buckets, want the bound %d", n, maxCreateBuckets)
	}
}

var bg = context.Background()

func TestQueryLimiterRoomCap(t *testing.T) {
	q := NewQueryLimiter(10, 2)
	room, other := xmpp.MustParseJID("r@m"), xmpp.MustParseJID("o@m")
	r1, _, err := q.Acquire(bg, bg, room, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Acquire(bg, bg, room, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, scope, err := q.Acquire(bg, bg, room, time.Hour); err != ErrRoomQueries || scope != "room" {
		t.Fatalf("third query of a room: %v (scope %q), want ErrRoomQueries (room)", err, scope)
	}
	if _, _, err := q.Acquire(bg, bg, other, time.Hour); err != nil {
		t.Fatalf("another room's query: %v", err)
	}
	r1()
	r1() // harmless: it must not free a second place
	if _, _, err := q.Acquire(bg, bg, room, time.Hour); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, _, err := q.Acquire(bg, bg, room, time.Hour); err != ErrRoomQueries {
		t.Fatalf("a double release freed two places: %v", err)
	}
}

// TestQueryLimiterReleaseTwiceKeepsServerSlots checks that a second
// release gives back no server slot that another query holds.
func TestQueryLimiterReleaseTwiceKeepsServerSlots(t *testing.T) {
	q := NewQueryLimiter(2, 1)
	a, b, c := xmpp.MustParseJID("a@m"), xmpp.MustParseJID("b@m"), xmpp.MustParseJID("c@m")
	ra, _, err := q.Acquire(bg, bg, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Acquire(bg, bg, b, 0); err != nil {
		t.Fatal(err)
	}
	ra()
	ra()
	if _, _, err := q.Acquire(bg, bg, c, 0); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, scope, err := q.Acquire(bg, bg, a, 0); err != ErrServerQueries || scope != "server" {
		t.Fatalf("a double release freed b's slot: %v (scope %q)", err, scope)
	}
}

func TestQueryLimiterServerCap(t *testing.T) {
	q := NewQueryLimiter(1, 1)
	a, b := xmpp.MustParseJID("a@m"), xmpp.MustParseJID("b@m")
	release, _, err := q.Acquire(bg, bg, a, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, scope, err := q.Acquire(bg, bg, b, 0); err != ErrServerQueries || scope != "server" {
		t.Fatalf("over the server's cap: %v (scope %q), want ErrServerQueries (server)", err, scope)
	}
	release()
	// The refusal gave b's room place back (its cap is 1).
	if _, _, err := q.Acquire(bg, bg, b, 0); err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

// TestQueryLimiterWaitEnds checks that a wait for a server slot ends with
// the caller's context (a refusal without a scope) and with the service's
// life (ErrShutdown), and that either gives the room's place back.
func TestQueryLimiterWaitEnds(t *testing.T) {
	gone, cancel := context.WithCancel(bg)
	cancel()
	for _, tc := range []struct {
		name      string
		ctx, life context.Context
		want      error
	}{
		{"caller gone", gone, bg, ErrServerQueries},
		{"shutdown", bg, gone, ErrShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueryLimiter(1, 1)
			a, b := xmpp.MustParseJID("a@m"), xmpp.MustParseJID("b@m")
			release, _, err := q.Acquire(bg, bg, a, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, scope, err := q.Acquire(tc.ctx, tc.life, b, time.Hour); err != tc.want || scope != "" {
				t.Fatalf("%v (scope %q), want %v with no scope", err, scope, tc.want)
			}
			release()
			if _, _, err := q.Acquire(bg, bg, b, 0); err != nil {
				t.Fatalf("the ended wait kept b's room place: %v", err)
			}
		})
	}
}

func TestQueryLimiterDefaults(t *testing.T) {
	q := NewQueryLimiter(0, 0)
	room := xmpp.MustParseJID("r@m")
	for i := range DefaultMaxQueriesPerRoom {
		if _, _, err := q.Acquire(bg, bg, room, 0); err != nil {
			t.Fatalf("query %d of a room: %v", i, err)
		}
	}
	if _, _, err := q.Acquire(bg, bg, room, 0); err != ErrRoomQueries {
		t.Fatalf("past the default room cap: %v", err)
	}
	for i := DefaultMaxQueriesPerRoom; i < DefaultMaxQueries; i++ {
		if _, _, err := q.Acquire(bg, bg, xmpp.JID{Local: fmt.Sprintf("r%d", i), Domain: "m"}, 0); err != nil {
			t.Fatalf("query %d of the server: %v", i, err)
		}
	}
	if _, _, err := q.Acquire(bg, bg, xmpp.MustParseJID("last@m"), 0); err != ErrServerQueries {
		t.Fatalf("past the default server cap: %v", err)
	}
}

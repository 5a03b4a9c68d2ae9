package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/cluster/natstest"
	"github.com/wschat/xmppws/xmpp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Short enough for tests, long enough for -race on a loaded two-core
// machine: a node acts for 800 ms after each renewal, renewed every 100 ms.
const (
	testHeartbeat = 100 * time.Millisecond
	testNodeTTL   = time.Second
)

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// member is a joined node and the live sets its OnChange reported.
type member struct {
	*Cluster
	changes chan []string
}

func join(t *testing.T, s *natstest.Server, name string) *member {
	t.Helper()
	ch := make(chan []string, 64)
	c, err := Join(tctx(t), s.Connect(t), Options{Node: name, Heartbeat: testHeartbeat, NodeTTL: testNodeTTL,
		Logger: testLogger(),
		OnChange: func(live []string) {
			select {
			case ch <- live:
			default: // the waiter re-reads Live anyway
			}
		}})
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return &member{c, ch}
}

func joinAll(t *testing.T, s *natstest.Server, names ...string) []*member {
	var out []*member
	for _, n := range names {
		out = append(out, join(t, s, n))
	}
	for _, m := range out {
		m.waitLive(t, names...)
	}
	return out
}

// waitLive waits, on OnChange, until the node's live set is want.
func (m *member) waitLive(t *testing.T, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.After(10 * time.Second)
	for !slices.Equal(m.Live(), want) {
		select {
		case <-m.changes:
		case <-deadline:
			t.Fatalf("node %s sees %v, want %v", m.Node(), m.Live(), want)
		}
	}
}

func roomJID(i int) xmpp.JID { return xmpp.MustParseJID(fmt.Sprintf("room%d@muc.localhost", i)) }

func TestLiveConvergesAndOwnersAgree(t *testing.T) {
	nodes := joinAll(t, natstest.Start(t), "a", "b", "c")
	per := map[string]int{}
	for i := range 300 {
		r := roomJID(i)
		o := nodes[0].Owner(r)
		for _, n := range nodes[1:] {
			if got := n.Owner(r); got != o {
				t.Fatalf("room %s: node a says %s, node %s says %s", r, o, n.Node(), got)
			}
		}
		// A full JID places like its bare JID.
		if got := nodes[0].Owner(r.WithResource("nick")); got != o {
			t.Fatalf("room %s/nick placed on %s, the room on %s", r, got, o)
		}
		per[o]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if per[n] == 0 {
			t.Errorf("node %s owns none of 300 rooms: %v", n, per)
		}
	}
}

func TestRendezvousMovesOnlyTheLeaversRooms(t *testing.T) {
	all := []string{"a", "b", "c", "d"}
	without := []string{"a", "b", "d"}
	moved := 0
	for i := range 1000 {
		r := roomJID(i)
		before, after := OwnerOf(r, all), OwnerOf(r, without)
		if before != "c" && after != before {
			t.Fatalf("room %s moved from %s to %s when c left", r, before, after)
		}
		if before == "c" {
			moved++
		}
		if OwnerOf(r, []string{"d", "c", "b", "a"}) != before {
			t.Fatalf("room %s: placement depends on the order of the live list", r)
		}
	}
	if moved == 0 || moved == 1000 {
		t.Fatalf("%d of 1000 rooms were c's", moved)
	}
	if OwnerOf(roomJID(1), nil) != "" {
		t.Fatal("a room has an owner with no node live")
	}
}

func TestLeaseHeldAndHandedOver(t *testing.T) {
	nodes := joinAll(t, natstest.Start(t), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	r := roomJID(1)
	la, err := a.Acquire(tctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if !la.Valid() || la.Err() != nil {
		t.Fatalf("a fresh lease: valid %v, err %v", la.Valid(), la.Err())
	}
	var held *HeldError
	if _, err := b.Acquire(tctx(t), r); !errors.As(err, &held) || held.Owner != "a" {
		t.Fatalf("b acquiring a's room: %v, want HeldError{a}", err)
	}
	if _, err := a.Acquire(tctx(t), r.WithResource("x")); !errors.As(err, &held) || held.Owner != "a" {
		t.Fatalf("a acquiring its own room again: %v, want HeldError{a}", err)
	}
	if h, err := c.Holder(tctx(t), r); err != nil || h != "a" {
		t.Fatalf("Holder from c: %q %v, want a", h, err)
	}
	if h, err := c.Holder(tctx(t), roomJID(2)); err != nil || h != "" {
		t.Fatalf("Holder of a room nobody holds: %q %v", h, err)
	}
	la.Release()
	la.Release()
	select {
	case <-la.Done():
	default:
		t.Fatal("Done is open after Release")
	}
	if la.Valid() || !errors.Is(la.Err(), ErrReleased) {
		t.Fatalf("a released lease: valid %v, err %v", la.Valid(), la.Err())
	}
	lb, err := b.Acquire(tctx(t), r)
	if err != nil {
		t.Fatalf("b acquiring after a released: %v", err)
	}
	if h, _ := a.Holder(tctx(t), r); h != "b" {
		t.Fatalf("Holder after the hand-over: %q, want b", h)
	}
	// A late second Release of a's old lease leaves b's key alone.
	la.Release()
	if h, _ := c.Holder(tctx(t), r); h != "b" || !lb.Valid() {
		t.Fatalf("after a's late release: holder %q, b valid %v", h, lb.Valid())
	}
}

func TestCloseHandsRoomsOverAtOnce(t *testing.T) {
	nodes := joinAll(t, natstest.Start(t), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	var leases []*Lease
	for i := range 5 {
		l, err := a.Acquire(tctx(t), roomJID(i))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	if err := a.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(tctx(t)); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	for _, l := range leases {
		<-l.Done()
		if l.Valid() || !errors.Is(l.Err(), ErrReleased) {
			t.Fatalf("a lease after Close: valid %v, err %v", l.Valid(), l.Err())
		}
	}
	if live := a.Live(); slices.Contains(live, "a") {
		t.Fatalf("a closed node lists itself: %v", live)
	}
	b.waitLive(t, "b", "c")
	c.waitLive(t, "b", "c")
	for i := range 5 {
		if _, err := b.Acquire(tctx(t), roomJID(i)); err != nil {
			t.Fatalf("b acquiring a's room %d right after a left: %v", i, err)
		}
	}
	if _, err := a.Acquire(tctx(t), roomJID(9)); err == nil {
		t.Fatal("a closed node acquired a room")
	}
}

// actor acts for a room on l's node while the lease is valid, as a room's
// actor does, and reports to the owner log; it returns when the lease ends.
func actor(log *natstest.OwnerLog, room xmpp.JID, node string, l *Lease, acts int) {
	span := log.Start(room.String(), node)
	defer span.End()
	for i := 0; acts < 0 || i < acts; i++ {
		if !l.Valid() {
			return
		}
		span.Acted()
		select {
		case <-l.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// A node whose heartbeat stops stops acting before another node can take
// its rooms, and rejoins with a new incarnation when it beats again.
func TestSilentNodeStopsBeforeOthersTakeOver(t *testing.T) {
	for _, how := range []string{"heartbeat paused", "connection closed"} {
		t.Run(how, func(t *testing.T) {
			s := natstest.Start(t)
			nodes := joinAll(t, s, "a", "b")
			a, b := nodes[0], nodes[1]
			r := roomJID(1)
			la, err := a.Acquire(tctx(t), r)
			if err != nil {
				t.Fatal(err)
			}
			var log natstest.OwnerLog
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); actor(&log, r, "a", la, -1) }()
			epoch := a.member.Load().epoch
			silent := time.Now()
			if how == "heartbeat paused" {
				a.stalled.Store(true)
			} else {
				a.nc.Close()
			}
			var lb *Lease
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for lb == nil {
				l, err := b.Acquire(tctx(t), r)
				var held *HeldError
				switch {
				case err == nil:
					lb = l
				case errors.As(err, &held) && held.Owner == "a":
					select {
					case <-tick.C:
					case <-tctx(t).Done():
						t.Fatal("b never took over a's room")
					}
				default:
					t.Fatal(err)
				}
			}
			select {
			case <-la.Done():
			default:
				t.Fatal("b holds the room while a's lease is still open")
			}
			t.Logf("b took the room over %v after a fell silent (node TTL %v)", time.Since(silent).Round(time.Millisecond), testNodeTTL)
			if la.Valid() || !errors.Is(la.Err(), ErrMembershipLost) {
				t.Fatalf("a's lease: valid %v, err %v", la.Valid(), la.Err())
			}
			wg.Wait()
			actor(&log, r, "b", lb, 5)
			log.Check(t)
			b.waitLive(t, "b")
			if how == "heartbeat paused" {
				a.stalled.Store(false)
				b.waitLive(t, "a", "b")
				a.waitLive(t, "a", "b")
				if m := a.member.Load(); m == nil || m.epoch == epoch {
					t.Fatalf("a rejoined under epoch %v, had %d", m, epoch)
				}
				var held *HeldError
				if _, err := a.Acquire(tctx(t), r); !errors.As(err, &held) || held.Owner != "b" {
					t.Fatalf("a back: acquiring b's room: %v", err)
				}
			}
		})
	}
}

// Nodes race to acquire, act for and release a few rooms; at no time do
// two nodes act for one room.
func TestNoTwoOwnersUnderContention(t *testing.T) {
	nodes := joinAll(t, natstest.Start(t), "a", "b", "c")
	var log natstest.OwnerLog
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := map[string]int{}
	lost := 0
	for _, n := range nodes {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(w), uint64(n.Node()[0])))
				for range 60 {
					r := roomJID(rnd.IntN(20))
					l, err := n.Acquire(tctx(t), r)
					var held *HeldError
					if errors.As(err, &held) {
						continue
					}
					if errors.Is(err, ErrMembershipLost) {
						// A renewal that came too late on a loaded
						// machine: safe, and the node rejoins.
						mu.Lock()
						lost++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					granted[n.Node()]++
					mu.Unlock()
					actor(&log, r, n.Node(), l, 1+rnd.IntN(3))
					l.Release()
				}
			}()
		}
	}
	wg.Wait()
	log.Check(t)
	for _, n := range []string{"a", "b", "c"} {
		if granted[n] == 0 {
			t.Errorf("node %s never got a lease: %v", n, granted)
		}
	}
	t.Logf("leases granted: %v, spans %d, refused for a lost membership %d", granted, log.Spans(), lost)
}

func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestJoinRefusesALiveNamesake(t *testing.T) {
	s := natstest.Start(t)
	join(t, s, "a")
	_, err := Join(tctx(t), s.Connect(t), Options{Node: "a", Heartbeat: testHeartbeat, NodeTTL: testNodeTTL, Logger: testLogger()})
	if !errors.Is(err, ErrNameInUse) {
		t.Fatalf("a second node a joined: %v", err)
	}
	if _, err := Join(tctx(t), s.Connect(t), Options{Node: "a.b", Logger: testLogger()}); err == nil {
		t.Fatal("a node name with a dot joined")
	}
	if _, err := Join(tctx(t), s.Connect(t), Options{Node: "b", NodeTTL: 2 * testNodeTTL, Logger: testLogger()}); err == nil {
		t.Fatal("a node with another node TTL than the bucket's joined")
	}
}

// A restarted node finds its previous incarnation's key and waits for it
// to expire; the old incarnation's late Close does not remove the new key.
func TestJoinWaitsForACrashedNamesake(t *testing.T) {
	s := natstest.Start(t)
	old := join(t, s, "a")
	b := join(t, s, "b")
	epoch := old.member.Load().epoch
	old.stalled.Store(true) // it crashed: nothing more is sent
	renewed := join(t, s, "a")
	if renewed.member.Load().epoch == epoch {
		t.Fatal("the new incarnation has the old epoch")
	}
	old.Close(tctx(t))
	b.waitLive(t, "a", "b")
	if h, err := b.Holder(tctx(t), roomJID(1)); err != nil || h != "" {
		t.Fatalf("holder %q %v", h, err)
	}
	if _, err := renewed.Acquire(tctx(t), roomJID(1)); err != nil {
		t.Fatal(err)
	}
}

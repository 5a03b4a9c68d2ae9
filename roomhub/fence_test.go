package roomhub_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// testFence is a right to act the test controls: what a cluster lease
// does to the actor (package cluster tests the leases themselves).
type testFence struct {
	valid    atomic.Bool
	done     chan struct{}
	once     sync.Once
	released atomic.Int32
}

func newTestFence() *testFence {
	f := &testFence{done: make(chan struct{})}
	f.valid.Store(true)
	return f
}

func (f *testFence) Valid() bool           { return f.valid.Load() }
func (f *testFence) Done() <-chan struct{} { return f.done }
func (f *testFence) Release()              { f.released.Add(1) }
func (f *testFence) lose()                 { f.valid.Store(false); f.once.Do(func() { close(f.done) }) }

// replySink hands every reply to a channel.
type replySink struct{ replies chan room.Reply }

func (s replySink) Reply(r room.Reply) { s.replies <- r }
func (s replySink) Event(room.Event)   {}

func TestFencedActor(t *testing.T) {
	defer goleak.VerifyNone(t)
	s, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rm := xmpp.MustParseJID("fenced@muclight.a.test")
	alice := xmpp.MustParseJID("alice@a.test")
	if err := s.CreateRoom(context.Background(), rm, room.Config{}, []room.Aff{{User: alice, Aff: room.Owner}}, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		fences     []*testFence
		heldBy     string
		redirected []string
	)
	unloaded := make(chan xmpp.JID, 4)
	sink := replySink{make(chan room.Reply, 16)}
	h := roomhub.NewHub(room.DefaultOptions(), []string{"a.test"}, s, sink, roomhub.HubOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Node:   "a",
		Admit: func(ctx context.Context, _ xmpp.JID) (roomhub.Fence, error) {
			mu.Lock()
			defer mu.Unlock()
			if heldBy != "" {
				return nil, &roomhub.HeldError{Owner: heldBy}
			}
			f := newTestFence()
			fences = append(fences, f)
			return f, nil
		},
		Redirect: func(req room.Request, owner string) bool {
			mu.Lock()
			defer mu.Unlock()
			redirected = append(redirected, req.Header().Origin.ID+"→"+owner)
			return true
		},
	})
	defer h.Close()
	h.SetHooks(roomhub.Hooks{OnUnload: func(j xmpp.JID) { unloaded <- j }})
	get := func(id string) *room.GetInfo {
		return &room.GetInfo{Head: room.Head{Room: rm, Origin: room.Origin{From: alice.WithResource("r"), ID: id, To: rm, Kind: xmpp.KindIQ}}}
	}
	reply := func(id string) room.Reply {
		t.Helper()
		select {
		case r := <-sink.replies:
			if r.Origin.ID != id {
				t.Fatalf("reply to %s, want %s", r.Origin.ID, id)
			}
			return r
		case <-time.After(time.Minute):
			t.Fatalf("no reply to %s", id)
		}
		return room.Reply{}
	}

	// Granted: the actor starts and answers.
	h.Dispatch(context.Background(), get("1"))
	if r := reply("1"); r.Err != nil {
		t.Fatalf("first request refused: %+v", r.Err)
	}
	// The right lapses (paused, cut off): no request is handled any more.
	mu.Lock()
	f := fences[0]
	mu.Unlock()
	f.valid.Store(false)
	h.Dispatch(context.Background(), get("2"))
	if r := reply("2"); r.Err == nil || r.Err.Condition != string(xmpp.ResourceConstraint) {
		t.Fatalf("request after the lease lapsed: %+v, want resource-constraint", r.Err)
	}
	// Lost for good: the actor leaves the room and gives the right back.
	f.lose()
	<-unloaded
	if f.released.Load() != 1 {
		t.Errorf("the lost fence was released %d times, want 1", f.released.Load())
	}
	// Another node holds it now: the next request goes there, no actor
	// starts here.
	mu.Lock()
	heldBy = "b"
	mu.Unlock()
	h.Dispatch(context.Background(), get("3"))
	mu.Lock()
	if len(redirected) != 1 || redirected[0] != "3→b" {
		t.Errorf("redirected %v, want [3→b]", redirected)
	}
	heldBy = ""
	mu.Unlock()
	if n := h.Loaded(); n != 0 {
		t.Errorf("%d actors loaded while another node holds the room", n)
	}
	// Free again: a new right, a new actor.
	h.Dispatch(context.Background(), get("4"))
	if r := reply("4"); r.Err != nil {
		t.Fatalf("request after the room came back: %+v", r.Err)
	}
	mu.Lock()
	if len(fences) != 2 {
		t.Errorf("%d fences taken, want 2", len(fences))
	}
	mu.Unlock()
}

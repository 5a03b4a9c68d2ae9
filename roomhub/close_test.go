package roomhub_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// TestDispatchAfterClose: a request for a room whose actor was drained by
// Close (an ended session's leave arriving late, say) is answered
// service-unavailable; it used to find the drained actor again and again,
// spinning for ever, which hung the hub's owner.
func TestDispatchAfterClose(t *testing.T) {
	s, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rm := xmpp.MustParseJID("closing@muclight.a.test")
	alice := xmpp.MustParseJID("alice@a.test")
	if err := s.CreateRoom(context.Background(), rm, room.Config{}, []room.Aff{{User: alice, Aff: room.Owner}}, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	sink := replySink{make(chan room.Reply, 4)}
	h := roomhub.NewHub(room.DefaultOptions(), []string{"a.test"}, s, sink, roomhub.HubOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	get := func(id string) *room.GetInfo {
		return &room.GetInfo{Head: room.Head{Room: rm, Origin: room.Origin{From: alice.WithResource("r"), ID: id, To: rm, Kind: xmpp.KindIQ}}}
	}
	h.Dispatch(context.Background(), get("loaded"))
	if r := <-sink.replies; r.Err != nil {
		t.Fatalf("first request refused: %+v", r.Err)
	}
	h.Close()
	done := make(chan bool, 1)
	go func() { done <- h.Dispatch(context.Background(), get("late")) }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a request after Close was accepted")
		}
	case <-time.After(time.Minute):
		t.Fatal("Dispatch after Close did not return")
	}
	if r := <-sink.replies; r.Err == nil || r.Err.Condition != string(xmpp.ServiceUnavailable) {
		t.Fatalf("reply after Close: %+v, want service-unavailable", r.Err)
	}
}

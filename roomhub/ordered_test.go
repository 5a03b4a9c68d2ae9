package roomhub_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// postedSink hands every Posted event to a channel and forgets the rest.
type postedSink struct{ posted chan *room.Posted }

func (s postedSink) Reply(room.Reply) {}
func (s postedSink) Event(e room.Event) {
	if p, ok := e.(*room.Posted); ok {
		s.posted <- p
	}
}

// TestArchiveIDsFollowTheRoomAcrossNodes moves a room from a node whose
// clock runs an hour ahead to one on time: with OrderedIDs the second
// node's ids still come after the first's, so history keeps its order; the
// same move without it puts the later message first, which is what the
// option is for.
func TestArchiveIDsFollowTheRoomAcrossNodes(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		name := map[bool]string{true: "ordered", false: "process clock"}[ordered]
		t.Run(name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s, err := boltstore.Open(t.TempDir(), boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rm := xmpp.MustParseJID("moving@muclight.a.test")
			alice := xmpp.MustParseJID("alice@a.test")
			if err := s.CreateRoom(context.Background(), rm, room.Config{}, []room.Aff{{User: alice, Aff: room.Owner}}, "v1", roomstore.Caps{}); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			post := func(ahead time.Duration, body string) string {
				sink := postedSink{make(chan *room.Posted, 1)}
				h := roomhub.NewHub(room.DefaultOptions(), []string{"a.test"}, s, sink, roomhub.HubOptions{
					Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
					Now:        func() time.Time { return now.Add(ahead) },
					MAM:        roomhub.MAMOptions{Archive: s.Archive()},
					OrderedIDs: ordered,
				})
				defer h.Close()
				o := room.Origin{From: alice.WithResource("r"), Session: 1, ID: body, To: rm, Kind: xmpp.KindMessage}
				h.Dispatch(context.Background(), &room.Post{Head: room.Head{Room: rm, Origin: o}, Body: body,
					Payload: []byte("<body>" + body + "</body>")})
				select {
				case p := <-sink.posted:
					return p.ArchiveID
				case <-time.After(time.Minute):
					t.Fatal("the message was not posted")
					return ""
				}
			}
			first := post(time.Hour, "ahead") // the node whose clock runs ahead
			second := post(0, "on time")      // the room's next owner
			if got := second > first; got != ordered {
				t.Errorf("ids %s then %s: second after first is %v, want %v", first, second, got, ordered)
			}
			page, err := s.Archive().Query(context.Background(), archive.Query{Room: rm, Max: 10})
			if err != nil || len(page.Messages) != 2 {
				t.Fatalf("archive: %v, %d messages", err, len(page.Messages))
			}
			if ordered && page.Messages[0].ID != first {
				t.Errorf("history starts with %s, want the first message %s", page.Messages[0].ID, first)
			}
		})
	}
}

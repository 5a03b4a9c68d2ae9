package roomhub_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/xmpp"
)

// TestRetentionUsesTheHubsClock checks that the hub's retention removes
// what is older than the retention period by the hub's clock (not the wall
// clock), and stops when the hub closes.
func TestRetentionUsesTheHubsClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	s, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := s.Archive()
	rm := xmpp.MustParseJID("coven@muc.a.test")
	t0 := time.Date(2001, 12, 1, 12, 0, 0, 0, time.UTC) // far from the wall clock
	ids := archive.NewIDClock()
	msg := func(at time.Time) archive.Message {
		id, at := ids.Next(at)
		return archive.Message{Room: rm, ID: id, Time: at, Stanza: []byte("<message/>")}
	}
	old, recent := msg(t0), msg(t0.Add(48*time.Hour))
	if err := a.Append(context.Background(), []archive.Message{old, recent}); err != nil {
		t.Fatal(err)
	}
	logged := make(chan slog.Record, 1)
	h := roomhub.NewHub(room.DefaultOptions(), []string{"a.test"}, s, nopSink{}, roomhub.HubOptions{
		Logger: slog.New(recordHandler(logged)),
		Now:    func() time.Time { return t0.Add(72 * time.Hour) },
		MAM:    roomhub.MAMOptions{Archive: a, Retention: 36 * time.Hour},
	})
	deadline := time.After(time.Minute)
	for done := false; !done; {
		select {
		case rec := <-logged:
			if rec.Message == "archive retention failed" {
				h.Close()
				t.Fatalf("retention failed: %v", rec)
			}
			done = rec.Message == "archive retention" // the first pass is over
		case <-deadline:
			h.Close()
			t.Fatal("retention did not report its first pass")
		}
	}
	h.Close() // returns once retention has stopped
	p, err := a.Query(context.Background(), archive.Query{Room: rm, Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 1 || p.Messages[0].ID != recent.ID {
		t.Fatalf("after retention: %+v, want only %s", p.Messages, recent.ID)
	}
}

// nopSink drops the hub's replies and events; this test sends no request.
type nopSink struct{}

func (nopSink) Reply(room.Reply) {}
func (nopSink) Event(room.Event) {}

// recordHandler hands each log record to the test (without waiting).
type recordHandler chan<- slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

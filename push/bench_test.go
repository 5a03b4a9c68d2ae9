package push

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

type presenceFunc func(xmpp.JID) bool

func (f presenceFunc) OnlineAnywhere(j xmpp.JID) bool { return f(j) }

type nowhere struct{}

func (nowhere) Deliver(xmpp.JID, *xmpp.Outbound) bool         { return false }
func (nowhere) DeliverAnywhere(xmpp.JID, *xmpp.Outbound) bool { return false }

func roomOf(n int) *room.Posted {
	ev := posted("big@muc.x", "a message of ordinary length, as people write them")
	for i := range n - 1 {
		ev.Audience = append(ev.Audience, room.Aff{User: xmpp.MustParseJID(fmt.Sprintf("m%d@x", i)), Aff: room.Member})
	}
	return ev
}

// BenchmarkHandle is the push worker's cost per room message of 500
// members: all online; all offline with XEP-0357 on and no registrations
// (one store read per message, the worst case); all offline with the
// webhook, throttled after the first message.
func BenchmarkHandle(b *testing.B) {
	ev := roomOf(500)
	online := presenceFunc(func(xmpp.JID) bool { return true })
	offline := presenceFunc(func(xmpp.JID) bool { return false })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	st, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"online", Options{Presence: online, XEP0357: true, Store: st}},
		{"offline_xep0357_store", Options{Presence: offline, XEP0357: true, Store: st}},
		{"offline_webhook_throttled", Options{Presence: offline, Webhook: WebhookOptions{URL: srv.URL, Secret: "k", Timeout: time.Second, MaxQueue: 10, Workers: 1, Backoff: time.Second}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			o := tc.o
			o.Router, o.Interval, o.QueueLen, o.MaxThrottleEntries, o.Hosts = nowhere{}, time.Hour, 10, 10000, []string{"x"}
			s := New(o)
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				s.handle(ev)
			}
		})
	}
}

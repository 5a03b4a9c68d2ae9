package push

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// posted is a room message from alice to bob as the core emits it.
func posted(rm, body string) *room.Posted {
	r := xmpp.MustParseJID(rm)
	alice := xmpp.MustParseJID("alice@x")
	return &room.Posted{
		EventHead: room.EventHead{Room: r}, Sender: alice, Time: time.Now(),
		Stanza:   xmpp.GroupchatFrame("m1", r.WithResource(alice.String()), []byte("<body>"+body+"</body>"), r, "A1"),
		Audience: []room.Aff{{User: alice, Aff: room.Owner}, {User: xmpp.MustParseJID("bob@x"), Aff: room.Member}},
	}
}

// value reads a counter of reg by name and label values (name=value).
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitCount waits for a counter to reach want.
func waitCount(t *testing.T, what string, get func() float64, want float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for get() != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s is %v, want %v", what, get(), want)
		case <-tick.C:
		}
	}
}

// TestWebhookStatuses: which answers are retried, which dropped at once.
func TestWebhookStatuses(t *testing.T) {
	for _, tc := range []struct {
		status   int
		attempts int64
		reason   string
	}{
		{http.StatusNoContent, 1, ""},
		{http.StatusBadRequest, 1, "rejected"},
		{http.StatusFound, 1, "rejected"}, // a redirect is not followed
		{http.StatusTooManyRequests, 3, "retries"},
		{http.StatusBadGateway, 3, "retries"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if tc.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			reg := prometheus.NewRegistry()
			s := New(Options{Registerer: reg, Interval: time.Hour, IncludeBody: true, QueueLen: 10, MaxThrottleEntries: 10,
				Webhook: WebhookOptions{URL: srv.URL, Secret: "k", Timeout: 10 * time.Second, MaxQueue: 10, MaxRetries: 2,
					Backoff: time.Millisecond, Workers: 1}})
			defer s.Close()
			s.OnPosted(posted("r@muc.x", "hello"))
			if tc.reason == "" {
				waitCount(t, "sent", func() float64 {
					return value(t, reg, "xmppws_push_notifications_total", "kind", KindWebhook, "outcome", "sent")
				}, 1)
			} else {
				waitCount(t, tc.reason, func() float64 {
					return value(t, reg, "xmppws_push_dropped_total", "kind", KindWebhook, "reason", tc.reason)
				}, 1)
			}
			if n.Load() != tc.attempts {
				t.Errorf("%d attempts, want %d", n.Load(), tc.attempts)
			}
		})
	}
}

// TestPostsQueueBound: a full push queue drops and counts, and the hook
// returns at once.
func TestPostsQueueBound(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	reg := prometheus.NewRegistry()
	s := New(Options{Registerer: reg, Interval: time.Hour, QueueLen: 2, MaxThrottleEntries: 1000,
		Webhook: WebhookOptions{URL: srv.URL, Secret: "k", Timeout: time.Minute, MaxQueue: 1, Workers: 1, Backoff: time.Millisecond}})
	defer s.Close()
	for i := range 100 {
		s.OnPosted(posted("r"+string(rune('a'+i%26))+"@muc.x", "x"))
	}
	if v := value(t, reg, "xmppws_push_posts_dropped_total"); v == 0 {
		t.Error("100 posts into a queue of 2 behind a hanging webhook: none dropped")
	}
}

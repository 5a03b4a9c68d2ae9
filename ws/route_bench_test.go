package ws

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

// BenchmarkRouteDeliver measures what fan-out costs per recipient inside
// the endpoint: finding the user's sessions and queueing the shared
// Outbound on each. The writer is held back (as if busy) so that only the
// routing is measured; its WebSocket writes are the load tool's business.
func BenchmarkRouteDeliver(b *testing.B) {
	cfg := Defaults()
	cfg.MaxPending = 1 << 50
	srv := New(cfg, nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	const users = 500
	var jids []xmpp.JID
	var sessions []*session
	for i := 0; i < users; i++ {
		full := xmpp.MustParseJID(fmt.Sprintf("user%03d@localhost/r", i))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &session{srv: srv, ctx: ctx, cancel: cancel, writing: true, jidStr: full.String(), bareStr: full.Bare().String()}
		s.qcond = sync.NewCond(&s.qmu)
		s.jid.Store(&full)
		s.bound.Store(true)
		srv.router.register(s)
		sessions = append(sessions, s)
		jids = append(jids, full.Bare())
	}
	el, _ := xmpp.ParseElement([]byte(`<message xmlns='jabber:client' type='groupchat' from='r@muclight.localhost/user001@localhost' id='m1'><body>Harpier cries: 'tis time, 'tis time.</body></message>`))
	out := xmpp.NewOutbound(el)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		srv.router.Deliver(jids[n%users], out)
		n++
		if n%users == 0 {
			for _, s := range sessions {
				s.queue = s.queue[:0]
				s.pending = 0
			}
		}
	}
}

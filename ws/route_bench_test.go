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
	rb := newRouteBench(b, "r")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rb.router.Deliver(rb.users[n%routeUsers], rb.out)
		n++
		rb.drain(n)
	}
}

// BenchmarkRouteDeliverExcept is RouteDeliver for the split of a room event
// between dialects: each user has two sessions, one of them an XEP-0045
// occupant that the MUC Light form skips.
func BenchmarkRouteDeliverExcept(b *testing.B) {
	rb := newRouteBench(b, "web", "gajim")
	except := make([][]xmpp.SessionRef, len(rb.users))
	for i, u := range rb.users {
		except[i] = []xmpp.SessionRef{{JID: u.WithResource("gajim")}}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		i := n % routeUsers
		rb.router.DeliverExcept(rb.users[i], except[i], rb.out)
		n++
		rb.drain(n)
	}
}

// routeUsers is a constant so that the benchmarks' modulo costs what the
// original's did: a division would show up in the figures.
const routeUsers = 500

// routeBench is routeUsers users bound with the given resources, whose writers are
// held back, and one groupchat Outbound.
type routeBench struct {
	router   *Router
	users    []xmpp.JID // bare
	sessions []*session
	out      *xmpp.Outbound
}

func newRouteBench(b *testing.B, resources ...string) *routeBench {
	cfg := Defaults()
	cfg.MaxPending = 1 << 50
	srv := New(cfg, nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rb := &routeBench{router: srv.router}
	for i := 0; i < routeUsers; i++ {
		for _, res := range resources {
			full := xmpp.MustParseJID(fmt.Sprintf("user%03d@localhost/%s", i, res))
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel)
			s := &session{srv: srv, ctx: ctx, cancel: cancel, writing: true, jidStr: full.String(), bareStr: full.Bare().String()}
			s.qcond = sync.NewCond(&s.qmu)
			s.jid.Store(&full)
			s.bound.Store(true)
			srv.router.register(s)
			rb.sessions = append(rb.sessions, s)
		}
		rb.users = append(rb.users, xmpp.MustParseJID(fmt.Sprintf("user%03d@localhost", i)))
	}
	el, _ := xmpp.ParseElement([]byte(`<message xmlns='jabber:client' type='groupchat' from='r@muclight.localhost/user001@localhost' id='m1'><body>Harpier cries: 'tis time, 'tis time.</body></message>`))
	rb.out = xmpp.NewOutbound(el)
	return rb
}

// drain empties the queues after every round of n deliveries over the users.
func (rb *routeBench) drain(n int) {
	if n%routeUsers == 0 {
		for _, s := range rb.sessions {
			s.queue = s.queue[:0]
			s.pending = 0
		}
	}
}

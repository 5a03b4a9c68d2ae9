package rooms_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// serialisingDeliverer stands in for the session table: it does the
// per-recipient work a delivery costs (addressing the shared Outbound into a
// buffer) and signals when a message has reached every occupant.
type serialisingDeliverer struct {
	buf       []byte
	n         atomic.Int64
	occupants int64
	done      chan struct{}
}

func (d *serialisingDeliverer) Deliver(to xmpp.JID, out *xmpp.Outbound) bool {
	d.buf = out.AppendTo(d.buf[:0], to.String())
	if d.n.Add(1)%d.occupants == 0 {
		d.done <- struct{}{}
	}
	return true
}

func (d *serialisingDeliverer) DeliverPaced(_, to xmpp.JID, out *xmpp.Outbound) bool {
	return d.Deliver(to, out)
}

// BenchmarkGroupchatFanout measures one groupchat message through the hub to
// every occupant of a room: mailbox hand-off, occupancy check, one
// serialisation, and per-recipient addressing. With cache_affs off the room
// rereads its occupants from the embedded store for every message.
func BenchmarkGroupchatFanout(b *testing.B) {
	for _, occupants := range []int{50, 500} {
		for _, cache := range []bool{true, false} {
			b.Run(fmt.Sprintf("occupants=%d/cache_affs=%v", occupants, cache), func(b *testing.B) {
				benchFanout(b, occupants, cache)
			})
		}
	}
}

func benchFanout(b *testing.B, occupants int, cache bool) {
	st, err := boltstore.Open(b.TempDir(), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	room := xmpp.MustParseJID("bench@" + svc)
	affs := make([]rooms.Aff, occupants)
	for i := range affs {
		affs[i] = rooms.Aff{User: xmpp.MustParseJID(fmt.Sprintf("user%04d@localhost", i)), Aff: rooms.Member, Since: int64(i)}
	}
	affs[0].Aff = rooms.Owner
	if err := st.CreateRoom(context.Background(), room, rooms.Config{}, affs, "v1", rooms.Caps{}); err != nil {
		b.Fatal(err)
	}
	opts := rooms.DefaultOptions()
	opts.CacheAffs, opts.CacheAffsTTL = cache, time.Hour
	d := &serialisingDeliverer{occupants: int64(occupants), done: make(chan struct{}, 1)}
	hub := rooms.NewHub(opts, []string{"localhost"}, st, d, rooms.HubOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer hub.Close()

	tmpl, err := xmpp.ParseElement([]byte(`<message xmlns='jabber:client' type='groupchat' id='m1' to='bench@muclight.localhost'><body>Harpier cries: 'tis time, 'tis time.</body><origin-id xmlns='urn:xmpp:sid:0' id='abc'/></message>`))
	if err != nil {
		b.Fatal(err)
	}
	sender := affs[1].User.WithResource("r")
	send := func() {
		st, _, _ := xmpp.NewStanza(tmpl.Copy())
		st.SetFrom(sender)
		hub.HandleStanza(context.Background(), st)
		<-d.done
	}
	send() // load the room
	b.ReportAllocs()
	for b.Loop() {
		send()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(occupants), "ns/delivery")
}

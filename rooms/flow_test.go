package rooms_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// countingDeliverer stands in for the session table of a hub driven
// directly: it counts groupchat copies with a body and error replies.
type countingDeliverer struct {
	copies, errors atomic.Int64
	mu             sync.Mutex
	lastError      string
	want           int64         // copies expected
	all            chan struct{} // closed when copies reaches want
	each           chan struct{} // nil, or signalled on every copy
}

func (d *countingDeliverer) Deliver(to xmpp.JID, out *xmpp.Outbound) bool {
	b := out.Bytes(to.String())
	switch {
	case bytes.Contains(b, []byte("type='error'")):
		d.errors.Add(1)
		d.mu.Lock()
		d.lastError = string(b)
		d.mu.Unlock()
	case bytes.Contains(b, []byte("<body>")):
		if d.each != nil {
			d.each <- struct{}{}
		}
		if d.copies.Add(1) == d.want {
			close(d.all)
		}
	}
	return true
}

func (d *countingDeliverer) DeliverPaced(_, to xmpp.JID, out *xmpp.Outbound) bool {
	return d.Deliver(to, out)
}

// burstHub is a hub on a fresh embedded store, driven through HandleStanza
// as the router would (each sender's calls from its own goroutine, its
// reader), with one room whose occupants are the n senders.
func burstHub(t *testing.T, n int, want int64, ho rooms.HubOptions, wrapArchive func(rooms.Archive) rooms.Archive) (*rooms.Hub, *countingDeliverer, xmpp.JID, *boltstore.Store) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	room := xmpp.MustParseJID("busy@" + svc)
	var affs []rooms.Aff
	for i := range n {
		affs = append(affs, rooms.Aff{User: xmpp.MustParseJID(fmt.Sprintf("u%d@localhost", i)), Aff: rooms.Member, Since: int64(i + 1)})
	}
	affs[0].Aff = rooms.Owner
	if err := st.CreateRoom(tctx(t), room, rooms.Config{"roomname": "busy", "subject": ""}, affs, "v1", rooms.Caps{}); err != nil {
		t.Fatal(err)
	}
	if wrapArchive != nil {
		ho.MAM.Archive = wrapArchive(st.Archive())
	}
	ho.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &countingDeliverer{want: want, all: make(chan struct{})}
	opts := rooms.DefaultOptions()
	opts.CacheAffs, opts.CacheAffsTTL = true, time.Hour
	hub := rooms.NewHub(opts, []string{"localhost"}, st, d, ho)
	t.Cleanup(func() {
		hub.Close()
		st.Close()
	})
	return hub, d, room, st
}

// sendBurst has each of n senders send per messages to room from its own
// goroutine, as fast as HandleStanza returns.
func sendBurst(t *testing.T, hub *rooms.Hub, room xmpp.JID, n, per int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := fmt.Sprintf("u%d@localhost/r", i)
			for j := range per {
				m := client.Message(room.String(), "groupchat", fmt.Sprintf("%d-%d", i, j))
				m.CreateAttr("id", fmt.Sprintf("%d-%d", i, j))
				hub.HandleStanza(context.Background(), stanza(t, m, from))
			}
		}()
	}
	wg.Wait()
}

// waitAll waits until every expected copy was delivered, failing after a
// generous deadline.
func waitAll(t *testing.T, d *countingDeliverer) {
	t.Helper()
	select {
	case <-d.all:
	case <-time.After(60 * time.Second):
		t.Fatalf("delivered %d of %d copies (%d refusals, last %s)", d.copies.Load(), d.want, d.errors.Load(), d.lastError)
	}
}

// A burst that overflows a room's mailbox many times over (30 senders × 100
// messages into a mailbox of 8) is delivered in full: the senders wait for
// room instead of being refused.
func TestBurstOverflowingTheMailboxIsDelivered(t *testing.T) {
	const senders, per = 30, 100
	hub, d, room, _ := burstHub(t, senders, senders*per*senders, rooms.HubOptions{MailboxSize: 8}, nil)
	sendBurst(t, hub, room, senders, per)
	waitAll(t, d)
	if n := d.errors.Load(); n != 0 {
		t.Fatalf("%d refusals, last %s", n, d.lastError)
	}
}

// With an archive queue of 4 and an archive that holds every write until
// the senders are waiting, every message is still archived and delivered:
// the room waits for the queue, its mailbox fills, and the senders' readers
// wait in turn.
func TestSlowArchiveStillDeliversEverything(t *testing.T) {
	const senders, per = 10, 50
	var ga *gatedArchive
	hub, d, room, st := burstHub(t, senders, senders*per*senders, rooms.HubOptions{MailboxSize: 8, MAM: rooms.MAMOptions{QueueLen: 4}},
		func(a rooms.Archive) rooms.Archive { ga = newGatedArchive(a); return ga })
	ga.armed.Store(true)
	rooms.SetWaitHook(hub, ga.open) // the back pressure has reached a sender
	sendBurst(t, hub, room, senders, per)
	waitAll(t, d)
	if n := d.errors.Load(); n != 0 {
		t.Fatalf("%d refusals, last %s", n, d.lastError)
	}
	p, err := st.Archive().Query(tctx(t), rooms.ArchiveQuery{Room: room, Max: 1})
	if err != nil || p.Count != senders*per {
		t.Fatalf("archived %d of %d (%v)", p.Count, senders*per, err)
	}
}

// 4,000 groupchat messages to rooms that do not exist are each answered
// item-not-found and leave no room actor and no goroutine behind.
func TestMissingRoomsLeaveNoState(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	alice.quiet()
	base := runtime.NumGoroutine()
	// In windows of 200, so that the session's send queue (bounded in
	// stanzas, closed when full) never holds more replies than that.
	const n, window = 4000, 200
	for i := 0; i < n; i += window {
		for j := i; j < i+window; j++ {
			m := client.Message(fmt.Sprintf("ghost%d@%s", j, svc), "groupchat", "boo")
			m.CreateAttr("id", fmt.Sprintf("g%d", j))
			if err := alice.Send(tctx(t), m); err != nil {
				t.Fatal(err)
			}
		}
		for range window {
			expectError(t, alice.next(), "item-not-found")
		}
	}
	if got := rooms.LoadedRooms(e.hub); got != 0 {
		t.Errorf("%d room actors for rooms that do not exist", got)
	}
	if got := runtime.NumGoroutine(); got > base+2 {
		t.Errorf("%d goroutines, %d before", got, base)
	}
}

// 50 legacy joins to new rooms from one user create at most the
// create_rate burst; the others are refused wait/resource-constraint
// without starting a room actor.
func TestLegacyJoinsAreRateLimited(t *testing.T) {
	frozen := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvFull(t, func(o *rooms.Options) { o.LegacyMode = true }, nil,
		rooms.HubOptions{Now: func() time.Time { return frozen }}, []string{"localhost"})
	alice := e.login("alice")
	for i := range 50 {
		alice.join(fmt.Sprintf("spawn%d@%s", i, svc), alice.bare)
	}
	created, refused := 0, 0
	for created+refused < 50 {
		el := alice.next()
		if el.SelectAttrValue("type", "") == "error" {
			se := client.ErrorOf(el)
			if se == nil || se.Condition != "resource-constraint" || se.Type != "wait" || se.Text == "" {
				t.Fatalf("refusal %s", xmpp.String(el))
			}
			refused++
			continue
		}
		created++
	}
	burst := rooms.DefaultOptions().CreateBurst
	n, _ := e.store.GetUserRoomsCount(tctx(t), xmpp.MustParseJID("alice@localhost"), svc)
	if created != burst || n != burst {
		t.Fatalf("%d joins created rooms (%d stored), want the burst %d", created, n, burst)
	}
	if got := rooms.LoadedRooms(e.hub); got != burst {
		t.Errorf("%d room actors; refused joins must not start any", got)
	}
}

// gatedQueries holds every archive Query until released.
type gatedQueries struct {
	rooms.Archive
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedQueries) Query(ctx context.Context, q rooms.ArchiveQuery) (rooms.ArchivePage, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return rooms.ArchivePage{}, ctx.Err()
	}
	return g.Archive.Query(ctx, q)
}

func sendQuery(t *testing.T, u *user, room, id string) {
	t.Helper()
	iq := client.IQ("set", room, query(rooms.NSMAM2, ""))
	iq.CreateAttr("id", id)
	u.Send(tctx(t), iq)
}

// History queries: the third at once in one room is refused at once;
// over the server's cap a query waits and is refused after mailbox_wait;
// once the running queries end, new ones run.
func TestMAMQueryCaps(t *testing.T) {
	gq := &gatedQueries{entered: make(chan struct{}, 8), gate: make(chan struct{})}
	_, ho := mamHub(false)
	ho.MAM.MaxQueries, ho.MAM.MaxQueriesPerRoom = 2, 2
	e := newEnvArchive(t, func(o *rooms.Options) { o.MailboxWait = 50 * time.Millisecond }, nil, ho, []string{"localhost"},
		func(a rooms.Archive) rooms.Archive { gq.Archive = a; return gq })
	alice, bob := e.login("alice"), e.login("bob")
	one := createRoom(t, "one", alice)
	two := createRoom(t, "two", bob)
	sendQuery(t, alice, one, "q1")
	sendQuery(t, alice, one, "q2")
	<-gq.entered
	<-gq.entered // both run, holding the server's two places
	sendQuery(t, alice, one, "q3")
	el := alice.next()
	expectError(t, el, "resource-constraint")
	if el.SelectAttrValue("id", "") != "q3" || client.ErrorOf(el).Type != "wait" {
		t.Fatalf("room cap: %s", xmpp.String(el))
	}
	sendQuery(t, bob, two, "q4") // another room, but the server is full
	el = bob.next()
	expectError(t, el, "resource-constraint")
	if el.SelectAttrValue("id", "") != "q4" {
		t.Fatalf("server cap: %s", xmpp.String(el))
	}
	close(gq.gate)
	for range 2 {
		if el := nextIQ(alice); el.SelectAttrValue("type", "") != "result" {
			t.Fatalf("held query: %s", xmpp.String(el))
		}
	}
	sendQuery(t, bob, two, "q5")
	<-gq.entered
	if el := nextIQ(bob); el.SelectAttrValue("id", "") != "q5" || el.SelectAttrValue("type", "") != "result" {
		t.Fatalf("after the release: %s", xmpp.String(el))
	}
}

// nextIQ skips a query's result messages up to its iq answer.
func nextIQ(u *user) *etree.Element {
	for {
		if el := u.next(); el.Tag == "iq" {
			return el
		}
	}
}

// A configuration value over max_config_value_size is not-acceptable, at
// creation and in a change.
func TestConfigValueSize(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.MaxConfigValueSize = 16 })
	alice := e.login("alice")
	long := strings.Repeat("n", 17)
	expectError(t, alice.iq("set", "wordy@"+svc, query(rooms.NSCreate, "<configuration><roomname>"+long+"</roomname></configuration>")), "not-acceptable")
	room := createRoom(t, "terse", alice)
	expectError(t, alice.iq("set", room, query(rooms.NSConfiguration, "<roomname>"+long+"</roomname>")), "not-acceptable")
	alice.quiet()
}

// newAccounts adds accounts to an env's embedded store.
func (e *env) newAccounts(names ...string) {
	e.t.Helper()
	st := e.store.(*boltstore.Store)
	for _, n := range names {
		rec, _ := account.New(xmpp.MustParseJID(n+"@localhost"), "pw")
		if err := st.CreateAccount(context.Background(), rec); err != nil {
			e.t.Fatal(err)
		}
	}
}

// Over real WebSockets: five members each send 100 messages at once into a
// room with a mailbox of 4; every member receives all 500, none refused.
func TestBurstOverWebSocket(t *testing.T) {
	e := newEnvFull(t, nil, nil, rooms.HubOptions{MailboxSize: 4}, []string{"localhost"})
	us := e.logins("alice", "bob", "kate", "mike", "carol")
	room := createRoom(t, "rush", us[0], us[1:]...)
	const per = 100
	for _, u := range us {
		go func() {
			for j := range per {
				m := client.Message(room, "groupchat", fmt.Sprintf("%s-%d", u.name, j))
				m.CreateAttr("id", fmt.Sprintf("%s-%d", u.name, j))
				if u.Send(tctx(t), m) != nil {
					return
				}
			}
		}()
	}
	for _, u := range us {
		for range per * len(us) {
			if el := u.next(); el.SelectAttrValue("type", "") != "groupchat" {
				t.Fatalf("%s got %s", u.name, xmpp.String(el))
			}
		}
	}
}

// An actor that unloads between nearly every request (idle timeout 1 µs)
// while a sender keeps posting loses nothing: a sender that finds the actor
// closed posts to a new one. The sender waits for each copy before sending
// the next, so the actor goes idle (and unloads) between messages.
func TestUnloadRacingSendersLosesNothing(t *testing.T) {
	const per = 300
	unloads := atomic.Int64{}
	hub, d, room, _ := burstHub(t, 1, per, rooms.HubOptions{MailboxSize: 2, IdleTimeout: time.Microsecond}, nil)
	d.each = make(chan struct{}, per)
	rooms.SetUnloadHook(hub, func(xmpp.JID) { unloads.Add(1) })
	for j := range per {
		m := client.Message(room.String(), "groupchat", fmt.Sprint(j))
		m.CreateAttr("id", fmt.Sprint(j))
		hub.HandleStanza(context.Background(), stanza(t, m, "u0@localhost/r"))
		select {
		case <-d.each:
		case <-time.After(30 * time.Second):
			t.Fatalf("message %d lost (%d refusals, last %s)", j, d.errors.Load(), d.lastError)
		}
	}
	waitAll(t, d)
	if n := d.errors.Load(); n != 0 {
		t.Fatalf("%d refusals, last %s", n, d.lastError)
	}
	if unloads.Load() == 0 {
		t.Fatal("the actor never unloaded: the test did not race anything")
	}
	t.Logf("%d unloads during %d messages", unloads.Load(), per)
}

package rooms_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// gatedArchive is an Archive whose Append, once armed, waits until the gate
// is closed (or fails at once when fail is set), so tests can hold messages
// in the room's pending queue.
type gatedArchive struct {
	rooms.Archive
	armed atomic.Bool
	fail  atomic.Bool
	gate  chan struct{}
	once  sync.Once
}

func newGatedArchive(a rooms.Archive) *gatedArchive {
	return &gatedArchive{Archive: a, gate: make(chan struct{})}
}

func (g *gatedArchive) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedArchive) Append(ctx context.Context, msgs []rooms.ArchivedMessage) error {
	if g.fail.Load() {
		return errInjected
	}
	if g.armed.Load() {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Archive.Append(ctx, msgs)
}

func mamHub(legacy bool) (func(*rooms.Options), rooms.HubOptions) {
	tweak := func(o *rooms.Options) { o.LegacyMode = legacy }
	return tweak, rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}}
}

// legacyCreate has u create room by joining it.
func legacyCreate(t *testing.T, u *user, room string) {
	t.Helper()
	u.join(room, u.bare)
	if _, _, codes := mucUser(t, u.next()); codes != "110,201" {
		t.Fatalf("%s did not create %s: codes %s", u.name, room, codes)
	}
}

// Defect 1: in legacy mode the last occupant leaving through muc#admin
// deleted the room but not its history, so whoever re-created the room by
// joining read it.
func TestLegacyLastLeaveRemovesHistory(t *testing.T) {
	tweak, ho := mamHub(true)
	e := newEnvFull(t, tweak, nil, ho, []string{"localhost"})
	alice, bob := e.login("alice"), e.login("bob")
	room := "gone@" + svc
	legacyCreate(t, alice, room)
	say(t, room, alice, "secret", alice)
	p := alice.iq("set", room, query(rooms.NSMUCAdmin, "<item affiliation='none' jid='alice@localhost'/>"))
	if p.Tag != "presence" || p.SelectAttrValue("type", "") != "unavailable" {
		t.Fatalf("alice got %s", xmpp.String(p))
	}
	expectResult(t, alice.next(), room)
	legacyCreate(t, bob, room)
	if got := bob.mam(room, ""); len(got.bodies) != 0 {
		t.Fatalf("the re-created room serves the old history: %v", got.bodies)
	}
}

// Defect 1: the same for remove_user in legacy mode.
func TestLegacyRemoveUserRemovesHistory(t *testing.T) {
	tweak, ho := mamHub(true)
	e := newEnvFull(t, tweak, nil, ho, []string{"localhost"})
	alice, bob := e.login("alice"), e.login("bob")
	room := "alone@" + svc
	legacyCreate(t, alice, room)
	say(t, room, alice, "secret", alice)
	if err := e.hub.RemoveUser(tctx(t), xmpp.MustParseJID("alice@localhost")); err != nil {
		t.Fatal(err)
	}
	if p := alice.next(); p.Tag != "presence" || p.SelectAttrValue("type", "") != "unavailable" {
		t.Fatalf("alice got %s", xmpp.String(p))
	}
	legacyCreate(t, bob, room)
	if got := bob.mam(room, ""); len(got.bodies) != 0 {
		t.Fatalf("the re-created room serves the old history: %v", got.bodies)
	}
}

// nobody is the Deliverer of an offline hub (server/usercmd.go).
type nobody struct{}

func (nobody) Deliver(xmpp.JID, *xmpp.Outbound) bool             { return false }
func (nobody) DeliverPaced(_, _ xmpp.JID, _ *xmpp.Outbound) bool { return false }

// Defect 1: an offline "user del" runs RemoveUser and closes the hub at
// once; Close stopped the actors before they handled the removal, so the
// history of the room the user was alone in stayed behind.
func TestOfflineRemoveUserRemovesHistory(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := tctx(t)
			alice := xmpp.MustParseJID("alice@localhost")
			ar := st.Archive()
			var rs []xmpp.JID
			for i := range 5 {
				room := xmpp.MustParseJID(fmt.Sprintf("solo%d@%s", i, svc))
				rs = append(rs, room)
				if err := st.CreateRoom(ctx, room, rooms.Config{"roomname": "x", "subject": ""}, []rooms.Aff{{User: alice, Aff: rooms.Owner, Since: 1}}, "v1", rooms.Caps{}); err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("%016x%04d", time.Now().UnixMicro(), i)
				if err := ar.Append(ctx, []rooms.ArchivedMessage{{Room: room, ID: id, Time: time.Now(), Sender: alice, Stanza: []byte("<message xmlns='jabber:client'><body>old</body></message>")}}); err != nil {
					t.Fatal(err)
				}
			}
			opts := rooms.DefaultOptions()
			opts.LegacyMode = legacy
			hub := rooms.NewHub(opts, []string{"localhost"}, st, nobody{}, rooms.HubOptions{MAM: rooms.MAMOptions{Archive: ar}})
			if err := hub.RemoveUser(ctx, alice); err != nil {
				t.Fatal(err)
			}
			hub.Close()
			for _, room := range rs {
				p, err := ar.Query(ctx, rooms.ArchiveQuery{Room: room, Max: 10})
				if err != nil {
					t.Fatal(err)
				}
				if p.Count != 0 {
					t.Errorf("%s: %d archived messages left after its destruction", room, p.Count)
				}
			}
		})
	}
}

// Defect 2: a destroy while a message waited for the archive writer let the
// message out after the destroy notice (and into the archive after its
// removal). Destroy is the last thing occupants see, and the history of a
// destroyed room is empty.
func TestDestroyIsLastAndRemovesPendingHistory(t *testing.T) {
	e, ga := gatedEnv(t)
	rooms.SetHandleHook(e.hub, func(st *xmpp.Stanza) {
		if st != nil && st.ID == "destroy" {
			ga.open() // the archive writes once the actor has taken the destroy
		}
	})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "doomed", alice, bob)
	ga.armed.Store(true)
	for i := range 3 {
		m := client.Message(room, "groupchat", fmt.Sprintf("late %d", i))
		m.CreateAttr("id", fmt.Sprintf("late%d", i))
		bob.Send(tctx(t), m)
	}
	d := client.IQ("set", room, query(rooms.NSDestroy, ""))
	d.CreateAttr("id", "destroy")
	// The destroy must come after bob's messages in the room's mailbox:
	// bob's own requests are ordered, so bob makes the room busy first.
	waitTaken(t, e, bob, room)
	alice.Send(tctx(t), d)
	for _, u := range []*user{alice, bob} {
		for i := range 3 {
			el := u.next()
			if b, _ := childText(el, "body"); b != fmt.Sprintf("late %d", i) {
				t.Fatalf("%s: want message %d before the destroy notice, got %s", u.name, i, xmpp.String(el))
			}
		}
	}
	notif(t, bob.next(), room, "destroy", rooms.NSDestroy)
	notif(t, alice.next(), room, "destroy", rooms.NSDestroy)
	expectResult(t, alice.next(), room)
	bob.quiet()
	alice.quiet()
	ga.armed.Store(false)
	createRoom(t, "doomed", bob)
	if got := bob.mam(room, ""); slices.ContainsFunc(got.bodies, func(b string) bool { return strings.HasPrefix(b, "late") }) {
		t.Fatalf("the re-created room serves the destroyed room's messages: %v", got.bodies)
	}
}

// waitTaken returns once the room's actor has handled every request u sent
// before: a configuration get from u is answered after them.
func waitTaken(t *testing.T, e *env, u *user, room string) {
	t.Helper()
	// A config get goes through the same mailbox and is answered by the
	// actor in order; the messages are pending (not delivered), so the
	// answer is the next stanza u receives.
	res := u.iq("get", room, query(rooms.NSConfiguration, ""))
	expectResult(t, res, room)
}

// Defect 4: the room moved the sender's children into the fan-out copy, so
// a refused message bounced without the <body/> a client's Resend needs.
func TestRefusedGroupchatEchoesBody(t *testing.T) {
	e, ga := gatedEnv(t)
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "bouncy", alice, bob)
	ga.fail.Store(true)
	m := client.Message(room, "groupchat", "resend me")
	m.CreateAttr("id", "r1")
	bob.Send(tctx(t), m)
	el := bob.next()
	expectError(t, el, "internal-server-error")
	if b, _ := childText(el, "body"); b != "resend me" {
		t.Fatalf("the bounce does not echo the body: %s", xmpp.String(el))
	}
	alice.quiet()
}

// gatedStore blocks SetConfig, once armed, until the gate is closed, and
// says when a call is waiting.
type gatedStore struct {
	rooms.Store
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) SetConfig(ctx context.Context, r xmpp.JID, c rooms.Config, v string) (string, error) {
	if g.armed.Load() {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.SetConfig(ctx, r, c, v)
}

// stanza parses a stanza as the router would hand it to the hub.
func stanza(t *testing.T, el *etree.Element, from string) *xmpp.Stanza {
	t.Helper()
	el.CreateAttr("from", from)
	st, toErr, fromErr := xmpp.NewStanza(el)
	if toErr != nil || fromErr != nil {
		t.Fatal(toErr, fromErr)
	}
	return st
}

// Defect 7: RemoveUser told a loaded room actor best effort, so with its
// mailbox full the notice was dropped and the actor's cached occupants
// still let the removed user talk.
func TestRemoveUserReachesBusyRoom(t *testing.T) {
	gs := &gatedStore{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	e := newEnvFull(t, func(o *rooms.Options) { o.CacheAffs, o.CacheAffsTTL = true, time.Hour },
		func(s rooms.Store) rooms.Store { gs.Store = s; return gs },
		rooms.HubOptions{MailboxSize: 1}, []string{"localhost"})
	waiting := make(chan struct{}, 1)
	rooms.SetWaitHook(e.hub, func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := createRoom(t, "busy", alice, bob, kate)
	gs.armed.Store(true)
	set := client.IQ("set", room, query(rooms.NSConfiguration, "<subject>stuck</subject>"))
	set.CreateAttr("id", "stuck")
	alice.Send(tctx(t), set)
	<-gs.entered // the actor is inside SetConfig; its mailbox is empty
	gs.armed.Store(false)
	m := client.Message(room, "groupchat", "filler")
	m.CreateAttr("id", "filler")
	e.hub.HandleStanza(tctx(t), stanza(t, m, "bob@localhost/res")) // the mailbox is full now
	removed := make(chan error, 1)
	go func() { removed <- e.hub.RemoveUser(context.Background(), xmpp.MustParseJID("kate@localhost")) }()
	var err error
	select {
	case err = <-removed: // it did not wait for the full mailbox
		close(gs.gate)
	case <-waiting:
		close(gs.gate)
		err = <-removed
	}
	if err != nil {
		t.Fatal(err)
	}
	k := client.Message(room, "groupchat", "still in?")
	k.CreateAttr("id", "kate")
	kate.Send(tctx(t), k)
	for {
		el := kate.next()
		if el.SelectAttrValue("id", "") == "kate" {
			expectError(t, el, "item-not-found")
			return
		}
	}
}

// Defect 8: rooms_per_user was checked and written in separate steps by
// each room's actor, so a burst of creates all passed the check.
func TestRoomsPerUserConcurrentCreates(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.RoomsPerUser = 3; o.CreateRate = 0 })
	alice := e.login("alice")
	const n = 40
	for i := range n {
		iq := client.IQ("set", fmt.Sprintf("burst%d@%s", i, svc), query(rooms.NSCreate, ""))
		iq.CreateAttr("id", fmt.Sprintf("c%d", i))
		alice.Send(tctx(t), iq)
	}
	ok, refused := 0, 0
	for ok+refused < n {
		el := alice.next()
		switch {
		case el.Tag == "iq" && el.SelectAttrValue("type", "") == "result":
			ok++
		case el.Tag == "iq":
			refused++
		}
	}
	if cnt, _ := e.store.GetUserRoomsCount(tctx(t), xmpp.MustParseJID("alice@localhost"), svc); ok != 3 || cnt != 3 {
		t.Fatalf("%d creates succeeded, alice is in %d rooms; the cap is 3", ok, cnt)
	}
}

// Defect 8: three owners adding one user at once put him over his cap.
func TestRoomsPerUserConcurrentAdds(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.RoomsPerUser = 3; o.CreateRate = 0 })
	owners := e.logins("alice", "bob", "kate")
	var rs [][]string
	for _, o := range owners {
		rs = append(rs, []string{createRoom(t, o.name+"1", o), createRoom(t, o.name+"2", o)})
	}
	for i, o := range owners {
		for _, r := range rs[i] {
			iq := client.IQ("set", r, query(rooms.NSAffiliations, "<user affiliation='member'>mike@localhost</user>"))
			iq.CreateAttr("id", "add-"+r)
			o.Send(tctx(t), iq)
		}
	}
	for _, o := range owners {
		for got := 0; got < 2; {
			if el := o.next(); el.Tag == "iq" {
				got++
			}
		}
	}
	if cnt, _ := e.store.GetUserRoomsCount(tctx(t), xmpp.MustParseJID("mike@localhost"), svc); cnt > 3 {
		t.Fatalf("mike is in %d rooms; the cap is 3", cnt)
	}
}

// Defect 11: a per-room limiter override written with the room JID as the
// operator typed it was never found, as rooms are looked up canonically.
func TestLimiterOverrideKeyIsCanonical(t *testing.T) {
	frozen := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l := rooms.DefaultLimits()
	l.Rooms = map[string]rooms.RateOverride{"Loud@MUCLIGHT.localhost": {EventRate: 10, BurstFactor: 10}}
	e := newEnvFull(t, nil, nil, rooms.HubOptions{Limits: l, Now: func() time.Time { return frozen }}, []string{"localhost"})
	alice := e.login("alice")
	room := createRoom(t, "loud", alice)
	for i := range 10 { // the default bucket holds 3
		m := client.Message(room, "groupchat", "hey")
		m.CreateAttr("id", fmt.Sprintf("l%d", i))
		alice.Send(tctx(t), m)
		if el := alice.next(); el.SelectAttrValue("type", "") != "groupchat" {
			t.Fatalf("message %d refused despite the override: %s", i, xmpp.String(el))
		}
	}
}

// Defect 11: disco#items sent to a room answered with the requester's own
// room list. A room has no items; a missing room is item-not-found.
func TestRoomDiscoItems(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	room := createRoom(t, "itemless", alice)
	createRoom(t, "other", alice)
	res := alice.iq("get", room, xmpp.Elem("query", xmpp.NSDiscoItems))
	expectResult(t, res, room)
	if q := xmpp.Child(res, "query", xmpp.NSDiscoItems); q == nil || len(q.ChildElements()) != 0 {
		t.Fatalf("room disco#items: %s", xmpp.String(res))
	}
	expectError(t, alice.iq("get", "nowhere@"+svc, xmpp.Elem("query", xmpp.NSDiscoItems)), "item-not-found")
}

// Defect 11: when archiving a room event failed, its notifications still
// went out as if it had been recorded; the requester must get the error.
func TestRoomEventArchiveFailure(t *testing.T) {
	e, ga := gatedEnv(t)
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "unrecorded", alice)
	ga.fail.Store(true)
	expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>bob@localhost</user>")), "internal-server-error")
	bob.quiet()
	alice.quiet()
}

// deadlineStore records how far ahead the deadline of a store call was.
type deadlineStore struct {
	rooms.Store
	ahead atomic.Int64
}

func (d *deadlineStore) GetConfig(ctx context.Context, r xmpp.JID) (rooms.Config, string, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.ahead.Store(int64(time.Until(dl)))
	}
	return d.Store.GetConfig(ctx, r)
}

// Defect 11: room actors bounded store calls by a hard-coded 10 s whatever
// op_timeout said.
func TestStoreTimeoutIsConfigured(t *testing.T) {
	ds := &deadlineStore{}
	e := newEnvFull(t, nil, func(s rooms.Store) rooms.Store { ds.Store = s; return ds },
		rooms.HubOptions{StoreTimeout: 200 * time.Millisecond}, []string{"localhost"})
	alice := e.login("alice")
	room := createRoom(t, "timed", alice)
	expectResult(t, alice.iq("get", room, query(rooms.NSConfiguration, "")), room)
	if ahead := time.Duration(ds.ahead.Load()); ahead <= 0 || ahead > 200*time.Millisecond {
		t.Fatalf("store call deadline %v ahead, want at most the configured 200ms", ahead)
	}
}

// gatedEnv is a server with history on whose archive the test can hold or
// make fail.
func gatedEnv(t *testing.T) (*env, *gatedArchive) {
	t.Helper()
	var ga *gatedArchive
	_, ho := mamHub(false)
	e := newEnvArchive(t, nil, nil, ho, []string{"localhost"}, func(a rooms.Archive) rooms.Archive {
		ga = newGatedArchive(a)
		return ga
	})
	return e, ga
}

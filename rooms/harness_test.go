package rooms_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/goleak"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const svc = "muclight.localhost"

// env is a WebSocket endpoint with the MUC Light hub on a fresh embedded
// store, served on 127.0.0.1:0, with users alice, bob, kate, mike and carol.
type env struct {
	t       *testing.T
	url     string
	store   rooms.Store
	hub     *rooms.Hub
	archive rooms.Archive // nil without history
}

type faultyStore struct {
	rooms.Store
	fail func() bool
}

var errInjected = errorString("injected store failure")

type errorString string

func (e errorString) Error() string { return string(e) }

func (f faultyStore) GetUserRooms(ctx context.Context, u xmpp.JID, s string) ([]rooms.RoomInfo, error) {
	if f.fail() {
		return nil, errInjected
	}
	return f.Store.GetUserRooms(ctx, u, s)
}

func (f faultyStore) SetConfig(ctx context.Context, r xmpp.JID, c rooms.Config, v string) (string, error) {
	if f.fail() {
		return "", errInjected
	}
	return f.Store.SetConfig(ctx, r, c, v)
}

func newEnv(t *testing.T, tweak func(*rooms.Options)) *env {
	return newEnvWith(t, tweak, nil)
}

func newEnvWith(t *testing.T, tweak func(*rooms.Options), wrap func(rooms.Store) rooms.Store) *env {
	return newEnvFull(t, tweak, wrap, rooms.HubOptions{}, []string{"localhost"})
}

func newEnvFull(t *testing.T, tweak func(*rooms.Options), wrap func(rooms.Store) rooms.Store, ho rooms.HubOptions, hosts []string) *env {
	t.Helper()
	return newEnvArchive(t, tweak, wrap, ho, hosts, nil)
}

// newEnvArchive is newEnvFull with history in the embedded store seen
// through wrapArchive (nil: as it is), for archives that stall or fail.
func newEnvArchive(t *testing.T, tweak func(*rooms.Options), wrap func(rooms.Store) rooms.Store, ho rooms.HubOptions, hosts []string, wrapArchive func(rooms.Archive) rooms.Archive) *env {
	t.Helper()
	return newNode(t, boltBacking(newStore(t, hosts)), tweak, wrap, ho, hosts, wrapArchive)
}

// backing is what a node stores in: accounts, rooms and history, on one
// backend or another.
type backing struct {
	accounts account.Store
	rooms    rooms.Store
	archive  rooms.Archive
}

func boltBacking(st *boltstore.Store) backing { return backing{st, st, st.Archive()} }

// newStore opens a fresh embedded store with the test users of hosts, closed
// when the test ends (after the nodes on it, whose cleanups run first).
func newStore(t *testing.T, hosts []string) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, host := range hosts {
		for _, u := range []string{"alice", "bob", "kate", "mike", "carol"} {
			rec, _ := account.New(xmpp.MustParseJID(u+"@"+host), "pw")
			if err := st.CreateAccount(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// newNode serves a WebSocket endpoint and a hub on st, as one node of a
// cluster would: several nodes may share one store.
func newNode(t *testing.T, st backing, tweak func(*rooms.Options), wrap func(rooms.Store) rooms.Store, ho rooms.HubOptions, hosts []string, wrapArchive func(rooms.Archive) rooms.Archive) *env {
	t.Helper()
	opts := rooms.DefaultOptions()
	if tweak != nil {
		tweak(&opts)
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wcfg := ws.Defaults()
	wcfg.Hosts = hosts
	// Room tests send bursts from one session to drive the room's own
	// queues; the ingress shaper (tested in ws/) would pace them first.
	wcfg.Shaper = ws.ShaperConfig{}
	srv := ws.New(wcfg, st.accounts, ws.Options{Logger: log})
	rs := st.rooms
	if wrap != nil {
		rs = wrap(st.rooms)
	}
	ho.Logger = log
	if ho.MAM.DefaultPageSize > 0 && ho.MAM.Archive == nil {
		ho.MAM.Archive = st.archive // history in the same store
		if wrapArchive != nil {
			ho.MAM.Archive = wrapArchive(ho.MAM.Archive)
		}
	}
	hub := rooms.NewHub(opts, hosts, rs, srv.Router(), ho)
	for s, host := range hub.Services() {
		srv.Router().RegisterService(host, s, hub.DiscoNode(), hub)
	}
	if opts.LegacyMode {
		srv.Router().HandleAccountIQ(rooms.NSPrivacy, hub)
	}
	srv.Router().AddRosterSource(hub)
	// As server/app.go: a session's end ends its XEP-0045 occupancies.
	srv.Router().AddSessionWatcher(hub)
	mux := http.NewServeMux()
	mux.Handle("/xmpp-websocket", srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hub.Close()
		hs.Close()
	})
	return &env{t: t, url: "ws://" + ln.Addr().String() + "/xmpp-websocket", store: st.rooms, hub: hub, archive: ho.MAM.Archive}
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// user is a logged-in test client with protocol helpers.
type user struct {
	*client.Client
	t    *testing.T
	name string
	bare string
}

func (e *env) login(name string) *user { return e.loginAt(name, "localhost") }

func (e *env) loginAt(name, host string) *user {
	e.t.Helper()
	c, err := client.Login(tctx(e.t), e.url, xmpp.MustParseJID(name+"@"+host+"/res"), "pw")
	if err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return &user{Client: c, t: e.t, name: name, bare: name + "@" + host}
}

func (e *env) logins(names ...string) []*user {
	out := make([]*user, len(names))
	for i, n := range names {
		out[i] = e.login(n)
	}
	return out
}

// next returns the next element, failing the test on timeout.
func (u *user) next() *etree.Element {
	u.t.Helper()
	el, err := u.Next(tctx(u.t))
	if err != nil {
		u.t.Fatalf("%s: waiting for a stanza: %v", u.name, err)
	}
	return el
}

// quiet asserts nothing is waiting for u: a ping round trip comes back with
// nothing before it.
func (u *user) quiet() {
	u.t.Helper()
	id := "quiet-check"
	u.Send(tctx(u.t), func() *etree.Element {
		iq := client.IQ("get", "localhost", xmpp.Elem("ping", xmpp.NSPing))
		iq.CreateAttr("id", id)
		return iq
	}())
	el := u.next()
	if el.SelectAttrValue("id", "") != id {
		u.t.Fatalf("%s: unexpected %s", u.name, xmpp.String(el))
	}
}

// iq sends an iq and returns the next element, which must be its answer.
func (u *user) iq(typ, to string, payload *etree.Element) *etree.Element {
	u.t.Helper()
	iq := client.IQ(typ, to, payload)
	id := fmt.Sprintf("iq-%d", idSeq.Add(1))
	iq.CreateAttr("id", id)
	if err := u.Send(tctx(u.t), iq); err != nil {
		u.t.Fatal(err)
	}
	return u.next()
}

var idSeq atomic.Int64

// query builds <query xmlns=ns> with children given as raw XML.
var query = client.Query

// expectResult checks el is an iq result, from 'from', answering id.
func expectResult(t *testing.T, el *etree.Element, from string) {
	t.Helper()
	if el.Tag != "iq" || el.SelectAttrValue("type", "") != "result" {
		t.Fatalf("want iq result, got %s", xmpp.String(el))
	}
	if from != "" && el.SelectAttrValue("from", "") != from {
		t.Fatalf("result from %s, want %s", el.SelectAttrValue("from", ""), from)
	}
}

// expectError checks el is an error of the given condition.
func expectError(t *testing.T, el *etree.Element, cond string) {
	t.Helper()
	se := client.ErrorOf(el)
	if el.SelectAttrValue("type", "") != "error" || se == nil || se.Condition != cond {
		t.Fatalf("want %s error, got %s", cond, xmpp.String(el))
	}
}

// affsOf reads <user affiliation=..>jid</user> items as "jid=aff" sorted.
func affsOf(x *etree.Element) string {
	var out []string
	for _, u := range x.ChildElements() {
		if u.Tag == "user" {
			out = append(out, u.Text()+"="+u.SelectAttrValue("affiliation", ""))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func childText(el *etree.Element, name string) (string, bool) {
	for _, c := range el.ChildElements() {
		if c.Tag == name {
			return c.Text(), true
		}
	}
	return "", false
}

// notif checks el is a MUC Light notification from room with the iq id and
// returns its x payload of namespace ns.
func notif(t *testing.T, el *etree.Element, room, id, ns string) *etree.Element {
	t.Helper()
	if el.Tag != "message" || el.SelectAttrValue("type", "") != "groupchat" || el.SelectAttrValue("from", "") != room {
		t.Fatalf("want groupchat notification from %s, got %s", room, xmpp.String(el))
	}
	if id != "" && el.SelectAttrValue("id", "") != id {
		t.Fatalf("notification id %s, want %s", el.SelectAttrValue("id", ""), id)
	}
	x := xmpp.Child(el, "x", ns)
	if x == nil {
		t.Fatalf("notification without %s payload: %s", ns, xmpp.String(el))
	}
	if xmpp.Child(el, "body", xmpp.NSClient) == nil {
		t.Errorf("notification without <body/>: %s", xmpp.String(el))
	}
	return x
}

// createRoom makes room@svc owned by owner with the given members and
// consumes every notification and the result.
func createRoom(t *testing.T, room string, owner *user, members ...*user) string {
	t.Helper()
	var occ strings.Builder
	for _, m := range members {
		occ.WriteString("<user affiliation='member'>" + m.bare + "</user>")
	}
	jid := room + "@" + svc
	res := owner.iq("set", jid, query(rooms.NSCreate, "<occupants>"+occ.String()+"</occupants>"))
	notif(t, res, jid, "", rooms.NSAffiliations)
	expectResult(t, owner.next(), jid)
	for _, m := range members {
		notif(t, m.next(), jid, "", rooms.NSAffiliations)
	}
	return jid
}

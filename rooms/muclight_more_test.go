package rooms_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// Checklist: set config: the owner may; members only the subject (or all
// with all_can_configure); deltas keep other fields; reserved and unknown
// fields and wrong types are bad-request; every occupant gets the change
// with prev-version and version before the result.
func TestSetConfig(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) {
		o.Schema = append(o.Schema, rooms.SchemaField{Name: "max-age", InternalKey: "age", Type: rooms.IntegerField, Default: "7"},
			rooms.SchemaField{Name: "ratio", InternalKey: "ratio", Type: rooms.FloatField, Default: "0.5"})
	})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "conf", alice, bob)
	before := alice.iq("get", room, query(rooms.NSConfiguration, ""))
	v0, _ := childText(xmpp.Child(before, "query", rooms.NSConfiguration), "version")

	iq := client.IQ("set", room, query(rooms.NSConfiguration, "<roomname>A Darker Cave</roomname><max-age>+12</max-age>"))
	iq.CreateAttr("id", "conf2")
	alice.Send(tctx(t), iq)
	var v1 string
	for _, u := range []*user{alice, bob} {
		x := notif(t, u.next(), room, "conf2", rooms.NSConfiguration)
		prev, _ := childText(x, "prev-version")
		v1, _ = childText(x, "version")
		name, _ := childText(x, "roomname")
		age, _ := childText(x, "max-age")
		if prev != v0 || v1 == "" || v1 == v0 || name != "A Darker Cave" || age != "12" {
			t.Errorf("%s: notification %s (prev want %s)", u.name, xmpp.String(x), v0)
		}
		if _, ok := childText(x, "subject"); ok {
			t.Errorf("unchanged field echoed: %s", xmpp.String(x))
		}
	}
	expectResult(t, alice.next(), room)

	// A member may change the subject alone, and the name survives.
	res := bob.iq("set", room, query(rooms.NSConfiguration, "<subject>Harpier</subject>"))
	notif(t, res, room, "", rooms.NSConfiguration)
	expectResult(t, bob.next(), room)
	notif(t, alice.next(), room, "", rooms.NSConfiguration)
	cfg := xmpp.Child(bob.iq("get", room, query(rooms.NSConfiguration, "")), "query", rooms.NSConfiguration)
	if n, _ := childText(cfg, "roomname"); n != "A Darker Cave" {
		t.Errorf("delta lost roomname: %q", n)
	}
	if s, _ := childText(cfg, "subject"); s != "Harpier" {
		t.Errorf("subject %q", s)
	}
	if r, _ := childText(cfg, "ratio"); r != "0.5" {
		t.Errorf("float default %q", r)
	}

	expectError(t, bob.iq("set", room, query(rooms.NSConfiguration, "<roomname>Mine</roomname>")), "not-allowed")
	for _, bad := range []string{"<version>x</version>", "<prev-version>x</prev-version>", "<colour>red</colour>",
		"<max-age>twelve</max-age>", "<ratio>half</ratio>", "<roomname><b>x</b></roomname>"} {
		expectError(t, alice.iq("set", room, query(rooms.NSConfiguration, bad)), "bad-request")
	}
	alice.quiet()
	bob.quiet()
}

func TestAllCanConfigure(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.AllCanConfigure = true })
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "open", alice, bob)
	res := bob.iq("set", room, query(rooms.NSConfiguration, "<roomname>Bob's</roomname>"))
	notif(t, res, room, "", rooms.NSConfiguration)
	expectResult(t, bob.next(), room)
}

// Checklist: affiliation changes by the owner (add, remove, promote with
// the old owner becoming member); notifications: stayers get the full
// change list with prev-version/version, newcomers their own item and the
// version, removed users their own none; all before the result.
func TestOwnerChangesAffiliations(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate, mike := e.login("alice"), e.login("bob"), e.login("kate"), e.login("mike")
	room := createRoom(t, "affs", alice, bob, kate)
	v0, _ := childText(xmpp.Child(alice.iq("get", room, query(rooms.NSAffiliations, "")), "query", rooms.NSAffiliations), "version")

	iq := client.IQ("set", room, query(rooms.NSAffiliations,
		"<user affiliation='member'>mike@localhost</user><user affiliation='owner'>kate@localhost</user><user affiliation='none'>bob@localhost</user>"))
	iq.CreateAttr("id", "member1")
	alice.Send(tctx(t), iq)
	const want = "alice@localhost=member,bob@localhost=none,kate@localhost=owner,mike@localhost=member"
	var v1 string
	for _, u := range []*user{alice, kate} {
		x := notif(t, u.next(), room, "member1", rooms.NSAffiliations)
		prev, _ := childText(x, "prev-version")
		v1, _ = childText(x, "version")
		if affsOf(x) != want || prev != v0 || v1 == "" || v1 == v0 {
			t.Errorf("stayer %s: %s", u.name, xmpp.String(x))
		}
	}
	expectResult(t, alice.next(), room)
	x := notif(t, mike.next(), room, "member1", rooms.NSAffiliations)
	if _, ok := childText(x, "prev-version"); ok || affsOf(x) != "mike@localhost=member" {
		t.Errorf("newcomer: %s", xmpp.String(x))
	}
	if v, _ := childText(x, "version"); v != v1 {
		t.Errorf("newcomer version %s, want %s", v, v1)
	}
	x = notif(t, bob.next(), room, "member1", rooms.NSAffiliations)
	if _, ok := childText(x, "version"); ok || affsOf(x) != "bob@localhost=none" {
		t.Errorf("removed: %s", xmpp.String(x))
	}
	// Alice is a member now: she can no longer add people.
	expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>carol@localhost</user>")), "not-allowed")
	for _, u := range []*user{alice, bob, kate, mike} {
		u.quiet()
	}
}

// Checklist: members may leave; may add members only with all_can_invite
// (never owners, never removals); no-op items and repeated JIDs are
// bad-request.
func TestMemberAffiliationRights(t *testing.T) {
	for _, allCanInvite := range []bool{false, true} {
		t.Run(fmt.Sprintf("all_can_invite=%v", allCanInvite), func(t *testing.T) {
			e := newEnv(t, func(o *rooms.Options) { o.AllCanInvite = allCanInvite })
			alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
			room := createRoom(t, "rights", alice, bob, kate)
			for _, item := range []string{
				"<user affiliation='none'>kate@localhost</user>",
				"<user affiliation='owner'>bob@localhost</user>",
				"<user affiliation='owner'>mike@localhost</user>",
				"<user affiliation='member'>alice@localhost</user>",
			} {
				expectError(t, bob.iq("set", room, query(rooms.NSAffiliations, item)), "not-allowed")
			}
			invite := bob.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>mike@localhost</user>"))
			if !allCanInvite {
				expectError(t, invite, "not-allowed")
			} else {
				notif(t, invite, room, "", rooms.NSAffiliations)
				expectResult(t, bob.next(), room)
				alice.next()
				kate.next()
			}
			expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>kate@localhost</user>")), "bad-request")
			expectError(t, alice.iq("set", room, query(rooms.NSAffiliations,
				"<user affiliation='member'>carol@localhost</user><user affiliation='none'>carol@localhost</user>")), "bad-request")
			expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='none'>carol@localhost</user>")), "bad-request")
			// Leaving is always allowed.
			res := kate.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='none'>kate@localhost</user>"))
			notif(t, res, room, "", rooms.NSAffiliations)
			expectResult(t, kate.next(), room)
		})
	}
}

// Checklist: when the owner leaves without naming a successor, the member
// who has been in the room longest becomes owner.
func TestOwnerLeavingHandsOver(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate, mike := e.login("alice"), e.login("bob"), e.login("kate"), e.login("mike")
	room := createRoom(t, "heir", alice, mike) // mike joins first
	res := alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>bob@localhost</user><user affiliation='member'>kate@localhost</user>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	expectResult(t, alice.next(), room)
	mike.next()
	bob.next()
	kate.next()
	res = alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='none'>alice@localhost</user>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	expectResult(t, alice.next(), room)
	x := notif(t, bob.next(), room, "", rooms.NSAffiliations)
	if got := affsOf(x); got != "alice@localhost=none,mike@localhost=owner" {
		t.Errorf("handover announced as %s, want mike (the longest-standing member) as owner", got)
	}
}

// Checklist: blocking: get/set room and user items with deny/allow; an
// addition of a user who blocked the room or the acting user is skipped.
func TestBlocking(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := createRoom(t, "blocky", alice, kate)
	empty := bob.iq("get", svc, query(rooms.NSBlocking, ""))
	if q := xmpp.Child(empty, "query", rooms.NSBlocking); q == nil || len(q.ChildElements()) != 0 {
		t.Fatalf("empty list: %s", xmpp.String(empty))
	}
	expectResult(t, bob.iq("set", svc, query(rooms.NSBlocking,
		"<room action='deny'>"+room+"</room><user action='deny'>kate@localhost</user><user action='deny'>mike@localhost</user>")), svc)
	expectResult(t, bob.iq("set", svc, query(rooms.NSBlocking, "<user action='allow'>mike@localhost</user>")), svc)
	list := bob.iq("get", svc, query(rooms.NSBlocking, ""))
	got := xmpp.String(xmpp.Child(list, "query", rooms.NSBlocking))
	if !strings.Contains(got, "<room action='deny'>"+room+"</room>") || !strings.Contains(got, "<user action='deny'>kate@localhost</user>") || strings.Contains(got, "mike") {
		t.Errorf("list %s", got)
	}
	// Alice adding bob to the blocked room: skipped, empty result, nothing sent.
	expectResult(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>bob@localhost</user>")), room)
	// Kate creating a room with bob: bob is skipped (he blocked kate).
	other := "other@" + svc
	res := kate.iq("set", other, query(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))
	if x := notif(t, res, other, "", rooms.NSAffiliations); affsOf(x) != "kate@localhost=owner" {
		t.Errorf("create: %s", affsOf(x))
	}
	expectResult(t, kate.next(), other)
	// Alice creating another room with bob works.
	createRoom(t, "third", alice, bob)
	for _, bad := range []string{"<room action='deny'>localhost</room>", "<user action='block'>x@localhost</user>", "<item action='deny'>x@localhost</item>"} {
		expectError(t, bob.iq("set", svc, query(rooms.NSBlocking, bad)), "bad-request")
	}
	bob.quiet()
	alice.quiet()
	kate.quiet()
}

func TestBlockingDisabled(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.Blocking = false })
	bob := e.login("bob")
	for _, typ := range []string{"get", "set"} {
		res := bob.iq(typ, svc, query(rooms.NSBlocking, "<user action='deny'>kate@localhost</user>"))
		expectError(t, res, "bad-request")
		if se := client.ErrorOf(res); se.Type != "modify" {
			t.Errorf("type %s, want modify", se.Type)
		}
	}
}

// Checklist: rooms_in_rosters: each room appears with name, subscription
// to, group urn:xmpp:muclight:0 and the version.
func TestRoomsInRosters(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			e := newEnv(t, func(o *rooms.Options) { o.RoomsInRosters = on })
			alice := e.login("alice")
			room := createRoom(t, "rostered", alice)
			r := xmpp.Child(alice.iq("get", "", xmpp.Elem("query", xmpp.NSRoster)), "query", xmpp.NSRoster)
			items := xmpp.Children(r, "item", xmpp.NSRoster)
			if !on {
				if len(items) != 0 {
					t.Errorf("rooms in roster with the option off: %s", xmpp.String(r))
				}
				return
			}
			if len(items) != 1 {
				t.Fatalf("roster %s", xmpp.String(r))
			}
			it := items[0]
			g, _ := childText(it, "group")
			v, _ := childText(it, "version")
			if it.SelectAttrValue("jid", "") != room || it.SelectAttrValue("name", "") != "Untitled" ||
				it.SelectAttrValue("subscription", "") != "to" || g != rooms.NS || v == "" {
				t.Errorf("item %s", xmpp.String(it))
			}
		})
	}
}

// Checklist: caps: a create over max_occupants or beyond the creator's
// rooms_per_user, and an affiliation change over max_occupants, are
// refused whole with bad-request; an added user at their cap is skipped.
func TestCaps(t *testing.T) {
	t.Run("max_occupants", func(t *testing.T) {
		e := newEnv(t, func(o *rooms.Options) { o.MaxOccupants = 2 })
		alice, bob := e.login("alice"), e.login("bob")
		res := alice.iq("set", "big@"+svc, query(rooms.NSCreate,
			"<occupants><user affiliation='member'>bob@localhost</user><user affiliation='member'>kate@localhost</user></occupants>"))
		expectError(t, res, "bad-request")
		room := createRoom(t, "small", alice, bob)
		expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>kate@localhost</user>")), "bad-request")
		alice.quiet()
		bob.quiet()
	})
	t.Run("rooms_per_user", func(t *testing.T) {
		e := newEnv(t, func(o *rooms.Options) { o.RoomsPerUser = 1 })
		alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
		createRoom(t, "first", alice)
		expectError(t, alice.iq("set", "second@"+svc, query(rooms.NSCreate, "")), "bad-request")
		createRoom(t, "kates", kate)
		// bob is free; kate is at her cap and is skipped silently.
		room := "mixed@" + svc
		res := bob.iq("set", room, query(rooms.NSCreate, "<occupants><user affiliation='member'>kate@localhost</user></occupants>"))
		if x := notif(t, res, room, "", rooms.NSAffiliations); affsOf(x) != "bob@localhost=owner" {
			t.Errorf("create: %s", affsOf(x))
		}
		expectResult(t, bob.next(), room)
		kate.quiet()
	})
}

// Checklist: equal_occupants: the creator is a member, owners cannot be
// named, nobody may destroy.
func TestEqualOccupants(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.EqualOccupants = true })
	alice, bob := e.login("alice"), e.login("bob")
	room := "flat@" + svc
	res := alice.iq("set", room, query(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))
	if x := notif(t, res, room, "", rooms.NSAffiliations); affsOf(x) != "alice@localhost=member" {
		t.Errorf("creator: %s", affsOf(x))
	}
	expectResult(t, alice.next(), room)
	bob.next()
	expectError(t, alice.iq("set", "flat2@"+svc, query(rooms.NSCreate, "<occupants><user affiliation='owner'>bob@localhost</user></occupants>")), "bad-request")
	expectError(t, alice.iq("set", room, query(rooms.NSDestroy, "")), "not-allowed")
	expectError(t, alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='owner'>bob@localhost</user>")), "not-allowed")
}

// Checklist: disco#items lists the requester's rooms sorted by JID with
// name and version, paged with RSM; rooms_per_page "infinity" disables paging.
func TestDiscoItemsPaging(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.RoomsPerPage = 2 })
	alice, bob := e.login("alice"), e.login("bob")
	for _, r := range []string{"c", "a", "d", "b", "e"} {
		createRoom(t, r, alice)
	}
	createRoom(t, "bobs", bob)
	page := func(rsm string) (items []string, set string) {
		res := alice.iq("get", svc, query(xmpp.NSDiscoItems, rsm))
		expectResult(t, res, svc)
		q := xmpp.Child(res, "query", xmpp.NSDiscoItems)
		for _, it := range xmpp.Children(q, "item", xmpp.NSDiscoItems) {
			if it.SelectAttrValue("version", "") == "" || it.SelectAttrValue("name", "") != "Untitled" {
				t.Errorf("item %s", xmpp.String(it))
			}
			items = append(items, strings.TrimSuffix(it.SelectAttrValue("jid", ""), "@"+svc))
		}
		if s := xmpp.Child(q, "set", xmpp.NSRSM); s != nil {
			f := xmpp.Child(s, "first", xmpp.NSRSM)
			l, _ := childText(s, "last")
			c, _ := childText(s, "count")
			if f != nil {
				set = fmt.Sprintf("%s@%s-%s/%s", strings.TrimSuffix(f.Text(), "@"+svc), f.SelectAttrValue("index", ""), strings.TrimSuffix(l, "@"+svc), c)
			} else {
				set = "/" + c
			}
		}
		return strings.Split(strings.Join(items, ","), ","), set
	}
	for _, tc := range []struct{ rsm, items, set string }{
		{"", "a,b", "a@0-b/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>", "a,b", "a@0-b/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>b@" + svc + "</after></set>", "c,d", "c@2-d/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>d@" + svc + "</after></set>", "e", "e@4-e/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>", "d,e", "d@3-e/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before>c@" + svc + "</before></set>", "a,b", "a@0-b/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>1</max><index>2</index></set>", "c", "c@2-c/5"},
		{"<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>", "", "/5"},
	} {
		items, set := page(tc.rsm)
		if strings.Join(items, ",") != tc.items || set != tc.set {
			t.Errorf("rsm %q: items %v set %s, want %s %s", tc.rsm, items, set, tc.items, tc.set)
		}
	}
	expectError(t, alice.iq("get", svc, query(xmpp.NSDiscoItems, "<set xmlns='http://jabber.org/protocol/rsm'><after>oops@"+svc+"</after></set>")), "item-not-found")
	expectError(t, alice.iq("get", svc, query(xmpp.NSDiscoItems, "<set xmlns='http://jabber.org/protocol/rsm'><index>9</index></set>")), "item-not-found")

	e2 := newEnv(t, func(o *rooms.Options) { o.RoomsPerPage, o.CreateRate = 0, 0 }) // carol creates 12 rooms
	carol := e2.login("carol")
	for i := 0; i < 12; i++ {
		createRoom(t, fmt.Sprintf("r%02d", i), carol)
	}
	res := carol.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoItems))
	q := xmpp.Child(res, "query", xmpp.NSDiscoItems)
	if n := len(xmpp.Children(q, "item", xmpp.NSDiscoItems)); n != 12 || xmpp.Child(q, "set", xmpp.NSRSM) != nil {
		t.Errorf("infinity: %d items, set present %v", n, xmpp.Child(q, "set", xmpp.NSRSM) != nil)
	}
}

// Checklist: a schema without roomname: disco and roster names fall back to
// the room's node; internal_key maps wire fields to stored keys.
func TestCustomSchema(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) {
		o.RoomsInRosters = true
		o.Schema = rooms.Schema{{Name: "background", InternalKey: "bg", Type: rooms.StringField, Default: "builtin:hell"},
			{Name: "music", InternalKey: "music", Type: rooms.StringField, Default: "builtin:screams"}}
	})
	alice := e.login("alice")
	room := createRoom(t, "noname", alice)
	it := xmpp.Child(xmpp.Child(alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoItems)), "query", xmpp.NSDiscoItems), "item", xmpp.NSDiscoItems)
	if it.SelectAttrValue("name", "") != "noname" {
		t.Errorf("disco name %q", it.SelectAttrValue("name", ""))
	}
	expectError(t, alice.iq("set", room, query(rooms.NSConfiguration, "<roomname>x</roomname>")), "bad-request")
	res := alice.iq("set", room, query(rooms.NSConfiguration, "<background>stars</background>"))
	notif(t, res, room, "", rooms.NSConfiguration)
	alice.next()
	cfg, _, err := e.store.GetConfig(tctx(t), xmpp.MustParseJID(room))
	if err != nil || cfg["bg"] != "stars" || cfg["music"] != "builtin:screams" {
		t.Errorf("stored config %v %v", cfg, err)
	}
}

// Checklist: a store failure is answered with internal-server-error, never
// a silent drop, and the service works again when the store recovers.
func TestStoreFailureIsReported(t *testing.T) {
	var failing atomic.Bool
	e := newEnvWith(t, nil, func(s rooms.Store) rooms.Store { return faultyStore{Store: s, fail: failing.Load} })
	alice := e.login("alice")
	room := createRoom(t, "fragile", alice)
	failing.Store(true)
	expectError(t, alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoItems)), "internal-server-error")
	expectError(t, alice.iq("set", room, query(rooms.NSConfiguration, "<subject>x</subject>")), "internal-server-error")
	failing.Store(false)
	res := alice.iq("set", room, query(rooms.NSConfiguration, "<subject>x</subject>"))
	notif(t, res, room, "", rooms.NSConfiguration)
	expectResult(t, alice.next(), room)
}

// Requests that belong to rooms are refused at the service, resources on
// room JIDs are refused, and unknown payloads get service-unavailable.
func TestMisaddressedRequests(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	room := createRoom(t, "addr", alice)
	expectError(t, alice.iq("get", svc, query(rooms.NSConfiguration, "")), "bad-request")
	expectError(t, alice.iq("get", room+"/x", query(rooms.NSConfiguration, "")), "bad-request")
	expectError(t, alice.iq("get", room, xmpp.Elem("query", "urn:example:unknown")), "service-unavailable")
	expectError(t, alice.iq("get", room, query(rooms.NSDestroy, "")), "bad-request")
	expectError(t, alice.iq("set", room, query(rooms.NSInfo, "")), "bad-request")
	expectResult(t, alice.iq("get", room, query(rooms.NSInfo, "")), room) // still there
	m := client.Message(svc, "groupchat", "to the service")
	m.CreateAttr("id", "svcmsg")
	alice.Send(tctx(t), m)
	expectError(t, alice.next(), "bad-request")
}

// Option host with @HOST@: every served domain gets its own service, listed
// in that domain's disco#items and serving that domain's users.
func TestServicePerHost(t *testing.T) {
	e := newEnvFull(t, func(o *rooms.Options) { o.Host = "groups.@HOST@" }, nil, rooms.HubOptions{}, []string{"localhost", "example.net"})
	alice := e.loginAt("alice", "example.net")
	items := alice.iq("get", "example.net", xmpp.Elem("query", xmpp.NSDiscoItems))
	q := xmpp.Child(items, "query", xmpp.NSDiscoItems)
	its := xmpp.Children(q, "item", xmpp.NSDiscoItems)
	if len(its) != 1 || its[0].SelectAttrValue("jid", "") != "groups.example.net" {
		t.Errorf("example.net lists %s", xmpp.String(q))
	}
	room := "r@groups.example.net"
	res := alice.iq("set", room, query(rooms.NSCreate, ""))
	notif(t, res, room, "", rooms.NSAffiliations)
	expectResult(t, alice.next(), room)
	bob := e.login("bob")
	info := bob.iq("get", "groups.localhost", xmpp.Elem("query", xmpp.NSDiscoInfo))
	expectResult(t, info, "groups.localhost")
}

// The store is the truth: an idle room's actor is unloaded and the room is
// rebuilt from the store on its next request.
func TestIdleRoomIsUnloadedAndReloaded(t *testing.T) {
	unloaded := make(chan xmpp.JID, 4)
	e := newEnvFull(t, nil, nil, rooms.HubOptions{IdleTimeout: 20 * time.Millisecond}, []string{"localhost"})
	rooms.SetUnloadHook(e.hub, func(j xmpp.JID) { unloaded <- j })
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "napper", alice, bob)
	select {
	case j := <-unloaded:
		if j.String() != room {
			t.Fatalf("unloaded %s", j)
		}
	case <-tctx(t).Done():
		t.Fatal("room actor never unloaded")
	}
	m := client.Message(room, "groupchat", "still here?")
	m.CreateAttr("id", "wake")
	bob.Send(tctx(t), m)
	for _, u := range []*user{alice, bob} {
		if el := u.next(); el.SelectAttrValue("id", "") != "wake" {
			t.Errorf("%s got %s", u.name, xmpp.String(el))
		}
	}
}

// Room disco#info: the room's identity and features; a missing room is
// item-not-found.
func TestRoomDiscoInfo(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	room := createRoom(t, "known", alice)
	info := alice.iq("get", room, xmpp.Elem("query", xmpp.NSDiscoInfo))
	expectResult(t, info, room)
	if f := xmpp.Child(xmpp.Child(info, "query", xmpp.NSDiscoInfo), "feature", xmpp.NSDiscoInfo); f == nil || f.SelectAttrValue("var", "") != rooms.NS {
		t.Errorf("room disco#info %s", xmpp.String(info))
	}
	expectError(t, alice.iq("get", "unknown@"+svc, xmpp.Elem("query", xmpp.NSDiscoInfo)), "item-not-found")
}

// remove_user: a deleted account leaves every room as if it had left
// (owner handover, notifications to the others; a room it was alone in is
// destroyed) and its blocking list goes.
func TestRemoveUser(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	shared := createRoom(t, "shared", alice, bob, kate)
	solo := createRoom(t, "solo", alice)
	expectResult(t, alice.iq("set", svc, query(rooms.NSBlocking, "<user action='deny'>mike@localhost</user>")), svc)
	if err := e.hub.RemoveUser(tctx(t), xmpp.MustParseJID("alice@localhost")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{bob, kate} {
		x := notif(t, u.next(), shared, "", rooms.NSAffiliations)
		if got := affsOf(x); got != "alice@localhost=none,bob@localhost=owner" {
			t.Errorf("%s told %s", u.name, got)
		}
	}
	if ok, _ := e.store.RoomExists(tctx(t), xmpp.MustParseJID(solo)); ok {
		t.Error("the room alice was alone in still exists")
	}
	if l, _ := e.store.GetBlocking(tctx(t), xmpp.MustParseJID("alice@localhost")); len(l) != 0 {
		t.Errorf("blocking list kept: %v", l)
	}
	// alice, still connected here, is told she left both rooms.
	for range 2 {
		el := alice.next()
		room := el.SelectAttrValue("from", "")
		if x := notif(t, el, room, "", rooms.NSAffiliations); affsOf(x) != "alice@localhost=none" || (room != shared && room != solo) {
			t.Errorf("alice told %s", xmpp.String(el))
		}
	}
	// The actor serves the new state: alice is no longer an occupant.
	m := client.Message(shared, "groupchat", "bye?")
	m.CreateAttr("id", "after")
	alice.Send(tctx(t), m)
	expectError(t, alice.next(), "item-not-found")
}

// cache_affs: the cached occupants follow every change made through this
// node, so a newcomer can talk at once and a removed user cannot.
func TestCacheAffsFollowsLocalChanges(t *testing.T) {
	e := newEnv(t, func(o *rooms.Options) { o.CacheAffs, o.CacheAffsTTL = true, time.Hour })
	alice, bob, mike := e.login("alice"), e.login("bob"), e.login("mike")
	room := createRoom(t, "cached", alice, bob)
	say := func(u *user, id string) {
		m := client.Message(room, "groupchat", id)
		m.CreateAttr("id", id)
		u.Send(tctx(t), m)
	}
	say(bob, "warm") // loads the cache
	alice.next()
	bob.next()
	res := alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>mike@localhost</user><user affiliation='none'>bob@localhost</user>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	alice.next()
	mike.next()
	bob.next()
	say(mike, "newcomer")
	for _, u := range []*user{alice, mike} {
		if el := u.next(); el.SelectAttrValue("id", "") != "newcomer" {
			t.Fatalf("%s got %s", u.name, xmpp.String(el))
		}
	}
	say(bob, "removed")
	expectError(t, bob.next(), "item-not-found")
	alice.quiet()
}

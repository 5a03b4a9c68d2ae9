package rooms_test

import (
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// Checklist: service disco#info has identity conference/text and the
// MUC Light feature first, then XEP-0045's (both dialects are served); the
// server's disco#items lists the service.
func TestServiceDisco(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	info := alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoInfo))
	expectResult(t, info, svc)
	q := xmpp.Child(info, "query", xmpp.NSDiscoInfo)
	id := xmpp.Child(q, "identity", xmpp.NSDiscoInfo)
	if id == nil || id.SelectAttrValue("category", "") != "conference" || id.SelectAttrValue("type", "") != "text" {
		t.Errorf("identity: %s", xmpp.String(info))
	}
	feats := xmpp.Children(q, "feature", xmpp.NSDiscoInfo)
	if len(feats) != 3 || feats[0].SelectAttrValue("var", "") != rooms.NS || feats[1].SelectAttrValue("var", "") != rooms.NSMUC ||
		feats[2].SelectAttrValue("var", "") != rooms.NSOccupantID {
		t.Errorf("features: %s", xmpp.String(info))
	}
	items := alice.iq("get", "localhost", xmpp.Elem("query", xmpp.NSDiscoItems))
	it := xmpp.Child(xmpp.Child(items, "query", xmpp.NSDiscoItems), "item", xmpp.NSDiscoItems)
	if it == nil || it.SelectAttrValue("jid", "") != svc || it.SelectAttrValue("node", "") != rooms.NS {
		t.Errorf("server disco#items: %s", xmpp.String(items))
	}
}

// Checklist: create with a chosen room JID; every occupant gets only their
// own affiliation and the version (no prev-version, the IQ's id) before
// the IQ result; missing config fields take the schema defaults.
func TestCreateRoomWithChosenName(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := "coven@" + svc
	iq := client.IQ("set", room, query(rooms.NSCreate,
		"<configuration><roomname>A Dark Cave</roomname></configuration>"+
			"<occupants><user affiliation='member'>bob@localhost</user><user affiliation='member'>kate@localhost</user></occupants>"))
	iq.CreateAttr("id", "create1")
	alice.Send(tctx(t), iq)
	x := notif(t, alice.next(), room, "create1", rooms.NSAffiliations)
	version, ok := childText(x, "version")
	if !ok || version == "" {
		t.Fatalf("no version: %s", xmpp.String(x))
	}
	if _, ok := childText(x, "prev-version"); ok {
		t.Error("creation notification has prev-version")
	}
	if got := affsOf(x); got != "alice@localhost=owner" {
		t.Errorf("creator's notification lists %s", got)
	}
	res := alice.next()
	expectResult(t, res, room)
	if res.SelectAttrValue("id", "") != "create1" || len(res.ChildElements()) != 0 {
		t.Errorf("result %s", xmpp.String(res))
	}
	for _, u := range []*user{bob, kate} {
		x := notif(t, u.next(), room, "create1", rooms.NSAffiliations)
		if got := affsOf(x); got != u.bare+"=member" {
			t.Errorf("%s's notification lists %s", u.name, got)
		}
		if v, _ := childText(x, "version"); v != version {
			t.Errorf("%s got version %s, want %s", u.name, v, version)
		}
	}
	cfg := alice.iq("get", room, query(rooms.NSConfiguration, ""))
	q := xmpp.Child(cfg, "query", rooms.NSConfiguration)
	if name, _ := childText(q, "roomname"); name != "A Dark Cave" {
		t.Errorf("roomname %q", name)
	}
	if subj, ok := childText(q, "subject"); !ok || subj != "" {
		t.Errorf("subject default missing: %s", xmpp.String(cfg))
	}
}

// Checklist: create with a server-generated name: IQ to the service; the
// notification comes from the new room, the result from the service.
func TestCreateRoomWithGeneratedName(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login("alice")
	n := alice.iq("set", svc, query(rooms.NSCreate, ""))
	from := n.SelectAttrValue("from", "")
	if !strings.HasSuffix(from, "@"+svc) || len(from) <= len("@"+svc) {
		t.Fatalf("notification from %q, want a new room JID", from)
	}
	x := notif(t, n, from, "", rooms.NSAffiliations)
	if affsOf(x) != "alice@localhost=owner" {
		t.Errorf("affs %s", affsOf(x))
	}
	expectResult(t, alice.next(), svc)
	// A second one gets a different name.
	n2 := alice.iq("set", svc, query(rooms.NSCreate, ""))
	if n2.SelectAttrValue("from", "") == from {
		t.Error("two generated rooms share a name")
	}
	alice.next()
}

// Checklist: initial occupants: no none, unique JIDs, at most one owner;
// a named owner takes ownership from the creator; an existing room is a
// conflict.
func TestCreateRoomOccupantRules(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	for _, tc := range []struct{ name, occ string }{
		{"none", "<user affiliation='none'>bob@localhost</user>"},
		{"duplicate", "<user affiliation='member'>bob@localhost</user><user affiliation='member'>bob@localhost</user>"},
		{"two owners", "<user affiliation='owner'>bob@localhost</user><user affiliation='owner'>kate@localhost</user>"},
		{"creator listed", "<user affiliation='member'>alice@localhost</user>"},
		{"bad item", "<item affiliation='member'>bob@localhost</item>"},
		{"bad jid", "<user affiliation='member'>@@</user>"},
		{"unknown config field", "</occupants><configuration><colour>red</colour></configuration><occupants>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := alice.iq("set", "r-"+strings.ReplaceAll(tc.name, " ", "")+"@"+svc, query(rooms.NSCreate, "<occupants>"+tc.occ+"</occupants>"))
			expectError(t, res, "bad-request")
		})
	}
	room := "handed@" + svc
	alice.iq("set", room, query(rooms.NSCreate, "<occupants><user affiliation='owner'>bob@localhost</user></occupants>"))
	expectResult(t, alice.next(), room)
	x := notif(t, bob.next(), room, "", rooms.NSAffiliations)
	if affsOf(x) != "bob@localhost=owner" {
		t.Errorf("named owner: %s", affsOf(x))
	}
	info := alice.iq("get", room, query(rooms.NSAffiliations, ""))
	if got := affsOf(xmpp.Child(info, "query", rooms.NSAffiliations)); got != "alice@localhost=member,bob@localhost=owner" {
		t.Errorf("after create with named owner: %s", got)
	}
	expectError(t, bob.iq("set", room, query(rooms.NSCreate, "")), "conflict")
	alice.quiet()
}

// Checklist: destroy by the owner: every occupant gets affiliation none
// plus #destroy, no version, then the IQ result; members may not destroy.
func TestDestroyRoom(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "doomed", alice, bob)
	expectError(t, bob.iq("set", room, query(rooms.NSDestroy, "")), "not-allowed")
	iq := client.IQ("set", room, query(rooms.NSDestroy, ""))
	iq.CreateAttr("id", "d1")
	alice.Send(tctx(t), iq)
	for _, u := range []*user{alice, bob} {
		el := u.next()
		notif(t, el, room, "d1", rooms.NSDestroy)
		x := notif(t, el, room, "d1", rooms.NSAffiliations)
		if affsOf(x) != u.bare+"=none" {
			t.Errorf("%s: %s", u.name, affsOf(x))
		}
		if _, ok := childText(x, "version"); ok {
			t.Error("destroy notification carries a version")
		}
	}
	expectResult(t, alice.next(), room)
	expectError(t, alice.iq("get", room, query(rooms.NSInfo, "")), "item-not-found")
	items := alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoItems))
	if len(xmpp.Child(items, "query", xmpp.NSDiscoItems).ChildElements()) != 0 {
		t.Errorf("destroyed room still listed: %s", xmpp.String(items))
	}
}

// Checklist: a room whose last occupant leaves is destroyed.
func TestLastOccupantLeavingDestroysRoom(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "fading", alice, bob)
	for _, u := range []*user{bob, alice} {
		res := u.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='none'>"+u.bare+"</user>"))
		x := notif(t, res, room, "", rooms.NSAffiliations)
		if affsOf(x) != u.bare+"=none" {
			t.Errorf("leaver %s told %s", u.name, affsOf(x))
		}
		expectResult(t, u.next(), room)
		if u == bob {
			x := notif(t, alice.next(), room, "", rooms.NSAffiliations)
			if affsOf(x) != "bob@localhost=none" {
				t.Errorf("alice told %s", affsOf(x))
			}
		}
	}
	expectError(t, alice.iq("get", room, query(rooms.NSInfo, "")), "item-not-found")
	if ok, _ := e.store.RoomExists(tctx(t), xmpp.MustParseJID(room)); ok {
		t.Error("empty room still stored")
	}
}

// Checklist: get config / affiliations / info with <version/>: equal version
// gives an empty result; otherwise the version and the full data; only
// occupants may ask.
func TestGetWithVersion(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, mike := e.login("alice"), e.login("bob"), e.login("mike")
	room := createRoom(t, "versioned", alice, bob)
	for _, ns := range []string{rooms.NSConfiguration, rooms.NSAffiliations, rooms.NSInfo} {
		full := bob.iq("get", room, query(ns, "<version>stale</version>"))
		expectResult(t, full, room)
		q := xmpp.Child(full, "query", ns)
		v, _ := childText(q, "version")
		if q == nil || v == "" {
			t.Fatalf("%s: no data: %s", ns, xmpp.String(full))
		}
		same := bob.iq("get", room, query(ns, "<version>"+v+"</version>"))
		expectResult(t, same, room)
		if len(same.ChildElements()) != 0 {
			t.Errorf("%s: same version answered with data: %s", ns, xmpp.String(same))
		}
		expectError(t, mike.iq("get", room, query(ns, "")), "item-not-found")
	}
	info := alice.iq("get", room, query(rooms.NSInfo, ""))
	q := xmpp.Child(info, "query", rooms.NSInfo)
	if got := affsOf(xmpp.Child(q, "occupants", rooms.NSInfo)); got != "alice@localhost=owner,bob@localhost=member" {
		t.Errorf("info occupants %s", got)
	}
	if name, _ := childText(xmpp.Child(q, "configuration", rooms.NSInfo), "roomname"); name != "Untitled" {
		t.Errorf("info roomname %q", name)
	}
}

// Checklist: groupchat from an occupant reaches every occupant including the
// sender, from room/sender-bare-JID, same id, children kept; a non-occupant
// gets item-not-found; another type gets bad-request; presence is ignored.
func TestGroupchat(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate, mike := e.login("alice"), e.login("bob"), e.login("kate"), e.login("mike")
	room := createRoom(t, "talk", alice, bob, kate)
	m := client.Message(room, "groupchat", "Harpier cries")
	m.CreateAttr("id", "msg111")
	m.AddChild(xmpp.Elem("markable", "urn:xmpp:chat-markers:0"))
	bob.Send(tctx(t), m)
	for _, u := range []*user{alice, bob, kate} {
		el := u.next()
		if el.SelectAttrValue("from", "") != room+"/bob@localhost" || el.SelectAttrValue("id", "") != "msg111" ||
			el.SelectAttrValue("type", "") != "groupchat" || el.SelectAttrValue("to", "") != u.bare {
			t.Errorf("%s got %s", u.name, xmpp.String(el))
		}
		if b, _ := childText(el, "body"); b != "Harpier cries" || xmpp.Child(el, "markable", "urn:xmpp:chat-markers:0") == nil {
			t.Errorf("%s: children lost: %s", u.name, xmpp.String(el))
		}
	}
	out := client.Message(room, "groupchat", "let me in")
	out.CreateAttr("id", "intruder")
	mike.Send(tctx(t), out)
	expectError(t, mike.next(), "item-not-found")
	chat := client.Message(room, "chat", "psst")
	chat.CreateAttr("id", "c")
	alice.Send(tctx(t), chat)
	expectError(t, alice.next(), "bad-request")
	missing := client.Message("nowhere@"+svc, "groupchat", "hello?")
	missing.CreateAttr("id", "n")
	alice.Send(tctx(t), missing)
	expectError(t, alice.next(), "item-not-found")
	p := etree.NewElement("presence")
	p.CreateAttr("to", room)
	alice.Send(tctx(t), p)
	alice.quiet()
	bob.quiet()
	kate.quiet()
}

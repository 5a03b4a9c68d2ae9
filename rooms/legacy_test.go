package rooms_test

import (
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

func legacyEnv(t *testing.T, tweak func(*rooms.Options)) *env {
	return newEnv(t, func(o *rooms.Options) {
		o.LegacyMode = true
		if tweak != nil {
			tweak(o)
		}
	})
}

// join sends the XEP-0045 join presence to room/nick.
func (u *user) join(room, nick string) {
	p := etree.NewElement("presence")
	p.CreateAttr("to", room+"/"+nick)
	p.AddChild(xmpp.Elem("x", rooms.NSMUC))
	u.Send(tctx(u.t), p)
}

// mucUser returns the presence's muc#user item attributes and status codes.
func mucUser(t *testing.T, p *etree.Element) (aff, role string, codes string) {
	t.Helper()
	x := xmpp.Child(p, "x", rooms.NSMUCUser)
	if x == nil {
		t.Fatalf("no muc#user payload: %s", xmpp.String(p))
	}
	if it := xmpp.Child(x, "item", rooms.NSMUCUser); it != nil {
		aff, role = it.SelectAttrValue("affiliation", ""), it.SelectAttrValue("role", "")
	}
	var cs []string
	for _, s := range xmpp.Children(x, "status", rooms.NSMUCUser) {
		cs = append(cs, s.SelectAttrValue("code", ""))
	}
	return aff, role, strings.Join(cs, ",")
}

// legacyRoom has alice create room by joining, then adds the members
// through muc#admin, consuming what everyone receives.
func legacyRoom(t *testing.T, name string, owner *user, members ...*user) string {
	t.Helper()
	room := name + "@" + svc
	owner.join(room, owner.bare)
	if _, _, codes := mucUser(t, owner.next()); codes != "110,201" {
		t.Fatalf("create: codes %s", codes)
	}
	for i, m := range members {
		// The owner, already in, sees the newcomer's presence, then the result.
		p := owner.iq("set", room, query(rooms.NSMUCAdmin, "<item affiliation='member' jid='"+m.bare+"'/>"))
		if p.SelectAttrValue("from", "") != room+"/"+m.bare {
			t.Fatalf("owner got %s", xmpp.String(p))
		}
		expectResult(t, owner.next(), room)
		inv := m.next()
		if x := xmpp.Child(inv, "x", rooms.NSMUCUser); x == nil || xmpp.Child(x, "invite", rooms.NSMUCUser) == nil {
			t.Fatalf("no invitation: %s", xmpp.String(inv))
		}
		for _, earlier := range members[:i] {
			if p := earlier.next(); p.SelectAttrValue("from", "") != room+"/"+m.bare {
				t.Fatalf("%s got %s", earlier.name, xmpp.String(p))
			}
		}
	}
	owner.quiet()
	for _, m := range members {
		m.quiet()
	}
	return room
}

func TestLegacyDisco(t *testing.T) {
	e := legacyEnv(t, nil)
	alice := e.login("alice")
	info := xmpp.Child(alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoInfo)), "query", xmpp.NSDiscoInfo)
	feats := xmpp.Children(info, "feature", xmpp.NSDiscoInfo)
	if len(feats) != 2 || feats[0].SelectAttrValue("var", "") != rooms.NSMUC || feats[1].SelectAttrValue("var", "") != rooms.NSOccupantID {
		t.Errorf("service features: %s", xmpp.String(info))
	}
	it := xmpp.Child(xmpp.Child(alice.iq("get", "localhost", xmpp.Elem("query", xmpp.NSDiscoItems)), "query", xmpp.NSDiscoItems), "item", xmpp.NSDiscoItems)
	if it.SelectAttrValue("node", "") != rooms.NSMUC {
		t.Errorf("server item %s", xmpp.String(it))
	}
	room := legacyRoom(t, "seen", alice)
	items := xmpp.Child(alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoItems)), "query", xmpp.NSDiscoItems)
	ri := xmpp.Child(items, "item", xmpp.NSDiscoItems)
	if ri == nil || ri.SelectAttrValue("jid", "") != room || ri.SelectAttr("version") != nil {
		t.Errorf("rooms: %s", xmpp.String(items))
	}
	rinfo := xmpp.Child(alice.iq("get", room, xmpp.Elem("query", xmpp.NSDiscoInfo)), "query", xmpp.NSDiscoInfo)
	if !strings.Contains(xmpp.String(rinfo), "var='"+rooms.NSMUC+"'") || !strings.Contains(xmpp.String(rinfo), "muc_membersonly") {
		t.Errorf("room info %s", xmpp.String(rinfo))
	}
}

// Join-to-create: the creator's presence comes back from room/bare-JID with
// owner/moderator and status 110 and 201; a nick other than the bare JID is
// replaced (210).
func TestLegacyJoinCreatesRoom(t *testing.T) {
	e := legacyEnv(t, nil)
	alice := e.login("alice")
	room := "made@" + svc
	alice.join(room, "Alice")
	p := alice.next()
	if p.Tag != "presence" || p.SelectAttrValue("from", "") != room+"/alice@localhost" {
		t.Fatalf("got %s", xmpp.String(p))
	}
	if aff, role, codes := mucUser(t, p); aff != "owner" || role != "moderator" || codes != "110,210,201" {
		t.Errorf("self presence %s %s %s", aff, role, codes)
	}
	affs, _, err := e.store.GetAffUsers(tctx(t), xmpp.MustParseJID(room))
	if err != nil || len(affs) != 1 || affs[0].Aff != rooms.Owner {
		t.Errorf("stored %v %v", affs, err)
	}
}

// Joining an existing room: members see every occupant, then themselves
// (110), then the subject; anyone else gets registration-required.
func TestLegacyJoinExistingRoom(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob, mike := e.login("alice"), e.login("bob"), e.login("mike")
	room := legacyRoom(t, "club", alice, bob)
	bob.join(room, bob.bare)
	if p := bob.next(); p.SelectAttrValue("from", "") != room+"/alice@localhost" {
		t.Errorf("first presence %s", xmpp.String(p))
	} else if aff, _, _ := mucUser(t, p); aff != "owner" {
		t.Errorf("alice shows as %s", aff)
	}
	if _, _, codes := mucUser(t, bob.next()); codes != "110" {
		t.Errorf("self codes %s", codes)
	}
	if s := bob.next(); xmpp.Child(s, "subject", xmpp.NSClient) == nil || s.SelectAttrValue("from", "") != room {
		t.Errorf("subject %s", xmpp.String(s))
	}
	mike.join(room, mike.bare)
	el := mike.next()
	expectError(t, el, "registration-required")
	if el.Tag != "presence" || xmpp.Child(el, "x", rooms.NSMUC) == nil {
		t.Errorf("refusal %s", xmpp.String(el))
	}
}

func TestLegacyGroupchatAndSubject(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := legacyRoom(t, "chat", alice, bob)
	m := client.Message(room, "groupchat", "hello")
	m.CreateAttr("id", "g1")
	bob.Send(tctx(t), m)
	for _, u := range []*user{alice, bob} {
		if el := u.next(); el.SelectAttrValue("from", "") != room+"/bob@localhost" || el.SelectAttrValue("id", "") != "g1" {
			t.Errorf("%s got %s", u.name, xmpp.String(el))
		}
	}
	s := etree.NewElement("message")
	s.CreateAttr("to", room)
	s.CreateAttr("type", "groupchat")
	s.CreateElement("subject").SetText("New topic")
	bob.Send(tctx(t), s)
	for _, u := range []*user{alice, bob} {
		el := u.next()
		if sub, _ := childText(el, "subject"); sub != "New topic" || el.SelectAttrValue("from", "") != room+"/bob@localhost" {
			t.Errorf("%s got %s", u.name, xmpp.String(el))
		}
	}
	cfg, _, err := e.store.GetConfig(tctx(t), xmpp.MustParseJID(room))
	if cfg["subject"] != "New topic" {
		t.Errorf("stored subject %q (%v) %v", cfg["subject"], err, cfg)
	}
}

// muc#owner: the configuration form; a submitted form changes the room and
// every occupant gets status 104.
func TestLegacyOwnerConfig(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := legacyRoom(t, "conf", alice, bob)
	form := alice.iq("get", room, xmpp.Elem("query", rooms.NSMUCOwner))
	if got := xmpp.String(form); !strings.Contains(got, "var='muc#roomconfig_roomname'") || !strings.Contains(got, "<value>Untitled</value>") {
		t.Errorf("form %s", got)
	}
	submit := query(rooms.NSMUCOwner, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"+
		"<field var='muc#roomconfig_roomname'><value>Club</value></field></x>")
	if _, _, codes := mucUser(t, alice.iq("set", room, submit)); codes != "104" {
		t.Errorf("alice codes %s", codes)
	}
	expectResult(t, alice.next(), room)
	if _, _, codes := mucUser(t, bob.next()); codes != "104" {
		t.Errorf("bob codes %s", codes)
	}
	expectError(t, alice.iq("set", room, query(rooms.NSMUCOwner, "<x xmlns='jabber:x:data' type='form'/>")), "bad-request")
	expectError(t, bob.iq("set", room, submit), "not-allowed")
	expectResult(t, alice.iq("set", room, query(rooms.NSMUCOwner, "<x xmlns='jabber:x:data' type='submit'/>")), room)
}

// muc#admin: lists and changes; stayers see presences (321 for removals),
// newcomers are invited, the removed get their own 321 presence.
func TestLegacyAdmin(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := legacyRoom(t, "adm", alice, bob)
	list := alice.iq("get", room, query(rooms.NSMUCAdmin, "<item affiliation='member'/>"))
	if got := xmpp.String(xmpp.Child(list, "query", rooms.NSMUCAdmin)); !strings.Contains(got, "jid='bob@localhost'") || strings.Contains(got, "alice") {
		t.Errorf("member list %s", got)
	}
	res := alice.iq("set", room, query(rooms.NSMUCAdmin, "<item affiliation='member' jid='kate@localhost'/><item affiliation='none' jid='bob@localhost'/>"))
	// alice (staying) sees both changes, then the result.
	seen := map[string]string{}
	for _, p := range []*etree.Element{res, alice.next()} {
		_, _, codes := mucUser(t, p)
		seen[p.SelectAttrValue("from", "")] = p.SelectAttrValue("type", "") + "/" + codes
	}
	if seen[room+"/bob@localhost"] != "unavailable/321" || seen[room+"/kate@localhost"] != "/" {
		t.Errorf("stayer saw %v", seen)
	}
	expectResult(t, alice.next(), room)
	inv := kate.next()
	if x := xmpp.Child(inv, "x", rooms.NSMUCUser); x == nil || xmpp.Child(x, "invite", rooms.NSMUCUser).SelectAttrValue("from", "") != "alice@localhost" {
		t.Errorf("invitation %s", xmpp.String(inv))
	}
	gone := bob.next()
	if _, _, codes := mucUser(t, gone); gone.SelectAttrValue("type", "") != "unavailable" || !strings.Contains(codes, "321") {
		t.Errorf("removed user got %s", xmpp.String(gone))
	}
	expectError(t, alice.iq("set", room, query(rooms.NSMUCAdmin, "<item role='none' nick='kate@localhost'/>")), "feature-not-implemented")
}

func TestLegacyDestroy(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := legacyRoom(t, "gone", alice, bob)
	res := alice.iq("set", room, query(rooms.NSMUCOwner, "<destroy/>"))
	for _, p := range []*etree.Element{res, bob.next()} {
		x := xmpp.Child(p, "x", rooms.NSMUCUser)
		if p.SelectAttrValue("type", "") != "unavailable" || x == nil || xmpp.Child(x, "destroy", rooms.NSMUCUser) == nil {
			t.Errorf("destroy presence %s", xmpp.String(p))
		}
	}
	expectResult(t, alice.next(), room)
	if ok, _ := e.store.RoomExists(tctx(t), xmpp.MustParseJID(room)); ok {
		t.Error("room still exists")
	}
}

// Blocking as the privacy list named urn:xmpp:muclight:0.
func TestLegacyPrivacyBlocking(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob := e.login("alice"), e.login("bob")
	room := legacyRoom(t, "priv", alice)
	set := query(rooms.NSPrivacy, "<list name='urn:xmpp:muclight:0'><item type='jid' value='"+room+"' action='deny' order='1'/>"+
		"<item type='jid' value='"+svc+"/kate@localhost' action='deny' order='1'/></list>")
	expectResult(t, bob.iq("set", "", set), "")
	got := xmpp.String(bob.iq("get", "", query(rooms.NSPrivacy, "<list name='urn:xmpp:muclight:0'/>")))
	if !strings.Contains(got, "value='"+room+"'") || !strings.Contains(got, "value='"+svc+"/kate@localhost'") {
		t.Errorf("list %s", got)
	}
	// The blocked room cannot take bob in: the change is skipped.
	expectResult(t, alice.iq("set", room, query(rooms.NSMUCAdmin, "<item affiliation='member' jid='bob@localhost'/>")), room)
	bob.quiet()
	expectError(t, bob.iq("get", "", query(rooms.NSPrivacy, "<list name='other'/>")), "feature-not-implemented")
}

func TestLegacyLeaveAndUnsupported(t *testing.T) {
	e := legacyEnv(t, nil)
	alice := e.login("alice")
	room := legacyRoom(t, "misc", alice)
	p := etree.NewElement("presence")
	p.CreateAttr("to", room+"/alice@localhost")
	p.CreateAttr("type", "unavailable")
	alice.Send(tctx(t), p)
	el := alice.next()
	if _, _, codes := mucUser(t, el); el.SelectAttrValue("type", "") != "unavailable" || codes != "110" {
		t.Errorf("leave %s", xmpp.String(el))
	}
	if affs, _, _ := e.store.GetAffUsers(tctx(t), xmpp.MustParseJID(room)); len(affs) != 1 {
		t.Error("going offline changed the membership")
	}
	expectError(t, alice.iq("set", room, query(rooms.NSCreate, "")), "feature-not-implemented")
	pm := client.Message(room+"/bob@localhost", "chat", "psst")
	pm.CreateAttr("id", "pm")
	alice.Send(tctx(t), pm)
	expectError(t, alice.next(), "feature-not-implemented")
}

// The limiter's nick length check applies to legacy joins.
func TestLegacyNickTooLong(t *testing.T) {
	e := newEnvFull(t, func(o *rooms.Options) { o.LegacyMode = true }, nil, rooms.HubOptions{Limits: rooms.DefaultLimits()}, []string{"localhost"})
	alice := e.login("alice")
	alice.join("n@"+svc, strings.Repeat("n", 30))
	el := alice.next()
	expectError(t, el, "policy-violation")
	if se := client.ErrorOf(el); se.Type != "modify" {
		t.Errorf("type %s", se.Type)
	}
}

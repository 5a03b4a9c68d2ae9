package rooms_test

import (
	"strings"
	"testing"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// The tests in this file send, next to an attribute the protocol defines, a
// prefixed look-alike (f:affiliation beside affiliation) placed first,
// where etree's SelectAttrValue would have found it. The look-alike is
// another attribute in another namespace: only the real one decides.

// MUC Light occupants and affiliation changes: <user affiliation=.../>.
func TestPrefixedAffiliationIsNotTheAffiliation(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := "spoof@" + svc
	res := alice.iq("set", room, query(rooms.NSCreate,
		"<occupants><user xmlns:f='urn:x' f:affiliation='owner' affiliation='member'>bob@localhost</user></occupants>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	expectResult(t, alice.next(), room)
	if x := notif(t, bob.next(), room, "", rooms.NSAffiliations); affsOf(x) != "bob@localhost=member" {
		t.Errorf("bob was told %s", affsOf(x))
	}
	affs := func() string {
		return affsOf(xmpp.Child(alice.iq("get", room, query(rooms.NSAffiliations, "")), "query", rooms.NSAffiliations))
	}
	if got := affs(); got != "alice@localhost=owner,bob@localhost=member" {
		t.Errorf("after create: %s", got)
	}
	// A change: kate joins as the member she is made, not removed as the
	// look-alike says.
	res = alice.iq("set", room, query(rooms.NSAffiliations,
		"<user xmlns:f='urn:x' f:affiliation='none' affiliation='member'>kate@localhost</user>"))
	if x := notif(t, res, room, "", rooms.NSAffiliations); affsOf(x) != "kate@localhost=member" {
		t.Errorf("change: %s", affsOf(x))
	}
	notif(t, bob.next(), room, "", rooms.NSAffiliations)
	expectResult(t, alice.next(), room)
	if x := notif(t, kate.next(), room, "", rooms.NSAffiliations); affsOf(x) != "kate@localhost=member" {
		t.Errorf("kate was told %s", affsOf(x))
	}
	if got := affs(); got != "alice@localhost=owner,bob@localhost=member,kate@localhost=member" {
		t.Errorf("after the change: %s", got)
	}
	for _, u := range []*user{alice, bob, kate} {
		u.quiet()
	}
}

// MUC Light blocking: <user action=.../>.
func TestPrefixedBlockingActionIsNotTheAction(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.login("bob")
	expectResult(t, bob.iq("set", svc, query(rooms.NSBlocking,
		"<user xmlns:f='urn:x' f:action='allow' action='deny'>kate@localhost</user>")), svc)
	list := xmpp.String(xmpp.Child(bob.iq("get", svc, query(rooms.NSBlocking, "")), "query", rooms.NSBlocking))
	if !strings.Contains(list, "<user action='deny'>kate@localhost</user>") {
		t.Errorf("kate is not blocked: %s", list)
	}
}

// Legacy muc#admin items: affiliation, jid, and whether an item is a role
// change.
func TestLegacyPrefixedAdminAttributes(t *testing.T) {
	setup := func(t *testing.T) (alice, bob *user, room string) {
		e := legacyEnv(t, nil)
		alice, bob = e.login("alice"), e.login("bob")
		return alice, bob, legacyRoom(t, "spoof", alice)
	}
	t.Run("affiliation and jid", func(t *testing.T) {
		alice, bob, room := setup(t)
		p := alice.iq("set", room, query(rooms.NSMUCAdmin,
			"<item xmlns:f='urn:x' f:affiliation='owner' affiliation='member' f:jid='carol@localhost' jid='bob@localhost'/>"))
		if aff, _, _ := mucUser(t, p); p.SelectAttrValue("from", "") != room+"/bob@localhost" || aff != "member" {
			t.Fatalf("alice saw %s, want bob's presence as a member", xmpp.String(p))
		}
		expectResult(t, alice.next(), room)
		if inv := bob.next(); xmpp.Child(xmpp.Child(inv, "x", rooms.NSMUCUser), "invite", rooms.NSMUCUser) == nil {
			t.Fatalf("bob got %s, want an invitation", xmpp.String(inv))
		}
		alice.quiet()
		bob.quiet()
	})
	t.Run("list request", func(t *testing.T) {
		alice, _, room := setup(t)
		owners := alice.iq("get", room, query(rooms.NSMUCAdmin, "<item xmlns:f='urn:x' f:affiliation='member' affiliation='owner'/>"))
		if got := xmpp.String(xmpp.Child(owners, "query", rooms.NSMUCAdmin)); !strings.Contains(got, "jid='alice@localhost'") {
			t.Errorf("owner list %s", got)
		}
	})
	t.Run("role change", func(t *testing.T) {
		alice, _, room := setup(t)
		expectError(t, alice.iq("set", room, query(rooms.NSMUCAdmin,
			"<item xmlns:f='urn:x' f:affiliation='member' role='none' jid='kate@localhost'/>")), "feature-not-implemented")
		alice.quiet()
	})
}

// Legacy mediated invitations: <invite to=.../>.
func TestLegacyPrefixedInviteeIsNotTheInvitee(t *testing.T) {
	e := legacyEnv(t, nil)
	alice, bob, carol := e.login("alice"), e.login("bob"), e.login("carol")
	room := legacyRoom(t, "inv", alice)
	m := client.Message(room, "", "")
	x := m.CreateElement("x")
	x.CreateAttr("xmlns", rooms.NSMUCUser)
	inv := x.CreateElement("invite")
	inv.CreateAttr("xmlns:f", "urn:x")
	inv.CreateAttr("f:to", "carol@localhost")
	inv.CreateAttr("to", "bob@localhost")
	alice.Send(tctx(t), m)
	if p := alice.next(); p.SelectAttrValue("from", "") != room+"/bob@localhost" {
		t.Fatalf("alice saw %s, want bob's presence", xmpp.String(p))
	}
	if got := bob.next(); xmpp.Child(xmpp.Child(got, "x", rooms.NSMUCUser), "invite", rooms.NSMUCUser) == nil {
		t.Fatalf("bob got %s, want an invitation", xmpp.String(got))
	}
	for _, u := range []*user{alice, bob, carol} {
		u.quiet()
	}
}

// Legacy muc#owner: the form's type and its fields' var.
func TestLegacyPrefixedFormAttributes(t *testing.T) {
	for _, tc := range []struct{ name, form string }{
		{"type", "<x xmlns='jabber:x:data' xmlns:f='urn:x' f:type='cancel' type='submit'>" +
			"<field var='muc#roomconfig_roomname'><value>Club</value></field></x>"},
		{"var", "<x xmlns='jabber:x:data' type='submit'>" +
			"<field xmlns:f='urn:x' f:var='FORM_TYPE' var='muc#roomconfig_roomname'><value>Club</value></field></x>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := legacyEnv(t, nil)
			alice := e.login("alice")
			room := legacyRoom(t, "form", alice)
			// Submitted and applied: the change's 104 notice, then the result.
			if n := alice.iq("set", room, query(rooms.NSMUCOwner, tc.form)); n.Tag != "message" || xmpp.Child(xmpp.Child(n, "x", rooms.NSMUCUser), "status", rooms.NSMUCUser) == nil {
				t.Fatalf("got %s, want the configuration change notice", xmpp.String(n))
			} else if _, _, codes := mucUser(t, n); codes != "104" {
				t.Errorf("codes %s", codes)
			}
			expectResult(t, alice.next(), room)
		})
	}
}

// Legacy privacy-list blocking: the list's name, an item's type, value and
// action.
func TestLegacyPrefixedPrivacyAttributes(t *testing.T) {
	roomJID := "r1@" + svc
	for _, tc := range []struct{ name, list string }{
		{"name", "<list xmlns:f='urn:x' f:name='other' name='urn:xmpp:muclight:0'><item type='jid' value='" + roomJID + "' action='deny' order='1'/></list>"},
		{"type", "<list name='urn:xmpp:muclight:0'><item xmlns:f='urn:x' f:type='group' type='jid' value='" + roomJID + "' action='deny' order='1'/></list>"},
		{"value", "<list name='urn:xmpp:muclight:0'><item xmlns:f='urn:x' type='jid' f:value='" + svc + "/kate@localhost' value='" + roomJID + "' action='deny' order='1'/></list>"},
		{"action", "<list name='urn:xmpp:muclight:0'><item xmlns:f='urn:x' type='jid' value='" + roomJID + "' f:action='allow' action='deny' order='1'/></list>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := legacyEnv(t, nil)
			bob := e.login("bob")
			expectResult(t, bob.iq("set", "", query(rooms.NSPrivacy, tc.list)), "")
			got := xmpp.String(bob.iq("get", "", query(rooms.NSPrivacy, "<list name='urn:xmpp:muclight:0'/>")))
			if !strings.Contains(got, "value='"+roomJID+"'") || strings.Contains(got, "kate") {
				t.Errorf("list %s, want %s alone", got, roomJID)
			}
		})
	}
}

// MAM: the query's queryid and the form fields' var.
func TestMAMPrefixedAttributes(t *testing.T) {
	for _, tc := range []struct {
		name, inner, want string
		spoofID           bool
	}{
		{"queryid", "", ",from-alice,from-bob", true}, // the creation entry has an empty body
		{"var", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
			"<field xmlns:f='urn:x' f:var='FORM_TYPE' var='with'><value>bob@localhost</value></field></x>", "from-bob", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mamEnv(t)
			alice, bob := e.login("alice"), e.login("bob")
			room := createRoom(t, "arch", alice, bob)
			say(t, room, alice, "from-alice", alice, bob)
			say(t, room, bob, "from-bob", alice, bob)
			q := query(rooms.NSMAM2, tc.inner)
			if tc.spoofID {
				q.CreateAttr("xmlns:f", "urn:x")
				q.CreateAttr("f:queryid", "look-alike")
			}
			q.CreateAttr("queryid", "qid")
			iq := client.IQ("set", room, q)
			iq.CreateAttr("id", "mam-"+tc.name)
			alice.Send(tctx(t), iq)
			var bodies []string
			for {
				el := alice.next()
				if el.Tag == "iq" {
					if el.SelectAttrValue("type", "") != "result" {
						t.Fatalf("query failed: %s", xmpp.String(el))
					}
					break
				}
				r := xmpp.Child(el, "result", rooms.NSMAM2)
				if r == nil || r.SelectAttrValue("queryid", "") != "qid" {
					t.Fatalf("result %s, want queryid qid", xmpp.String(el))
				}
				msg := xmpp.Child(xmpp.Child(r, "forwarded", rooms.NSForward), "message", xmpp.NSClient)
				if b, ok := childText(msg, "body"); ok {
					bodies = append(bodies, b)
				}
			}
			if got := strings.Join(bodies, ","); got != tc.want {
				t.Errorf("bodies %q, want %q", got, tc.want)
			}
		})
	}
}

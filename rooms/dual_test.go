package rooms_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// Both dialects on the same rooms at once (the default, legacy_mode
// false): sessions that entered a room with XEP-0045 presence get its
// events in XEP-0045 form, every other session MUC Light's, and groupchat
// is the same for all (docs/07_room_core.md, "A session's dialect, per
// room").

// dualEnv serves both dialects with history on.
func dualEnv(t *testing.T, ho rooms.HubOptions) *env {
	t.Helper()
	ho.MAM = rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}
	return newEnvFull(t, nil, nil, ho, []string{"localhost"})
}

// loginAs logs name@localhost in with the given resource.
func (e *env) loginAs(name, res string) *user {
	e.t.Helper()
	c, err := client.Login(tctx(e.t), e.url, xmpp.MustParseJID(name+"@localhost/"+res), "pw")
	if err != nil {
		e.t.Fatalf("login %s/%s: %v", name, res, err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return &user{Client: c, t: e.t, name: name + "/" + res, bare: name + "@localhost"}
}

func roleOf(aff string) string {
	return map[string]string{"owner": "moderator", "member": "participant", "none": "none"}[aff]
}

// checkPresence checks that p is the XEP-0045 presence of occupant in
// room: from room/occupant-bare-JID, of type typ, with the muc#user item
// (affiliation, its role, the real JID) and exactly the status codes given.
func checkPresence(t *testing.T, p *etree.Element, room, occupant, typ, aff, codes string) {
	t.Helper()
	if p.Tag != "presence" || p.SelectAttrValue("from", "") != room+"/"+occupant || p.SelectAttrValue("type", "") != typ {
		t.Fatalf("want %q presence from %s/%s, got %s", typ, room, occupant, xmpp.String(p))
	}
	gotAff, role, gotCodes := mucUser(t, p)
	it := xmpp.Child(xmpp.Child(p, "x", rooms.NSMUCUser), "item", rooms.NSMUCUser)
	if gotAff != aff || role != roleOf(aff) || it.SelectAttrValue("jid", "") != occupant || gotCodes != codes {
		t.Fatalf("presence of %s: affiliation %s role %s codes %q, want %s %s %q: %s",
			occupant, gotAff, role, gotCodes, aff, roleOf(aff), codes, xmpp.String(p))
	}
}

// enter sends u's XEP-0045 join (nick: the bare JID) and checks what an
// entering session is told, in order: the presence of every other
// affiliated user (others: bare JID → affiliation, in the room's order),
// its own presence with 110, then the subject message from the room. It
// returns the subject.
func (u *user) enter(room, aff string, others ...[2]string) string {
	u.t.Helper()
	u.join(room, u.bare)
	for _, o := range others {
		checkPresence(u.t, u.next(), room, o[0], "", o[1], "")
	}
	checkPresence(u.t, u.next(), room, u.bare, "", aff, "110")
	s := u.next()
	subj := xmpp.Child(s, "subject", xmpp.NSClient)
	if s.Tag != "message" || s.SelectAttrValue("type", "") != "groupchat" || s.SelectAttrValue("from", "") != room || subj == nil {
		u.t.Fatalf("%s: want the subject from %s, got %s", u.name, room, xmpp.String(s))
	}
	return subj.Text()
}

// leave sends u's unavailable presence to room/nick.
func (u *user) leave(room string) {
	p := etree.NewElement("presence")
	p.CreateAttr("to", room+"/"+u.bare)
	p.CreateAttr("type", "unavailable")
	u.Send(tctx(u.t), p)
}

// post sends a groupchat message with id and body text.
func (u *user) post(room, text string) {
	m := client.Message(room, "groupchat", text)
	m.CreateAttr("id", "m-"+text)
	u.Send(tctx(u.t), m)
}

// upTo reads u's stanzas up to the groupchat message with body marker and
// returns those that came before it, and the marker.
func (u *user) upTo(marker string) ([]*etree.Element, *etree.Element) {
	u.t.Helper()
	var before []*etree.Element
	for {
		el := u.next()
		if b, _ := childText(el, "body"); el.Tag == "message" && b == marker {
			return before, el
		}
		before = append(before, el)
	}
}

// mark sends a groupchat marker from 'from' and returns, for each
// recipient and the sender, what it received before the marker. The room
// handles the marker after everything asked before it, so an event's
// stanzas for a session all come before it: "did not get X" is "X is not
// in the list".
func mark(t *testing.T, room string, from *user, text string, recipients ...*user) map[*user][]*etree.Element {
	t.Helper()
	from.post(room, text)
	out := map[*user][]*etree.Element{}
	for _, u := range append([]*user{from}, recipients...) {
		if _, ok := out[u]; !ok {
			out[u], _ = u.upTo(text)
		}
	}
	return out
}

// expectNone fails unless got is empty.
func expectNone(t *testing.T, who string, got []*etree.Element) {
	t.Helper()
	for _, el := range got {
		t.Errorf("%s: unexpected %s", who, xmpp.String(el))
	}
}

// expectOne fails unless got holds exactly one stanza, and returns it.
func expectOne(t *testing.T, who string, got []*etree.Element) *etree.Element {
	t.Helper()
	if len(got) != 1 {
		for _, el := range got {
			t.Logf("%s got %s", who, xmpp.String(el))
		}
		t.Fatalf("%s: got %d stanzas, want exactly one", who, len(got))
	}
	return got[0]
}

// withoutTo serialises a stanza without its 'to', which differs per
// recipient.
func withoutTo(el *etree.Element) string {
	c := el.Copy()
	c.RemoveAttr("to")
	return xmpp.String(c)
}

// checkGroupchat checks that every recipient got the same groupchat
// message from room/sender with body text and one stanza-id by the room,
// and returns that stanza-id.
func checkGroupchat(t *testing.T, room string, sender *user, text string, got map[*user]*etree.Element) string {
	t.Helper()
	first := ""
	sid := ""
	for u, el := range got {
		if el.SelectAttrValue("from", "") != room+"/"+sender.bare || el.SelectAttrValue("type", "") != "groupchat" {
			t.Errorf("%s got %s", u.name, xmpp.String(el))
		}
		if b, _ := childText(el, "body"); b != text {
			t.Errorf("%s: body %q, want %q", u.name, b, text)
		}
		ids := xmpp.Children(el, "stanza-id", rooms.NSSID)
		if len(ids) != 1 || ids[0].SelectAttrValue("by", "") != room {
			t.Fatalf("%s: want one stanza-id by %s: %s", u.name, room, xmpp.String(el))
		}
		sid = ids[0].SelectAttrValue("id", "")
		if s := withoutTo(el); first == "" {
			first = s
		} else if s != first {
			t.Errorf("%s got a different message:\n%s\nwant\n%s", u.name, s, first)
		}
	}
	return sid
}

// groupchat posts text from sender and checks every recipient gets the
// same message, next.
func groupchat(t *testing.T, room string, sender *user, text string, recipients ...*user) string {
	t.Helper()
	sender.post(room, text)
	got := map[*user]*etree.Element{}
	for _, u := range recipients {
		got[u] = u.next()
	}
	return checkGroupchat(t, room, sender, text, got)
}

// isAffsNotif reports whether el is a MUC Light #affiliations notification
// from room listing want ("jid=aff,…" sorted).
func checkAffsNotif(t *testing.T, who string, el *etree.Element, room, want string) {
	t.Helper()
	x := notif(t, el, room, "", rooms.NSAffiliations)
	if got := affsOf(x); got != want {
		t.Errorf("%s: notification lists %s, want %s", who, got, want)
	}
}

// changeAffs sets affiliations natively as owner and returns the
// notification owner got before its result.
func changeAffs(t *testing.T, owner *user, room, items string) *etree.Element {
	t.Helper()
	n := owner.iq("set", room, query(rooms.NSAffiliations, items))
	expectResult(t, owner.next(), room)
	return n
}

// Different users: alice uses MUC Light, bob XEP-0045. Bob, added by
// alice, enters and sees the occupants, himself and the subject; groupchat
// is the same message for both, with the room's one stanza-id.
func TestDualJoinAndGroupchat(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "both", alice, bob)
	if subj := bob.enter(room, "member", [2]string{"alice@localhost", "owner"}); subj != "" {
		t.Errorf("subject %q, want none set", subj)
	}
	groupchat(t, room, alice, "from native", alice, bob)
	groupchat(t, room, bob, "from muc", alice, bob)
	alice.quiet()
	bob.quiet()
}

// An affiliation change made natively: the MUC Light occupant gets the
// #affiliations notification, the XEP-0045 one a presence per changed user
// (321 when removed) and no notification; the newcomer, not entered, the
// MUC Light newcomer notification and no invitation.
func TestDualAffiliationChange(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob, carol := e.login("alice"), e.login("bob"), e.login("carol")
	room := createRoom(t, "affs", alice, bob)
	bob.enter(room, "member", [2]string{"alice@localhost", "owner"})

	checkAffsNotif(t, "alice", changeAffs(t, alice, room, "<user affiliation='member'>carol@localhost</user>"), room, "carol@localhost=member")
	got := mark(t, room, alice, "added", alice, bob, carol)
	expectNone(t, "alice", got[alice])
	checkPresence(t, expectOne(t, "bob", got[bob]), room, "carol@localhost", "", "member", "")
	n := expectOne(t, "carol", got[carol])
	checkAffsNotif(t, "carol", n, room, "carol@localhost=member")
	if _, ok := childText(xmpp.Child(n, "x", rooms.NSAffiliations), "version"); !ok {
		t.Errorf("newcomer notification without version: %s", xmpp.String(n))
	}

	checkAffsNotif(t, "alice", changeAffs(t, alice, room, "<user affiliation='none'>carol@localhost</user>"), room, "carol@localhost=none")
	checkAffsNotif(t, "carol", carol.next(), room, "carol@localhost=none")
	got = mark(t, room, alice, "removed", alice, bob)
	expectNone(t, "alice", got[alice])
	checkPresence(t, expectOne(t, "bob", got[bob]), room, "carol@localhost", "unavailable", "none", "321")
	carol.quiet()
}

// Configuration: a XEP-0045 subject change reaches XEP-0045 occupants as a
// subject message from room/changer and MUC Light occupants as the
// #configuration notification; a native roomname change is status 104 for
// XEP-0045 occupants, a native subject change a subject message from
// room/alice.
func TestDualSubjectAndConfig(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := createRoom(t, "topics", alice, bob, kate)
	bob.enter(room, "member", [2]string{"alice@localhost", "owner"}, [2]string{"kate@localhost", "member"})
	kate.enter(room, "member", [2]string{"alice@localhost", "owner"}, [2]string{"bob@localhost", "member"})

	s := etree.NewElement("message")
	s.CreateAttr("to", room)
	s.CreateAttr("type", "groupchat")
	s.CreateAttr("id", "subj1")
	s.CreateElement("subject").SetText("x")
	bob.Send(tctx(t), s)
	got := mark(t, room, bob, "after subject", alice, bob, kate)
	for _, u := range []*user{bob, kate} {
		el := expectOne(t, u.name, got[u])
		if sub, _ := childText(el, "subject"); sub != "x" || el.SelectAttrValue("from", "") != room+"/bob@localhost" || el.SelectAttrValue("type", "") != "groupchat" {
			t.Errorf("%s got %s, want the subject from %s/bob@localhost", u.name, xmpp.String(el), room)
		}
	}
	x := notif(t, expectOne(t, "alice", got[alice]), room, "subj1", rooms.NSConfiguration)
	if sub, _ := childText(x, "subject"); sub != "x" {
		t.Errorf("alice's notification: %s", xmpp.String(x))
	}
	for _, v := range []string{"prev-version", "version"} {
		if _, ok := childText(x, v); !ok {
			t.Errorf("alice's notification without %s: %s", v, xmpp.String(x))
		}
	}

	n := alice.iq("set", room, query(rooms.NSConfiguration, "<roomname>Club</roomname>"))
	if name, _ := childText(notif(t, n, room, "", rooms.NSConfiguration), "roomname"); name != "Club" {
		t.Errorf("alice's notification %s", xmpp.String(n))
	}
	expectResult(t, alice.next(), room)
	got = mark(t, room, alice, "after name", bob, kate)
	for _, u := range []*user{bob, kate} {
		el := expectOne(t, u.name, got[u])
		if _, _, codes := mucUser(t, el); codes != "104" || el.SelectAttrValue("from", "") != room {
			t.Errorf("%s got %s, want status 104 from the room", u.name, xmpp.String(el))
		}
	}

	n = alice.iq("set", room, query(rooms.NSConfiguration, "<subject>y</subject>"))
	notif(t, n, room, "", rooms.NSConfiguration)
	expectResult(t, alice.next(), room)
	got = mark(t, room, alice, "after native subject", bob, kate)
	for _, u := range []*user{bob, kate} {
		el := expectOne(t, u.name, got[u])
		if sub, _ := childText(el, "subject"); sub != "y" || el.SelectAttrValue("from", "") != room+"/alice@localhost" {
			t.Errorf("%s got %s, want the subject from %s/alice@localhost", u.name, xmpp.String(el), room)
		}
	}
	alice.quiet()
	if subj := e.loginAs("bob", "later").enter(room, "member", [2]string{"alice@localhost", "owner"}, [2]string{"kate@localhost", "member"}); subj != "y" {
		t.Errorf("a later entrant is told subject %q", subj)
	}
}

// One user, two sessions: bob/phone uses MUC Light, bob/laptop entered
// with XEP-0045. Each gets an affiliation change once, in its own form;
// groupchat reaches both once.
func TestDualSameUserTwoSessions(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice := e.login("alice")
	phone, laptop := e.loginAs("bob", "phone"), e.loginAs("bob", "laptop")
	room := createRoom(t, "split", alice, phone)
	notif(t, laptop.next(), room, "", rooms.NSAffiliations)
	laptop.enter(room, "member", [2]string{"alice@localhost", "owner"})

	changeAffs(t, alice, room, "<user affiliation='member'>carol@localhost</user>")
	got := mark(t, room, alice, "both sessions", phone, laptop)
	checkAffsNotif(t, "bob/phone", expectOne(t, "bob/phone", got[phone]), room, "carol@localhost=member")
	checkPresence(t, expectOne(t, "bob/laptop", got[laptop]), room, "carol@localhost", "", "member", "")

	groupchat(t, room, phone, "from the phone", alice, phone, laptop)
	for _, u := range []*user{alice, phone, laptop} {
		u.quiet()
	}
}

// Leaving: the unavailable presence is answered with bob's own unavailable
// presence (110); from then on his session gets MUC Light notifications.
func TestDualLeave(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "exit", alice, bob)
	bob.enter(room, "member", [2]string{"alice@localhost", "owner"})
	bob.leave(room)
	checkPresence(t, bob.next(), room, "bob@localhost", "unavailable", "member", "110")
	changeAffs(t, alice, room, "<user affiliation='member'>carol@localhost</user>")
	got := mark(t, room, alice, "left", bob)
	checkAffsNotif(t, "bob", expectOne(t, "bob", got[bob]), room, "carol@localhost=member")
	bob.quiet()
}

// unloads records the rooms the hub unloads, in order.
type unloads struct {
	mu   sync.Mutex
	seen []string
	ch   chan string
}

func watchUnloads(e *env) *unloads {
	u := &unloads{ch: make(chan string, 64)}
	rooms.SetUnloadHook(e.hub, func(j xmpp.JID) {
		u.mu.Lock()
		u.seen = append(u.seen, j.String())
		u.mu.Unlock()
		u.ch <- j.String()
	})
	return u
}

// wait waits until room has been unloaded (since the last wait for it).
func (u *unloads) wait(t *testing.T, room string) {
	t.Helper()
	for {
		select {
		case j := <-u.ch:
			if j == room {
				return
			}
		case <-tctx(t).Done():
			t.Fatalf("%s never unloaded", room)
		}
	}
}

// since returns how many unloads were seen so far, for has.
func (u *unloads) since() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// has reports whether room was unloaded after the first n unloads.
func (u *unloads) has(room string, n int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.seen[n:], room)
}

// Disconnecting ends the XEP-0045 occupancy: the room unloads again when
// idle, and a new session with the same resource gets MUC Light. A room
// with an occupant still entered stays loaded while rooms around it come
// and go.
func TestDualDisconnect(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{IdleTimeout: 20 * time.Millisecond})
	seen := watchUnloads(e)
	alice, phone, laptop := e.login("alice"), e.loginAs("bob", "phone"), e.loginAs("bob", "laptop")
	kept := createRoom(t, "kept", alice, phone)
	laptop.next()
	gone := createRoom(t, "gone", alice, phone)
	laptop.next()
	phone.enter(kept, "member", [2]string{"alice@localhost", "owner"})
	entered := seen.since() // kept may have unloaded before the join
	laptop.enter(gone, "member", [2]string{"alice@localhost", "owner"})
	if err := laptop.Close(tctx(t)); err != nil {
		t.Fatal(err)
	}
	seen.wait(t, gone) // only once the disconnected occupant has left

	// Two rooms made after kept was last used come and go: kept, with
	// bob/phone in it, stays loaded.
	for i := range 2 {
		idle := createRoom(t, fmt.Sprintf("idle%d", i), alice)
		seen.wait(t, idle)
	}
	if seen.has(kept, entered) {
		t.Fatalf("%s unloaded with an occupant in it", kept)
	}
	if n := rooms.LoadedRooms(e.hub); n != 1 {
		t.Errorf("%d rooms loaded, want only %s", n, kept)
	}

	again := e.loginAs("bob", "laptop")
	changeAffs(t, alice, gone, "<user affiliation='member'>carol@localhost</user>")
	got := mark(t, gone, alice, "back", again, phone)
	checkAffsNotif(t, "new bob/laptop", expectOne(t, "new bob/laptop", got[again]), gone, "carol@localhost=member")
	checkAffsNotif(t, "bob/phone", expectOne(t, "bob/phone", got[phone]), gone, "carol@localhost=member")

	phone.leave(kept)
	checkPresence(t, phone.next(), kept, "bob@localhost", "unavailable", "member", "110")
	seen.wait(t, kept)
}

// A new session that takes an entered session's resource has not entered:
// it gets MUC Light until it joins itself, and XEP-0045 afterwards.
func TestDualReplacedResource(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	// Hooks go in before any request; this one is armed later.
	var armed atomic.Bool
	left := make(chan struct{}, 1)
	rooms.SetHandleHook(e.hub, func(st *xmpp.Stanza) {
		if armed.Load() && st.From.IsZero() { // the first internal request after: the old session's leave
			select {
			case left <- struct{}{}:
			default: // the leaves of the test's end
			}
		}
	})
	alice := e.login("alice")
	old := e.loginAs("bob", "laptop")
	room := createRoom(t, "replaced", alice, old)
	old.enter(room, "member", [2]string{"alice@localhost", "owner"})
	// The old session stops reading: its end, and so its leave, waits for
	// a closing handshake it never answers. The new session must not
	// depend on it.
	old.StopReading()
	newer := e.loginAs("bob", "laptop")

	changeAffs(t, alice, room, "<user affiliation='member'>carol@localhost</user>")
	got := mark(t, room, alice, "replaced", newer)
	checkAffsNotif(t, "new bob/laptop", expectOne(t, "new bob/laptop", got[newer]), room, "carol@localhost=member")

	newer.enter(room, "member", [2]string{"alice@localhost", "owner"}, [2]string{"carol@localhost", "member"})
	// The old session's end, now, must not end the new one's occupancy:
	// its leave names the old session.
	armed.Store(true)
	old.CloseNow()
	select {
	case <-left:
	case <-tctx(t).Done():
		t.Fatal("the old session's end never reached the room")
	}
	changeAffs(t, alice, room, "<user affiliation='none'>carol@localhost</user>")
	got = mark(t, room, alice, "entered", newer)
	checkPresence(t, expectOne(t, "new bob/laptop", got[newer]), room, "carol@localhost", "unavailable", "none", "321")
	newer.quiet()
}

// Destroyed natively: an entered session gets its own unavailable
// presence with <destroy/>, the MUC Light sessions the destroy notice.
func TestDualDestroy(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice := e.login("alice")
	phone, laptop := e.loginAs("bob", "phone"), e.loginAs("bob", "laptop")
	room := createRoom(t, "doomed", alice, phone)
	laptop.next()
	laptop.enter(room, "member", [2]string{"alice@localhost", "owner"})
	iq := client.IQ("set", room, query(rooms.NSDestroy, ""))
	iq.CreateAttr("id", "boom")
	alice.Send(tctx(t), iq)
	for _, u := range []*user{alice, phone} {
		x := notif(t, u.next(), room, "boom", rooms.NSAffiliations)
		if affsOf(x) != u.bare+"=none" {
			t.Errorf("%s: destroy notice lists %s", u.name, affsOf(x))
		}
	}
	expectResult(t, alice.next(), room)
	p := laptop.next()
	checkPresence(t, p, room, "bob@localhost", "unavailable", "none", "")
	if xmpp.Child(xmpp.Child(p, "x", rooms.NSMUCUser), "destroy", rooms.NSMUCUser) == nil {
		t.Errorf("no <destroy/>: %s", xmpp.String(p))
	}
	for _, u := range []*user{alice, phone, laptop} {
		u.quiet()
	}
}

// A XEP-0045 mediated invitation adds a member: the newcomer gets the MUC
// Light newcomer notification and, since the change came in XEP-0045, the
// invitation its inviter expects; entered occupants see a presence.
func TestDualMediatedInvitation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(*rooms.Options)
		bobAff string
	}{
		{"owner invites", nil, "owner"},
		{"member invites with all_can_invite", func(o *rooms.Options) { o.AllCanInvite = true }, "member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvFull(t, tc.tweak, nil, rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}}, []string{"localhost"})
			alice, bob, carol := e.login("alice"), e.login("bob"), e.login("carol")
			room := "invite@" + svc
			alice.iq("set", room, query(rooms.NSCreate, "<occupants><user affiliation='"+tc.bobAff+"'>bob@localhost</user></occupants>"))
			expectResult(t, alice.next(), room)
			bob.next()
			aliceAff := "owner"
			if tc.bobAff == "owner" {
				aliceAff = "member"
			}
			bob.enter(room, tc.bobAff, [2]string{"alice@localhost", aliceAff})

			inv := etree.NewElement("message")
			inv.CreateAttr("to", room)
			inv.CreateAttr("id", "inv1")
			x := inv.CreateElement("x")
			x.CreateAttr("xmlns", rooms.NSMUCUser)
			x.CreateElement("invite").CreateAttr("to", "carol@localhost")
			bob.Send(tctx(t), inv)

			got := mark(t, room, bob, "invited", alice, bob, carol)
			checkAffsNotif(t, "alice", expectOne(t, "alice", got[alice]), room, "carol@localhost=member")
			checkPresence(t, expectOne(t, "bob", got[bob]), room, "carol@localhost", "", "member", "")
			if len(got[carol]) != 2 {
				for _, el := range got[carol] {
					t.Logf("carol got %s", xmpp.String(el))
				}
				t.Fatalf("carol got %d stanzas, want the newcomer notification and the invitation", len(got[carol]))
			}
			checkAffsNotif(t, "carol", got[carol][0], room, "carol@localhost=member")
			m := got[carol][1]
			ix := xmpp.Child(m, "x", rooms.NSMUCUser)
			if m.Tag != "message" || m.SelectAttrValue("from", "") != room || ix == nil ||
				xmpp.Child(ix, "invite", rooms.NSMUCUser).SelectAttrValue("from", "") != "bob@localhost" {
				t.Errorf("invitation %s", xmpp.String(m))
			}
		})
	}
}

// History is one archive: bob's XEP-0045 groupchat is in the MUC Light
// history alice pages through, with the live stanza-id.
func TestDualHistory(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "history", alice, bob)
	bob.enter(room, "member", [2]string{"alice@localhost", "owner"})
	sid := groupchat(t, room, bob, "for the record", alice, bob)
	p := alice.mam(room, "")
	i := slices.Index(p.bodies, "for the record")
	if i < 0 {
		t.Fatalf("history %v lacks bob's message", p.bodies)
	}
	if p.ids[i] != sid || p.forwardedFrom[i] != room+"/bob@localhost" {
		t.Errorf("archived as %s from %s, live %s", p.ids[i], p.forwardedFrom[i], sid)
	}
}

// Strangers and stray presences: a non-member's join is
// registration-required; presence to a bare room JID is ignored; the
// service advertises MUC Light first, then XEP-0045.
func TestDualStrangersAndDisco(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, mike := e.login("alice"), e.login("mike")
	room := createRoom(t, "closed", alice)
	mike.join(room, mike.bare)
	el := mike.next()
	expectError(t, el, "registration-required")
	if el.Tag != "presence" || el.SelectAttrValue("from", "") != room+"/"+mike.bare {
		t.Errorf("refusal %s", xmpp.String(el))
	}
	for _, typ := range []string{"", "unavailable"} {
		p := etree.NewElement("presence")
		p.CreateAttr("to", room)
		if typ != "" {
			p.CreateAttr("type", typ)
		}
		alice.Send(tctx(t), p)
	}
	alice.quiet()
	info := xmpp.Child(alice.iq("get", svc, xmpp.Elem("query", xmpp.NSDiscoInfo)), "query", xmpp.NSDiscoInfo)
	var feats []string
	for _, f := range xmpp.Children(info, "feature", xmpp.NSDiscoInfo) {
		feats = append(feats, f.SelectAttrValue("var", ""))
	}
	if len(feats) < 2 || feats[0] != rooms.NS || feats[1] != rooms.NSMUC {
		t.Errorf("service features %v, want %s then %s first", feats, rooms.NS, rooms.NSMUC)
	}
	if !strings.Contains(strings.Join(feats, " "), "urn:xmpp:mam:2") {
		t.Errorf("service features %v without history", feats)
	}
}

// A XEP-0045 join creates a missing room: the joining session is told in
// XEP-0045 (110 and 201) and nothing else; the creator's other sessions
// learn of the room in MUC Light.
func TestDualJoinCreates(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	phone, laptop := e.loginAs("bob", "phone"), e.loginAs("bob", "laptop")
	room := "fresh@" + svc
	laptop.join(room, laptop.bare)
	checkPresence(t, laptop.next(), room, "bob@localhost", "", "owner", "110,201")
	checkAffsNotif(t, "bob/phone", phone.next(), room, "bob@localhost=owner")
	got := mark(t, room, laptop, "made", phone)
	expectNone(t, "bob/laptop", got[laptop])
	expectNone(t, "bob/phone", got[phone])
}

// Losing one's affiliation ends the occupancy: the entered session gets
// its own unavailable presence (321, 110), the user's other sessions the
// MUC Light notice; added again, the session that had entered gets MUC
// Light until it enters again.
func TestDualRemovedOccupant(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice := e.login("alice")
	phone, laptop := e.loginAs("bob", "phone"), e.loginAs("bob", "laptop")
	room := createRoom(t, "kicked", alice, phone)
	laptop.next()
	laptop.enter(room, "member", [2]string{"alice@localhost", "owner"})
	if n := rooms.EnteredRooms(e.hub); n != 1 {
		t.Fatalf("%d occupancies indexed after the join, want 1", n)
	}
	changeAffs(t, alice, room, "<user affiliation='none'>bob@localhost</user>")
	checkPresence(t, laptop.next(), room, "bob@localhost", "unavailable", "none", "321,110")
	// The index forgets it at once, not when the session ends.
	if n := rooms.EnteredRooms(e.hub); n != 0 {
		t.Errorf("%d occupancies indexed after the removal, want 0", n)
	}
	checkAffsNotif(t, "bob/phone", phone.next(), room, "bob@localhost=none")
	laptop.quiet()
	phone.quiet()
	changeAffs(t, alice, room, "<user affiliation='member'>bob@localhost</user>")
	for _, u := range []*user{phone, laptop} {
		checkAffsNotif(t, u.name, u.next(), room, "bob@localhost=member")
	}
	got := mark(t, room, alice, "back again", phone, laptop)
	expectNone(t, "bob/phone", got[phone])
	expectNone(t, "bob/laptop", got[laptop])
}

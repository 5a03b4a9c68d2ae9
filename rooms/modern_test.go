package rooms_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// Modern group chat (issue 19; README "Modern group chat") over real
// WebSockets, on both stores: occupant ids, corrections, retractions,
// moderation, reactions, replies, summaries and read state.

// onBothStores runs fn on a server with history in the embedded store and
// in MongoDB (embedded FerretDB unless MONGODB_URI is set).
func onBothStores(t *testing.T, fn func(t *testing.T, e *env)) {
	ho := rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}}
	t.Run("embedded", func(t *testing.T) { fn(t, newEnvFull(t, nil, nil, ho, []string{"localhost"})) })
	t.Run("mongodb", func(t *testing.T) {
		uri := mongotest.URI(t)
		st, err := mongo.Open(tctx(t), mongo.Config{URI: uri, Database: fmt.Sprintf("modern%d_%d", os.Getpid(), time.Now().UnixNano()), OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		for _, u := range []string{"alice", "bob", "kate", "mike", "carol"} {
			rec, _ := account.New(xmpp.MustParseJID(u+"@localhost"), "pw")
			if err := st.CreateAccount(tctx(t), rec); err != nil {
				t.Fatal(err)
			}
		}
		fn(t, newNode(t, backing{st, st, st.Archive()}, nil, nil, ho, []string{"localhost"}, nil))
	})
}

// send sends a groupchat message with the given id and raw children.
func (u *user) send(room, id, inner string) {
	u.t.Helper()
	m := client.Message(room, "groupchat", "")
	for _, c := range slices.Clone(m.ChildElements()) {
		m.RemoveChild(c)
	}
	m.CreateAttr("id", id)
	doc := etree.NewDocument()
	if err := doc.ReadFromString("<x xmlns='jabber:client'>" + inner + "</x>"); err != nil {
		u.t.Fatal(err)
	}
	for _, c := range doc.Root().ChildElements() {
		m.AddChild(c.Copy())
	}
	if err := u.Send(tctx(u.t), m); err != nil {
		u.t.Fatal(err)
	}
}

// fanned waits for the message with id on every recipient and checks
// they got the same stanza-id and occupant-id; it returns the first copy.
func fanned(t *testing.T, id string, recipients ...*user) *etree.Element {
	t.Helper()
	var first *etree.Element
	for _, u := range recipients {
		el := u.next()
		if el.Tag != "message" || el.SelectAttrValue("id", "") != id || el.SelectAttrValue("type", "") == "error" {
			t.Fatalf("%s: want message %s, got %s", u.name, id, xmpp.String(el))
		}
		if first == nil {
			first = el
			continue
		}
		if sidOf(el) != sidOf(first) || occOf(el) != occOf(first) {
			t.Fatalf("copies differ: %s vs %s", xmpp.String(el), xmpp.String(first))
		}
	}
	return first
}

func sidOf(el *etree.Element) string {
	return xmpp.Attr(xmpp.Child(el, "stanza-id", rooms.NSSID), "id")
}

func occOf(el *etree.Element) string {
	occ := xmpp.Children(el, "occupant-id", rooms.NSOccupantID)
	if len(occ) != 1 {
		return fmt.Sprintf("%d occupant-ids", len(occ))
	}
	return xmpp.Attr(occ[0], "id")
}

// refused waits for the error bounce of message id on u.
func refused(t *testing.T, u *user, id, cond string) {
	t.Helper()
	el := u.next()
	if el.SelectAttrValue("id", "") != id {
		t.Fatalf("%s: want the bounce of %s, got %s", u.name, id, xmpp.String(el))
	}
	expectError(t, el, cond)
}

// summaryQuery runs a MAM query with the summary flag.
func (u *user) summary(room string) mamPage {
	return u.mam(room, "<summary xmlns='urn:xmppws:summary:0'/>")
}

func TestModernChat(t *testing.T) { onBothStores(t, modernChat) }

func modernChat(t *testing.T, e *env) {
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "modern", alice, bob)

	// Occupant ids: on every copy, one per user, not the JID; a client's
	// own occupant-id is replaced.
	alice.send(room, "a1", "<body>hello</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/>")
	m := fanned(t, "a1", alice, bob)
	hello, aliceOcc := sidOf(m), occOf(m)
	if aliceOcc == "forged" || len(aliceOcc) != 22 || strings.Contains(aliceOcc, "alice") {
		t.Fatalf("alice's occupant-id %q", aliceOcc)
	}
	bob.send(room, "b1", "<body>hi</body>")
	m = fanned(t, "b1", alice, bob)
	bobMsg, bobOcc := sidOf(m), occOf(m)
	if bobOcc == aliceOcc || len(bobOcc) != 22 {
		t.Fatalf("bob's occupant-id %q, alice's %q: want distinct", bobOcc, aliceOcc)
	}
	alice.CloseNow()
	alice = e.login("alice") // a reconnect keeps the id
	alice.send(room, "a2", "<body>back</body>")
	if got := occOf(fanned(t, "a2", alice, bob)); got != aliceOcc {
		t.Errorf("after a reconnect alice's occupant-id %q, want %q", got, aliceOcc)
	}

	// Corrections: only the author; unknown originals are item-not-found.
	bob.send(room, "b-fix", "<body>hijack</body><replace id='a1' xmlns='urn:xmpp:message-correct:0'/>")
	refused(t, bob, "b-fix", "forbidden")
	alice.send(room, "a-bad", "<body>x</body><replace id='nope' xmlns='urn:xmpp:message-correct:0'/>")
	refused(t, alice, "a-bad", "item-not-found")
	alice.send(room, "a1-fix1", "<body>hello wrld</body><replace id='a1' xmlns='urn:xmpp:message-correct:0'/>")
	fix1 := sidOf(fanned(t, "a1-fix1", alice, bob))
	// A chained correction (naming the previous one) still corrects the
	// original.
	alice.send(room, "a1-fix2", "<body>hello world</body><replace id='a1-fix1' xmlns='urn:xmpp:message-correct:0'/>")
	fix2 := sidOf(fanned(t, "a1-fix2", alice, bob))
	bob.send(room, "b-fix2", "<body>x</body><replace id='"+hello+"' xmlns='urn:xmpp:message-correct:0'/>")
	refused(t, bob, "b-fix2", "forbidden") // by stanza-id, still alice's
	// Client ids of two users may collide: a correction finds its
	// sender's own message.
	bob.send(room, "a2", "<body>bob's a2</body>")
	fanned(t, "a2", alice, bob)
	alice.send(room, "a2-fix", "<body>back again</body><replace id='a2' xmlns='urn:xmpp:message-correct:0'/>")
	fanned(t, "a2-fix", alice, bob)

	// Reactions: a user's set replaces the previous one; bounded; to a
	// message of this room only.
	react := func(u *user, id, target string, emojis ...string) string {
		var b strings.Builder
		for _, e := range emojis {
			b.WriteString("<reaction>" + e + "</reaction>")
		}
		return fmt.Sprintf("<reactions id='%s' xmlns='urn:xmpp:reactions:0'>%s</reactions><store xmlns='urn:xmpp:hints'/>", target, b.String())
	}
	bob.send(room, "r1", react(bob, "r1", hello, "👍"))
	fanned(t, "r1", alice, bob)
	bob.send(room, "r2", react(bob, "r2", hello, "🎉", "❤", "🎉"))
	fanned(t, "r2", alice, bob)
	alice.send(room, "r3", react(alice, "r3", hello, "👍"))
	fanned(t, "r3", alice, bob)
	many := make([]string, 21)
	for i := range many {
		many[i] = "e" + strconv.Itoa(i)
	}
	bob.send(room, "r-many", react(bob, "", hello, many...))
	refused(t, bob, "r-many", "not-acceptable")
	bob.send(room, "r-unknown", react(bob, "", "0000000000000000ffff"))
	refused(t, bob, "r-unknown", "item-not-found")
	other := createRoom(t, "other", alice, bob)
	bob.send(other, "r-other", react(bob, "", hello, "👍"))
	refused(t, bob, "r-other", "item-not-found")

	// Replies are archived as sent.
	bob.send(room, "b-reply", "<reply to='"+room+"/alice@localhost' id='"+hello+"' xmlns='urn:xmpp:reply:0'/>"+
		"<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='8'/></fallback><body>&gt; hello\nyes</body>")
	replySID := sidOf(fanned(t, "b-reply", alice, bob))

	// Summary: the original with its latest edit and both users' sets;
	// fastenings left out.
	s := alice.summary(room)
	if !slices.Contains(s.ids, hello) || slices.Contains(s.ids, fix1) || slices.Contains(s.ids, fix2) {
		t.Fatalf("summary ids %v: want %s and no corrections", s.ids, hello)
	}
	i := slices.Index(s.ids, hello)
	if s.bodies[i] != "hello" {
		t.Errorf("summary keeps the original's body, got %q", s.bodies[i])
	}
	sum := summaryOf(t, alice, room, hello)
	if got := xmpp.Attr(xmpp.Child(sum, "edit", rooms.NSSummary), "id"); got != fix2 {
		t.Errorf("summary edit id %q, want the latest correction %s: %s", got, fix2, xmpp.String(sum))
	}
	if b, _ := childText(xmpp.Child(sum, "edit", rooms.NSSummary), "body"); b != "hello world" {
		t.Errorf("summary edit body %q", b)
	}
	if got := reactionsOf(sum); got != "alice:👍 bob:❤ bob:🎉" {
		t.Errorf("summary reactions %q, want bob's second set and alice's", got)
	}
	for j, id := range s.ids {
		if id == replySID {
			if xmpp.Child(s.results[j], "reply", rooms.NSReply) == nil || xmpp.Child(s.results[j], "fallback", "urn:xmpp:fallback:0") == nil {
				t.Errorf("archived reply lost its reply or fallback: %s", xmpp.String(s.results[j]))
			}
		}
	}

	// Read state: bob's unread count moves with his markers.
	if u := unreadOf(t, bob, room); u.unread != 2 || u.lastRead != "" {
		t.Errorf("bob before any marker: %+v, want alice's two messages unread (corrections are not messages)", u)
	}
	bob.send(room, "d1", "<displayed xmlns='urn:xmpp:chat-markers:0' id='"+hello+"'/>")
	bob.send(room, "d-bad", "<displayed xmlns='urn:xmpp:chat-markers:0' id='0000000000000000ffff'/>")
	refused(t, bob, "d-bad", "item-not-found") // the first marker was stored silently, before this
	if u := unreadOf(t, bob, room); u.unread != 1 || u.lastRead != hello || u.lastID != replySID {
		t.Errorf("bob after reading %s: %+v, want one unread (alice's 'back')", hello, u)
	}
	if u := unreadOf(t, alice, room); u.unread != 3 {
		t.Errorf("alice: %+v, want bob's three messages", u)
	}

	// Retraction: only the author; then a tombstone in every later query.
	bob.send(room, "b-ret", "<retract id='"+hello+"' xmlns='urn:xmpp:message-retract:1'/><body>retracted</body>")
	refused(t, bob, "b-ret", "forbidden")
	alice.send(room, "a-ret", "<retract id='"+hello+"' xmlns='urn:xmpp:message-retract:1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>retracted</body>")
	if r := fanned(t, "a-ret", alice, bob); xmpp.Attr(xmpp.Child(r, "retract", rooms.NSRetract), "id") != hello {
		t.Fatalf("retraction fanned out as %s", xmpp.String(r))
	}
	alice.send(room, "a-ret2", "<retract id='"+hello+"' xmlns='urn:xmpp:message-retract:1'/>")
	refused(t, alice, "a-ret2", "item-not-found")
	bob.send(room, "r-dead", react(bob, "", hello, "👍"))
	refused(t, bob, "r-dead", "item-not-found")
	alice.send(room, "a1-fix3", "<body>again</body><replace id='a1' xmlns='urn:xmpp:message-correct:0'/>")
	refused(t, alice, "a1-fix3", "item-not-found")

	// Moderation: owners only; the target becomes a moderated tombstone.
	modIQ := func(u *user, target string) *etree.Element {
		q := xmpp.Elem("moderate", rooms.NSModerate)
		q.CreateAttr("id", target)
		q.CreateElement("retract").CreateAttr("xmlns", rooms.NSRetract)
		q.CreateElement("reason").SetText("off topic")
		return u.iq("set", room, q)
	}
	expectError(t, modIQ(bob, bobMsg), "forbidden")
	res := modIQ(alice, bobMsg)
	var ann *etree.Element
	if res.Tag == "message" { // the announcement may precede the result
		ann, res = res, alice.next()
	} else {
		ann = alice.next()
	}
	expectResult(t, res, room)
	for _, a := range []*etree.Element{ann, bob.next()} {
		rt := xmpp.Child(a, "retract", rooms.NSRetract)
		md := xmpp.Child(rt, "moderated", rooms.NSModerate)
		if a.SelectAttrValue("from", "") != room || xmpp.Attr(rt, "id") != bobMsg || md == nil || xmpp.Attr(md, "by") != room+"/alice@localhost" {
			t.Fatalf("moderation announced as %s", xmpp.String(a))
		}
	}
	expectError(t, modIQ(alice, "0000000000000000ffff"), "item-not-found")

	// Every later query, raw or summary, by id or not, serves tombstones.
	for _, q := range []string{"", "<summary xmlns='urn:xmppws:summary:0'/>",
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='ids'><value>" + hello + "</value><value>" + fix2 + "</value><value>" + bobMsg + "</value></field></x>"} {
		for _, u := range []*user{alice, bob} {
			p := u.mam(room, q)
			for j, id := range p.ids {
				if id != hello && id != fix1 && id != fix2 && id != bobMsg {
					continue
				}
				msg := p.results[j]
				rt := xmpp.Child(msg, "retracted", rooms.NSRetract)
				if rt == nil || xmpp.Child(msg, "body", xmpp.NSClient) != nil || strings.Contains(xmpp.String(msg), "hello") {
					t.Errorf("query %q: %s is not a tombstone: %s", q, id, xmpp.String(msg))
				}
				md := xmpp.Child(rt, "moderated", rooms.NSModerate)
				if (id == bobMsg) != (md != nil) {
					t.Errorf("query %q: %s moderated=%v: %s", q, id, md != nil, xmpp.String(msg))
				}
				if id == bobMsg {
					if r, _ := childText(rt, "reason"); r != "off topic" || occOf(msg) != bobOcc {
						t.Errorf("moderated tombstone: %s", xmpp.String(msg))
					}
				}
			}
		}
	}
	alice.quiet()
	bob.quiet()
}

// summaryOf returns the <summary/> of the result id in a summary query.
func summaryOf(t *testing.T, u *user, room, id string) *etree.Element {
	t.Helper()
	iq := client.IQ("set", room, query(rooms.NSMAM2, "<summary xmlns='urn:xmppws:summary:0'/>"))
	iq.CreateAttr("id", "sumq")
	u.Send(tctx(t), iq)
	var found *etree.Element
	for {
		el := u.next()
		if el.Tag == "iq" {
			if found == nil {
				t.Fatalf("no summary for %s", id)
			}
			return found
		}
		r := xmpp.Child(el, "result", rooms.NSMAM2)
		if xmpp.Attr(r, "id") == id {
			found = xmpp.Child(r, "summary", rooms.NSSummary)
		}
	}
}

// reactionsOf lists a summary's reactions as "user:emoji", sorted.
func reactionsOf(sum *etree.Element) string {
	var out []string
	for _, r := range xmpp.Children(xmpp.Child(sum, "reactions", rooms.NSSummary), "reaction", rooms.NSSummary) {
		from := xmpp.Attr(r, "from")
		who := from[strings.Index(from, "/")+1:]
		out = append(out, strings.TrimSuffix(who, "@localhost")+":"+r.Text())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

type unreadRoom struct {
	unread           int
	lastRead, lastID string
}

// unreadOf asks the service for u's unread counts and returns room's.
func unreadOf(t *testing.T, u *user, room string) unreadRoom {
	t.Helper()
	res := u.iq("get", svc, xmpp.Elem("unread", rooms.NSUnread))
	expectResult(t, res, svc)
	for _, r := range xmpp.Children(xmpp.Child(res, "unread", rooms.NSUnread), "room", rooms.NSUnread) {
		if xmpp.Attr(r, "jid") == room {
			n, _ := strconv.Atoi(xmpp.Attr(r, "unread"))
			return unreadRoom{unread: n, lastRead: xmpp.Attr(r, "last-read"), lastID: xmpp.Attr(r, "last-id")}
		}
	}
	t.Fatalf("no unread entry for %s: %s", room, xmpp.String(res))
	return unreadRoom{}
}

// A XEP-0045 occupant and a MUC Light one see the same occupant-id for a
// sender, and a XEP-0045 sender gets the same id as when it posts natively;
// a XEP-0045 session can retract its own message.
func TestOccupantIDBothDialects(t *testing.T) {
	e := dualEnv(t, rooms.HubOptions{})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "dialects", alice, bob)
	alice.send(room, "native", "<body>native</body>")
	native := occOf(fanned(t, "native", alice, bob))
	bob.join(room, bob.bare)
	if p := bob.next(); xmpp.Attr(xmpp.Child(p, "occupant-id", rooms.NSOccupantID), "id") != native {
		t.Errorf("alice's presence in XEP-0045 carries no occupant-id %q: %s", native, xmpp.String(p))
	}
	self := bob.next()
	checkPresence(t, self, room, "bob@localhost", "", "member", "110")
	bob.next() // the subject
	alice.send(room, "again", "<body>again</body>")
	m := fanned(t, "again", alice, bob) // bob reads it in XEP-0045
	if occOf(m) != native {
		t.Errorf("alice's occupant-id in XEP-0045 %q, natively %q", occOf(m), native)
	}
	bob.send(room, "from-muc", "<body>from muc</body>")
	mm := fanned(t, "from-muc", alice, bob)
	bobMUC := occOf(mm)
	if got := xmpp.Attr(xmpp.Child(self, "occupant-id", rooms.NSOccupantID), "id"); got != bobMUC {
		t.Errorf("bob's self-presence occupant-id %q, his messages' %q", got, bobMUC)
	}
	bob.leave(room)
	checkPresence(t, bob.next(), room, "bob@localhost", "unavailable", "member", "110")
	bob.send(room, "from-native", "<body>from native</body>")
	if got := occOf(fanned(t, "from-native", alice, bob)); got != bobMUC || got == native {
		t.Errorf("bob's occupant-id natively %q, in XEP-0045 %q, alice's %q", got, bobMUC, native)
	}
	bob.send(room, "ret", "<retract id='"+sidOf(mm)+"' xmlns='urn:xmpp:message-retract:1'/>")
	fanned(t, "ret", alice, bob)
	p := alice.mam(room, "")
	for j, id := range p.ids {
		if id == sidOf(mm) && xmpp.Child(p.results[j], "retracted", rooms.NSRetract) == nil {
			t.Errorf("bob's XEP-0045 message is not a tombstone: %s", xmpp.String(p.results[j]))
		}
	}
}

// The XEP-0425 v0 form moderates as v1 does; unread counts page through a
// user's rooms in JID order; a marker that carries a body is delivered as
// a message.
func TestModerationV0AndUnreadPaging(t *testing.T) { onBothStores(t, moderationV0AndUnreadPaging) }

func moderationV0AndUnreadPaging(t *testing.T, e *env) {
	alice, bob := e.login("alice"), e.login("bob")
	var roomsOf []string
	for _, name := range []string{"r1", "r2", "r3"} {
		roomsOf = append(roomsOf, createRoom(t, name, alice, bob))
	}
	room := roomsOf[0]
	bob.send(room, "spam", "<body>spam</body>")
	spam := sidOf(fanned(t, "spam", alice, bob))
	q := xmpp.Elem("apply-to", rooms.NSFasten)
	q.CreateAttr("id", spam)
	mod := q.CreateElement("moderate")
	mod.CreateAttr("xmlns", "urn:xmpp:message-moderate:0")
	mod.CreateElement("retract").CreateAttr("xmlns", "urn:xmpp:message-retract:0")
	res := alice.iq("set", room, q)
	var ann *etree.Element
	if res.Tag == "message" {
		ann, res = res, alice.next()
	} else {
		ann = alice.next()
	}
	expectResult(t, res, room)
	for _, a := range []*etree.Element{ann, bob.next()} {
		ap := xmpp.Child(a, "apply-to", rooms.NSFasten)
		if xmpp.Attr(ap, "id") != spam || xmpp.Child(ap, "moderated", "urn:xmpp:message-moderate:0") == nil {
			t.Fatalf("no v0 announcement: %s", xmpp.String(a))
		}
	}
	p := bob.mam(room, "")
	if i := slices.Index(p.ids, spam); i < 0 || xmpp.Child(p.results[i], "retracted", rooms.NSRetract) == nil {
		t.Fatalf("v0 moderation left no tombstone: %v", p.ids)
	}

	// A marker with a body is a message.
	bob.send(roomsOf[1], "both", "<body>read it</body><displayed xmlns='urn:xmpp:chat-markers:0' id='"+spam+"'/>")
	fanned(t, "both", alice, bob)
	alice.send(roomsOf[2], "a3", "<body>news</body>")
	fanned(t, "a3", alice, bob)

	var got []string
	unread := map[string]string{}
	after := ""
	for page := 0; page < 4; page++ {
		set := "<max>2</max>"
		if after != "" {
			set += "<after>" + after + "</after>"
		}
		q := query(rooms.NSUnread, fmt.Sprintf(rsm, set))
		q.Tag = "unread"
		res := bob.iq("get", svc, q)
		expectResult(t, res, svc)
		u := xmpp.Child(res, "unread", rooms.NSUnread)
		rs := xmpp.Children(u, "room", rooms.NSUnread)
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			got = append(got, xmpp.Attr(r, "jid"))
			unread[xmpp.Attr(r, "jid")] = xmpp.Attr(r, "unread")
		}
		if c, _ := childText(xmpp.Child(u, "set", xmpp.NSRSM), "count"); c != "3" {
			t.Errorf("page %d: count %q, want 3", page, c)
		}
		after, _ = childText(xmpp.Child(u, "set", xmpp.NSRSM), "last")
	}
	want := slices.Sorted(slices.Values(roomsOf))
	if !slices.Equal(got, want) {
		t.Errorf("unread pages listed %v, want %v", got, want)
	}
	// r1: bob's spam (his own) and the moderation are not unread; r2: his
	// own message; r3: alice's news.
	if unread[roomsOf[0]] != "0" || unread[roomsOf[1]] != "0" || unread[roomsOf[2]] != "1" {
		t.Errorf("bob's unread counts %v", unread)
	}
	alice.quiet()
	bob.quiet()
}

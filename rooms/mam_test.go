package rooms_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

func mamEnv(t *testing.T) *env {
	return newEnvFull(t, nil, nil, rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 10, MaxPageSize: 10}}, []string{"localhost"})
}

// say sends a groupchat message and returns the stanza-id every occupant's
// copy carries (checked equal across them).
func say(t *testing.T, room string, from *user, body string, occupants ...*user) string {
	t.Helper()
	m := client.Message(room, "groupchat", body)
	m.CreateAttr("id", "m-"+body)
	from.Send(tctx(t), m)
	sid := ""
	for _, u := range occupants {
		el := u.next()
		if b, _ := childText(el, "body"); b != body {
			t.Fatalf("%s got %s, want body %s", u.name, xmpp.String(el), body)
		}
		s := xmpp.Child(el, "stanza-id", rooms.NSSID)
		if s == nil || s.SelectAttrValue("by", "") != room {
			t.Fatalf("no stanza-id by the room: %s", xmpp.String(el))
		}
		if sid != "" && s.SelectAttrValue("id", "") != sid {
			t.Fatalf("stanza-ids differ between occupants")
		}
		sid = s.SelectAttrValue("id", "")
	}
	return sid
}

// mamPage is one query's answer.
type mamPage struct {
	ids, bodies   []string
	first, last   string
	firstIndex    string
	count         int
	complete      bool
	forwardedFrom []string
	results       []*etree.Element
}

// query runs an archive query (inner = form and RSM children) and collects
// the result messages and the fin.
func (u *user) mam(room, inner string) mamPage {
	u.t.Helper()
	iq := client.IQ("set", room, query(rooms.NSMAM2, inner))
	iq.CreateAttr("id", "mamq")
	xmpp.Child(iq, "query", rooms.NSMAM2).CreateAttr("queryid", "qid")
	u.Send(tctx(u.t), iq)
	var p mamPage
	for {
		el := u.next()
		if el.Tag == "iq" {
			if el.SelectAttrValue("type", "") != "result" {
				u.t.Fatalf("query failed: %s", xmpp.String(el))
			}
			fin := xmpp.Child(el, "fin", rooms.NSMAM2)
			set := xmpp.Child(fin, "set", xmpp.NSRSM)
			p.complete = fin.SelectAttrValue("complete", "") == "true"
			if f := xmpp.Child(set, "first", xmpp.NSRSM); f != nil {
				p.first, p.firstIndex = f.Text(), f.SelectAttrValue("index", "")
			}
			p.last, _ = childText(set, "last")
			c, _ := childText(set, "count")
			p.count, _ = strconv.Atoi(c)
			return p
		}
		r := xmpp.Child(el, "result", rooms.NSMAM2)
		if r == nil || r.SelectAttrValue("queryid", "") != "qid" || el.SelectAttrValue("from", "") != room {
			u.t.Fatalf("unexpected %s", xmpp.String(el))
		}
		fwd := xmpp.Child(r, "forwarded", rooms.NSForward)
		if xmpp.Child(fwd, "delay", xmpp.NSDelay) == nil {
			u.t.Fatalf("no delay: %s", xmpp.String(el))
		}
		msg := xmpp.Child(fwd, "message", xmpp.NSClient)
		b, _ := childText(msg, "body")
		p.ids = append(p.ids, r.SelectAttrValue("id", ""))
		p.bodies = append(p.bodies, b)
		p.forwardedFrom = append(p.forwardedFrom, msg.SelectAttrValue("from", ""))
		p.results = append(p.results, msg)
	}
}

const rsm = "<set xmlns='http://jabber.org/protocol/rsm'>%s</set>"

// A member who joins late pages through the whole history forward and
// backward, with exact first/last/complete; the live stanza-ids are the
// archive ids.
func TestMAMPaging(t *testing.T) {
	e := mamEnv(t)
	alice, bob, carol := e.login("alice"), e.login("bob"), e.login("carol")
	room := createRoom(t, "hist", alice, bob)
	var sids []string
	for i := 0; i < 25; i++ {
		from := alice
		if i%2 == 1 {
			from = bob
		}
		sids = append(sids, say(t, room, from, fmt.Sprintf("msg%02d", i), alice, bob))
	}
	res := alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>carol@localhost</user>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	alice.next()
	bob.next()
	carol.next()
	// 27 entries: the creation, 25 messages, carol's arrival.
	var all []string
	after := ""
	for page := 0; ; page++ {
		set := "<max>10</max>"
		if after != "" {
			set += "<after>" + after + "</after>"
		}
		p := carol.mam(room, fmt.Sprintf(rsm, set))
		if p.count != 27 || p.firstIndex != strconv.Itoa(page*10) || p.first != p.ids[0] || p.last != p.ids[len(p.ids)-1] {
			t.Fatalf("page %d: count %d first %s@%s last %s ids %v", page, p.count, p.first, p.firstIndex, p.last, p.ids)
		}
		all = append(all, p.ids...)
		after = p.last
		if p.complete != (page == 2) {
			t.Fatalf("page %d complete=%v", page, p.complete)
		}
		if p.complete {
			break
		}
	}
	if len(all) != 27 {
		t.Fatalf("forward paging returned %d entries", len(all))
	}
	for i, sid := range sids {
		if all[i+1] != sid {
			t.Fatalf("entry %d is %s, the live stanza-id was %s", i+1, all[i+1], sid)
		}
	}
	// Backward from the end.
	var back []string
	before := ""
	for page := 0; ; page++ {
		p := carol.mam(room, fmt.Sprintf(rsm, "<max>10</max><before>"+before+"</before>"))
		back = append(p.ids, back...)
		before = p.first
		if p.complete != (page == 2) {
			t.Fatalf("backward page %d complete=%v ids %v", page, p.complete, p.ids)
		}
		if p.complete {
			break
		}
	}
	if strings.Join(back, ",") != strings.Join(all, ",") {
		t.Errorf("backward and forward paging disagree")
	}
	// Paging from an id the archive does not hold is item-not-found.
	for _, cursor := range []string{"<after>00000000000000000000</after>", "<before>zzzz</before>"} {
		expectError(t, carol.iq("set", room, query(rooms.NSMAM2, fmt.Sprintf(rsm, cursor))), "item-not-found")
	}
	// flip-page reverses a page.
	p := carol.mam(room, fmt.Sprintf(rsm, "<max>3</max>")+"<flip-page/>")
	if strings.Join(p.ids, ",") != strings.Join([]string{all[2], all[1], all[0]}, ",") {
		t.Errorf("flipped page %v", p.ids)
	}
}

// Section 6.2: creation is archived as an affiliation change listing every
// initial occupant (with version, without prev-version); affiliation changes
// too; configuration changes are not archived; messages keep their id and
// come from room/sender.
func TestMAMWhatIsArchived(t *testing.T) {
	e := mamEnv(t)
	alice, bob, kate := e.login("alice"), e.login("bob"), e.login("kate")
	room := createRoom(t, "rules", alice, bob)
	res := alice.iq("set", room, query(rooms.NSConfiguration, "<subject>not archived</subject>"))
	notif(t, res, room, "", rooms.NSConfiguration)
	alice.next()
	bob.next()
	say(t, room, bob, "hello", alice, bob)
	res = alice.iq("set", room, query(rooms.NSAffiliations, "<user affiliation='member'>kate@localhost</user>"))
	notif(t, res, room, "", rooms.NSAffiliations)
	alice.next()
	bob.next()
	kate.next()
	p := alice.mam(room, "")
	if len(p.results) != 3 {
		t.Fatalf("archived %d entries: %v", len(p.results), p.bodies)
	}
	create := xmpp.Child(p.results[0], "x", rooms.NSAffiliations)
	if create == nil || affsOf(create) != "alice@localhost=owner,bob@localhost=member" || p.forwardedFrom[0] != room {
		t.Errorf("creation entry %s", xmpp.String(p.results[0]))
	}
	if _, ok := childText(create, "version"); !ok {
		t.Error("creation entry without version")
	}
	msg := p.results[1]
	if msg.SelectAttrValue("from", "") != room+"/bob@localhost" || msg.SelectAttrValue("id", "") != "m-hello" || msg.SelectAttr("to") != nil {
		t.Errorf("message entry %s", xmpp.String(msg))
	}
	if sid := xmpp.Child(p.results[2], "stanza-id", rooms.NSSID); sid == nil || sid.SelectAttrValue("id", "") != p.ids[2] {
		t.Errorf("archived affiliation change lacks its stanza-id: %s", xmpp.String(p.results[2]))
	}
	change := xmpp.Child(p.results[2], "x", rooms.NSAffiliations)
	if change == nil || affsOf(change) != "kate@localhost=member" {
		t.Errorf("affiliation entry %s", xmpp.String(p.results[2]))
	}
	if _, ok := childText(change, "prev-version"); ok {
		t.Error("archived affiliation change has prev-version")
	}
	for _, r := range p.results {
		if xmpp.Child(r, "x", rooms.NSConfiguration) != nil {
			t.Error("configuration change archived")
		}
	}
}

func TestMAMFilters(t *testing.T) {
	frozen := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now := frozen
	e := newEnvFull(t, nil, nil, rooms.HubOptions{MAM: rooms.MAMOptions{DefaultPageSize: 50, MaxPageSize: 50}, Now: func() time.Time { return now }}, []string{"localhost"})
	alice, bob := e.login("alice"), e.login("bob")
	room := createRoom(t, "filt", alice, bob)
	var ids []string
	for i := 0; i < 6; i++ {
		now = frozen.Add(time.Duration(i+1) * time.Hour) // the hub's clock: one message an hour
		from := alice
		if i >= 3 {
			from = bob
		}
		ids = append(ids, say(t, room, from, fmt.Sprintf("h%d", i+1), alice, bob))
	}
	form := func(fields string) string {
		return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" + fields + "</x>"
	}
	field := func(v, val string) string { return "<field var='" + v + "'><value>" + val + "</value></field>" }
	for _, tc := range []struct{ name, fields, want string }{
		{"start", field("start", frozen.Add(4*time.Hour).Format(time.RFC3339)), "h4,h5,h6"},
		{"end", field("end", frozen.Add(2*time.Hour).Format(time.RFC3339)), ",h1,h2"}, // the creation entry is older
		{"start and end", field("start", frozen.Add(2*time.Hour).Format(time.RFC3339)) + field("end", frozen.Add(3*time.Hour).Format(time.RFC3339)), "h2,h3"},
		{"with", field("with", "bob@localhost"), "h4,h5,h6"},
		{"after-id", field("after-id", ids[3]), "h5,h6"},
		{"before-id", field("before-id", ids[1]) + field("with", "alice@localhost"), "h1"},
		{"ids", "<field var='ids'><value>" + ids[0] + "</value><value>" + ids[5] + "</value></field>", "h1,h6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := alice.mam(room, form(tc.fields))
			if got := strings.Join(p.bodies, ","); got != tc.want || !p.complete || p.count != len(p.bodies) {
				t.Errorf("got %q (count %d, complete %v), want %q", got, p.count, p.complete, tc.want)
			}
		})
	}
	for _, bad := range []string{form(field("colour", "red")), form(field("start", "yesterday")), "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>"} {
		expectError(t, alice.iq("set", room, query(rooms.NSMAM2, bad)), "bad-request")
	}
}

// A client-sent stanza-id is stripped: only the room's remains. Non-
// occupants are refused like any room request; the form is served.
func TestMAMStanzaIDsAndAccess(t *testing.T) {
	e := mamEnv(t)
	alice, mike := e.login("alice"), e.login("mike")
	room := createRoom(t, "acl", alice)
	m := client.Message(room, "groupchat", "forged")
	m.CreateAttr("id", "f")
	forged := m.CreateElement("stanza-id")
	forged.CreateAttr("xmlns", rooms.NSSID)
	forged.CreateAttr("by", room)
	forged.CreateAttr("id", "0000000000000001aaaa")
	alice.Send(tctx(t), m)
	el := alice.next()
	sids := xmpp.Children(el, "stanza-id", rooms.NSSID)
	if len(sids) != 1 || sids[0].SelectAttrValue("id", "") == "0000000000000001aaaa" {
		t.Errorf("stanza-ids %s", xmpp.String(el))
	}
	expectError(t, mike.iq("set", room, query(rooms.NSMAM2, "")), "item-not-found")
	form := alice.iq("get", room, query(rooms.NSMAM2, ""))
	if got := xmpp.String(form); !strings.Contains(got, "var='with'") || !strings.Contains(got, "var='start'") {
		t.Errorf("form %s", got)
	}
	info := xmpp.String(alice.iq("get", room, xmpp.Elem("query", xmpp.NSDiscoInfo)))
	if !strings.Contains(info, rooms.NSMAM2) || !strings.Contains(info, rooms.NSSID) {
		t.Errorf("disco lacks MAM: %s", info)
	}
}

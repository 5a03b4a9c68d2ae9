package xmpp

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// The byte-level builders of frame.go replace etree constructions that the
// room used before the core stopped speaking XML. These tests hold them to
// those constructions, byte for byte: an archived message and a delivered
// one must not change because the way they are written did.

// treeGroupchat is the construction GroupchatFrame replaces: rooms' old
// groupchat (NewStanzaElement, the sender's children copied) and
// withStanzaID, serialised with Marshal.
func treeGroupchat(id string, from JID, children []*etree.Element, by JID, sid string) *etree.Element {
	m := NewStanzaElement(KindMessage, "groupchat", id, from, JID{})
	for _, c := range children {
		m.AddChild(c.Copy())
	}
	if sid != "" {
		s := m.CreateElement("stanza-id")
		s.CreateAttr("xmlns", nsSID)
		s.CreateAttr("by", by.String())
		s.CreateAttr("id", sid)
	}
	return m
}

// tos are 'to' values a delivery inserts, one needing escapes.
var tos = []string{"", "bob@example.com", "bob@example.com/it's <&> \"x\""}

// checkGroupchatFrame compares GroupchatFrame over msg's children with the
// etree construction, as written and as delivered, and checks that the
// frame parses back.
func checkGroupchatFrame(t *testing.T, msg *etree.Element, id string, from, by JID, sid string) {
	t.Helper()
	payload := AppendChildren(nil, msg)
	frame := GroupchatFrame(id, from, payload, by, sid)
	tree := treeGroupchat(id, from, msg.ChildElements(), by, sid)
	want := Marshal(tree)
	if !bytes.Equal(frame, want) {
		t.Fatalf("GroupchatFrame differs from the etree construction:\nmsg:   %q\nframe: %q\ntree:  %q", Marshal(msg), frame, want)
	}
	fo, to := OutboundBytes(KindMessage, frame), NewOutbound(tree)
	if fo.Kind() != to.Kind() || fo.Len() != to.Len() {
		t.Fatalf("OutboundBytes: kind %q len %d, NewOutbound: kind %q len %d", fo.Kind(), fo.Len(), to.Kind(), to.Len())
	}
	for _, addr := range tos {
		if got, want := fo.Bytes(addr), to.Bytes(addr); !bytes.Equal(got, want) {
			t.Fatalf("delivered to %q:\nframe: %q\ntree:  %q", addr, got, want)
		}
	}
	back, err := ParseElement(frame)
	if err != nil {
		t.Fatalf("the frame does not parse: %v\nframe: %q", err, frame)
	}
	if again := Marshal(back); !bytes.Equal(again, frame) {
		t.Fatalf("the frame does not marshal to itself after parsing:\nframe: %q\nagain: %q", frame, again)
	}
	if !bytes.Equal(frame, want) {
		t.Fatal("a delivery changed the frame")
	}
}

func TestGroupchatFrameMatchesTree(t *testing.T) {
	room := MustParseJID("coffee@muclight.example.com")
	sender := room.WithResource("alice@example.com")
	payloads := []struct{ name, msg string }{
		{"body", "<message xmlns='jabber:client' type='groupchat'><body>Is the meeting still on?</body></message>"},
		{"escaped text", `<message><body>a &amp; b &lt; c &gt; d ' " &#xD; tab	end</body></message>`},
		{"escaped attributes", `<message><x xmlns='urn:x' a='&apos;&quot;&lt;&amp;&gt;' b="it's" c='line&#xA;tab&#x9;cr&#xD;'/></message>`},
		{"prefix on the stanza", "<message xmlns='jabber:client' xmlns:x='urn:x' xmlns:y='urn:y'><x:data y:attr='v'><x:item>t</x:item></x:data><body>hi</body></message>"},
		{"prefix on the child", "<message><x:data xmlns:x='urn:x'><x:item x:n='1'/></x:data></message>"},
		{"other default namespace", "<message xmlns='urn:other'><body>not a client body</body><thing/></message>"},
		{"nested defaults", "<message><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>x<b>y</b>z</p></body></html></message>"},
		{"cdata", "<message><body><![CDATA[<not> & markup]]></body></message>"},
		{"empty text child", "<message><body></body><subject/></message>"},
		{"xml:lang", "<message xml:lang='en'><body xml:lang='fr'>salut</body></message>"},
		{"client stanza-id left in", "<message><stanza-id xmlns='urn:xmpp:sid:0' by='evil' id='x'/><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>"},
		{"text only", "<message>stray text</message>"},
		{"empty", "<message/>"},
		{"unicode", "<message><body>héllo ☕ 𝄞</body></message>"},
	}
	heads := []struct {
		name     string
		id       string
		from, by JID
		sid      string
	}{
		{"plain", "0b2e5c1a", sender, room, "01890a5d3c7b0000abcd"},
		{"no stanza-id", "0b2e5c1a", sender, room, ""},
		{"no id", "", sender, room, "sid"},
		{"quoted id", `it's "<&>"`, sender, room, `s'i"d<&>`},
		{"from needing escapes", "id", room.WithResource(`o'neil&<co> "x"`), room, "sid"},
		{"no from", "id", JID{}, room, "sid"},
		{"zero by", "id", sender, JID{}, "sid"},
		{"nothing", "", JID{}, JID{}, ""},
	}
	for _, p := range payloads {
		msg := mustParse(t, p.msg)
		for _, h := range heads {
			t.Run(p.name+"/"+h.name, func(t *testing.T) {
				checkGroupchatFrame(t, msg, h.id, h.from, h.by, h.sid)
			})
		}
	}
}

// treeError is what the room answered a refused stanza with before:
// ErrorReply, addressed with NewOutbound. ErrorReply also copies the
// request's prefix declarations onto the answer, for echoed children that
// used them; ParseElement already makes every child self-contained, and
// ErrorFrame (which has only the echo) cannot copy them, so they are
// dropped here and checked apart (TestErrorFrameRootPrefixes).
func treeError(st *Stanza, se *StanzaError) *Outbound {
	e := ErrorReply(st, se)
	kept := e.Attr[:0]
	for _, a := range e.Attr {
		if a.Space != "xmlns" {
			kept = append(kept, a)
		}
	}
	e.Attr = kept
	return NewOutbound(e)
}

// checkErrorFrame compares ErrorFrame over the stanza's echo with
// ErrorReply, both delivered to its sender, and checks that it parses.
func checkErrorFrame(t *testing.T, e *etree.Element, se *StanzaError) {
	t.Helper()
	st, toErr, fromErr := NewStanza(e)
	if toErr != nil || fromErr != nil {
		t.Fatalf("test stanza has bad addresses: %v %v", toErr, fromErr)
	}
	frame := ErrorFrame(st.Kind, st.ID, st.To, AppendChildren(nil, st.El), se)
	tree := treeError(st, se)
	if frame.Kind() != tree.Kind() {
		t.Fatalf("ErrorFrame kind %q, ErrorReply %q", frame.Kind(), tree.Kind())
	}
	for _, to := range append([]string{st.From.String()}, tos...) {
		got, want := frame.Bytes(to), tree.Bytes(to)
		if !bytes.Equal(got, want) {
			t.Fatalf("ErrorFrame differs from ErrorReply, to %q:\nin:    %q\nframe: %q\ntree:  %q", to, Marshal(e), got, want)
		}
		if _, err := ParseElement(got); err != nil {
			t.Fatalf("ErrorFrame does not parse: %v\nframe: %q", err, got)
		}
	}
}

func TestErrorFrameMatchesErrorReply(t *testing.T) {
	stanzas := []string{
		"<message xmlns='jabber:client' from='alice@example.com/phone' to='coffee@muclight.example.com' id='m1' type='groupchat'><body>refused &amp; echoed</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
		"<iq xmlns='jabber:client' from='alice@example.com/phone' to='muclight.example.com' id='q1' type='set'><query xmlns='urn:xmpp:muclight:0#create'><configuration><roomname>x</roomname></configuration></query></iq>",
		"<presence from='alice@example.com/phone' to='coffee@muc.example.com/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
		`<message from='alice@example.com/it&apos;s &lt;&amp;&gt; "r"' to='coffee@muclight.example.com' id='it&apos;s "&lt;&amp;&gt;"'><body a='&apos;&quot;'>'"</body></message>`,
		"<iq from='alice@example.com/phone' to='coffee@muclight.example.com' type='get'/>",
		"<message to='coffee@muclight.example.com' id='no-from'><body>x</body></message>",
		"<message from='alice@example.com/phone' id='no-to'><body>x</body></message>",
		"<message xmlns='urn:other' from='alice@example.com/phone' to='room@example.com' id='d'><body>other default</body></message>",
		"<message from='alice@example.com/phone' to='room@example.com' id='p'><x:data xmlns:x='urn:x' x:a='1'><x:i/></x:data></message>",
		"<message from='alice@example.com/phone' to='room@example.com' id='t'>only text</message>",
	}
	errs := []*StanzaError{
		NewError(BadRequest, ""),
		NewError(ResourceConstraint, "you are sending too fast & <loud> 'it' \"is\""),
		{Type: Wait, Condition: PolicyViolation, Text: "slow down"},
	}
	for i, s := range stanzas {
		e := mustParse(t, s)
		for j, se := range errs {
			t.Run(strconv.Itoa(i)+"/"+strconv.Itoa(j), func(t *testing.T) { checkErrorFrame(t, e, se) })
		}
	}
}

// TestErrorFrameRootPrefixes pins the one difference from ErrorReply: a
// prefix the request declared on its root is not repeated on the answer's
// root, because the echoed child declares it itself (ParseElement's
// self-containment), so it still means the same thing.
func TestErrorFrameRootPrefixes(t *testing.T) {
	e := mustParse(t, "<message xmlns='jabber:client' xmlns:x='urn:x' from='alice@example.com/phone' to='room@example.com' id='p'><x:data x:a='1'><x:i/></x:data></message>")
	st, _, _ := NewStanza(e)
	se := NewError(BadRequest, "")
	frame := ErrorFrame(st.Kind, st.ID, st.To, AppendChildren(nil, st.El), se).Bytes(st.From.String())
	reply := NewOutbound(ErrorReply(st, se)).Bytes(st.From.String())
	if bytes.Equal(frame, reply) {
		t.Fatalf("ErrorReply no longer copies root prefixes: %q; fold this case into TestErrorFrameMatchesErrorReply", reply)
	}
	if !bytes.Equal(frame, treeError(st, se).Bytes(st.From.String())) {
		t.Fatalf("ErrorFrame differs from ErrorReply beyond the root's prefixes:\nframe: %q\nreply: %q", frame, reply)
	}
	back := mustParse(t, string(frame))
	data := Child(back, "data", "urn:x")
	if data == nil || Child(data, "i", "urn:x") == nil {
		t.Fatalf("the echoed child lost its namespace: %q", frame)
	}
	if v := data.SelectAttr("x:a"); v == nil || v.NamespaceURI() != "urn:x" {
		t.Fatalf("the echoed attribute lost its namespace: %q", frame)
	}
}

func TestOutboundBytesMatchesNewOutbound(t *testing.T) {
	from := MustParseJID("coffee@muclight.example.com/alice@example.com")
	for _, kind := range []string{KindMessage, KindPresence, KindIQ} {
		for _, withChild := range []bool{false, true} {
			e := NewStanzaElement(kind, "result", `i'd "<&>"`, from, JID{})
			if withChild {
				e.AddChild(Elem("query", "urn:x"))
			}
			b := Marshal(e)
			saved := bytes.Clone(b)
			got, want := OutboundBytes(kind, b), NewOutbound(e)
			if got.Kind() != kind || got.Len() != want.Len() {
				t.Fatalf("%s: kind %q len %d, want %q %d", kind, got.Kind(), got.Len(), kind, want.Len())
			}
			for _, to := range tos {
				if g, w := got.Bytes(to), want.Bytes(to); !bytes.Equal(g, w) {
					t.Fatalf("%s to %q:\ngot:  %q\nwant: %q", kind, to, g, w)
				}
				if g, w := got.AppendTo([]byte("prefix"), to), want.AppendTo([]byte("prefix"), to); !bytes.Equal(g, w) {
					t.Fatalf("%s AppendTo %q:\ngot:  %q\nwant: %q", kind, to, g, w)
				}
			}
			if !bytes.Equal(b, saved) {
				t.Fatalf("%s: addressing wrote into the wrapped bytes: %q", kind, b)
			}
		}
	}
}

// fuzzSeeds reads the inputs of FuzzParseElement's corpus, so the frame
// targets start from the same stanzas.
func fuzzSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseElement", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no FuzzParseElement corpus: %v", err)
	}
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a one-[]byte corpus file", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzGroupchatFrame holds GroupchatFrame to the etree construction over
// whatever ParseElement accepts, with any id, sender resource and
// stanza-id. Found inputs go to testdata/fuzz/FuzzGroupchatFrame.
func FuzzGroupchatFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, "0b2e5c1a", "alice@example.com", "01890a5d3c7b0000abcd")
		f.Add(s, `'"<&>`, "it's <&>", "")
	}
	room := MustParseJID("coffee@muclight.example.com")
	f.Fuzz(func(t *testing.T, in []byte, id, resource, sid string) {
		msg, err := ParseElement(in)
		if err != nil {
			return
		}
		from := room
		if resource != "" {
			from = room.WithResource(resource)
		}
		checkGroupchatFrame(t, msg, id, from, room, sid)
	})
}

// FuzzErrorFrame holds ErrorFrame to ErrorReply over whatever ParseElement
// accepts that has valid addresses.
func FuzzErrorFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, "text & <more>")
	}
	f.Fuzz(func(t *testing.T, in []byte, text string) {
		e, err := ParseElement(in)
		if err != nil {
			return
		}
		if _, toErr, fromErr := NewStanza(e); toErr != nil || fromErr != nil {
			return
		}
		checkErrorFrame(t, e, &StanzaError{Type: Modify, Condition: BadRequest, Text: text})
	})
}

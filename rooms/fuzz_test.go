package rooms_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// delivery is one stanza as a session would have written it.
type delivery struct {
	to  string
	raw []byte
}

// recordingDeliverer keeps every stanza the hub hands out, serialised as the
// session's writer would serialise it, and wakes whoever waits for more.
type recordingDeliverer struct {
	mu    sync.Mutex
	got   []delivery
	poked chan struct{} // one slot: "something arrived since you last looked"
}

func newRecordingDeliverer() *recordingDeliverer {
	return &recordingDeliverer{poked: make(chan struct{}, 1)}
}

func (d *recordingDeliverer) Deliver(to xmpp.JID, out *xmpp.Outbound) bool {
	d.mu.Lock()
	d.got = append(d.got, delivery{to: to.String(), raw: out.AppendTo(nil, to.String())})
	d.mu.Unlock()
	select {
	case d.poked <- struct{}{}:
	default:
	}
	return true
}

func (d *recordingDeliverer) DeliverPaced(_, to xmpp.JID, out *xmpp.Outbound) bool {
	return d.Deliver(to, out)
}

// take removes and returns what has been delivered so far.
func (d *recordingDeliverer) take() []delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := d.got
	d.got = nil
	return got
}

// groupchatSeeds are messages whose children exercise what a room must carry
// over into the message it builds: prefixes declared on <message/> (defect 3
// of issue 14), extensions, entities, several bodies.
var groupchatSeeds = []string{
	`<message xmlns:x='u' type='groupchat' to='r@muclight.localhost'><x:d/><body>hi</body></message>`,
	`<message xmlns='jabber:client' type='groupchat' id='1'><body>plain</body></message>`,
	`<message xmlns='jabber:client' xmlns:sid='urn:xmpp:sid:0' type='groupchat' id='2'><body>ids</body>` +
		`<sid:origin-id id='o2'/><sid:stanza-id id='spoofed' by='fuzz@muclight.localhost'/></message>`,
	`<message xmlns='jabber:client' type='groupchat'><body>a &lt; b &amp;&amp; &#x263A; 日本 &#13;&#10;</body>` +
		`<body xml:lang='de'>zwei</body><thread>t1</thread></message>`,
	`<message xmlns='jabber:client' xmlns:h='http://jabber.org/protocol/xhtml-im' type='groupchat'><body>rich</body>` +
		`<h:html><body xmlns='http://www.w3.org/1999/xhtml'><h:p>not xhtml</h:p><p>rich</p></body></h:html></message>`,
	`<message type='groupchat' xmlns:r='urn:xmpp:reply:0' xmlns:f='urn:xmpp:fallback:0'><body>&gt; quoted` + "\n" +
		`reply</body><r:reply to='bob@localhost' id='m1'/><f:fallback for='urn:xmpp:reply:0'><f:body start='0' end='9'/></f:fallback></message>`,
	`<message xmlns='jabber:client' type='groupchat'><body><![CDATA[<b>&x</b>]]></body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<message xmlns='jabber:client' type='groupchat'><subject>no body</subject></message>`,
}

// FuzzGroupchatThroughRoom sends a fuzzed groupchat from one occupant through a
// real hub (embedded store, history on, as the server runs by default) to a
// room of two, and reads back every stanza the hub hands to a session: each
// must parse, every groupchat copy must carry the sender's bodies, exactly one
// stanza-id (the room's), and be in the archive as it was delivered. Inputs
// the parser refuses never reach a room and are skipped.
func FuzzGroupchatThroughRoom(f *testing.F) {
	for _, s := range groupchatSeeds {
		f.Add([]byte(s))
	}
	store, err := boltstore.Open(f.TempDir(), boltstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	room := xmpp.MustParseJID("fuzz@" + svc)
	alice, bob := xmpp.MustParseJID("alice@localhost"), xmpp.MustParseJID("bob@localhost")
	affs := []rooms.Aff{{User: alice, Aff: rooms.Owner}, {User: bob, Aff: rooms.Member, Since: 1}}
	if err := store.CreateRoom(context.Background(), room, rooms.Config{}, affs, "v1", rooms.Caps{}); err != nil {
		f.Fatal(err)
	}
	d := newRecordingDeliverer()
	hub := rooms.NewHub(rooms.DefaultOptions(), []string{"localhost"}, store, d, rooms.HubOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MAM:    rooms.MAMOptions{Archive: store.Archive()},
	})
	f.Cleanup(hub.Close)
	sender := alice.WithResource("phone")

	f.Fuzz(func(t *testing.T, in []byte) {
		el, err := xmpp.ParseElement(in)
		if err != nil || el.Tag != xmpp.KindMessage || !xmpp.IsStanzaElement(el) {
			return
		}
		// What the session does before it routes a stanza.
		if el.NamespaceURI() == "" {
			el.CreateAttr("xmlns", xmpp.NSClient)
		}
		el.CreateAttr("type", "groupchat")
		if xmpp.Child(el, "subject", xmpp.NSClient) != nil && xmpp.Child(el, "body", xmpp.NSClient) == nil {
			return // a XEP-0045 subject change, not a message (dual_test.go)
		}
		want := bodies(el) // before the room takes the children
		st, _, _ := xmpp.NewStanza(el)
		st.SetTo(room)
		st.SetFrom(sender)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.HandleStanza(ctx, st)

		// Done at the first error (the sender's bounce), or once both
		// occupants have their copy.
		copies := 0
		for copies < len(affs) {
			select {
			case <-d.poked:
			case <-ctx.Done():
				t.Fatalf("%d of %d groupchat copies and no error after %q", copies, len(affs), in)
			}
			for _, got := range d.take() {
				e, err := xmpp.ParseElement(got.raw)
				if err != nil {
					t.Fatalf("the copy for %s does not parse: %v\ninput:     %q\ndelivered: %q", got.to, err, in, got.raw)
				}
				if e.SelectAttrValue("type", "") != "groupchat" {
					if got.to != sender.String() {
						t.Fatalf("%s, not the sender, got %q\ninput: %q", got.to, got.raw, in)
					}
					return
				}
				copies++
				checkGroupchatCopy(ctx, t, store.Archive(), room, in, got, e, want)
			}
		}
	})
}

// checkGroupchatCopy checks one occupant's copy of a groupchat, and the
// archived message it names.
func checkGroupchatCopy(ctx context.Context, t *testing.T, a rooms.Archive, room xmpp.JID, in []byte, got delivery, e *etree.Element, want []string) {
	t.Helper()
	if b := bodies(e); !slices.Equal(b, want) {
		t.Fatalf("the copy for %s has bodies %q, want %q\ninput:     %q\ndelivered: %q", got.to, b, want, in, got.raw)
	}
	ids := xmpp.Children(e, "stanza-id", "urn:xmpp:sid:0")
	if len(ids) != 1 || ids[0].SelectAttrValue("by", "") != room.String() {
		t.Fatalf("the copy for %s has %d stanza-ids, want only the room's\ninput:     %q\ndelivered: %q", got.to, len(ids), in, got.raw)
	}
	id := ids[0].SelectAttrValue("id", "")
	page, err := a.Query(ctx, rooms.ArchiveQuery{Room: room, IDs: []string{id}, Max: 1})
	if err != nil || len(page.Messages) != 1 {
		t.Fatalf("archive entry %s: %v, %d messages", id, err, len(page.Messages))
	}
	archived, err := xmpp.ParseElement(page.Messages[0].Stanza)
	if err != nil {
		t.Fatalf("archive entry %s does not parse (MAM would skip it): %v\ninput:    %q\narchived: %q", id, err, in, page.Messages[0].Stanza)
	}
	if b := bodies(archived); !slices.Equal(b, want) {
		t.Fatalf("archive entry %s has bodies %q, want %q\ninput: %q", id, b, want, in)
	}
}

// bodies are the texts of a message's jabber:client bodies, in order.
func bodies(e *etree.Element) []string {
	var out []string
	for _, b := range xmpp.Children(e, "body", xmpp.NSClient) {
		out = append(out, b.Text())
	}
	return out
}

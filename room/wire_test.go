package room

import (
	"bytes"
	"encoding"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// Values for the wire tests: one of every registered type, every exported
// field set (TestWireValuesAreComplete fails on a field left zero, so a
// field added later must be given a value here, and so is round-tripped).

var (
	wRoom  = xmpp.MustParseJID("coffee@muclight.example.com")
	wAlice = xmpp.MustParseJID("alice@example.com")
	wBob   = xmpp.MustParseJID("bob@example.com")
	wTime  = time.Date(2026, 12, 2, 9, 51, 42, 123456789, time.UTC)
)

func wOrigin() Origin {
	return Origin{
		From:    xmpp.MustParseJID("alice@example.com/phone-3f2a"),
		Session: 7,
		ID:      `it's "<id>"`,
		To:      wRoom,
		Kind:    xmpp.KindMessage,
		Dialect: MUC, // MUCLight is the zero value
		Echo:    []byte("<body>hi &amp; bye</body>"),
		Node:    "node-b",
	}
}

func wHead() Head { return Head{Room: wRoom, Origin: wOrigin()} }

func wEventHead() EventHead {
	return EventHead{Room: wRoom, Origin: wOrigin(), MUC: []Occupant{
		{JID: xmpp.MustParseJID("bob@example.com/gajim"), Session: 3, Nick: "Bob"},
	}}
}

func wAffs() []Aff {
	return []Aff{{User: wAlice, Aff: Owner, Since: 1}, {User: wBob, Aff: Member, Since: 2}}
}

func wFields() []Field { return []Field{{Name: "roomname", Value: "Coffee ☕"}} }

func wItems() []AffItem { return []AffItem{{User: wBob, Aff: None}} }

func wMessages() []archive.Message {
	return []archive.Message{{Room: wRoom, ID: "01890a5d3c7b0000abcd", Time: wTime, Sender: wAlice, Stanza: []byte("<message/>"),
		MsgID: "m1", Target: "01890a5d3c7b0000abce", Tomb: &archive.Tombstone{By: wAlice, ByOccupant: "occ", At: wTime, Reason: "spam"},
		Edit: &archive.Edit{ID: "01890a5d3c7b0000abcf", Time: wTime, Body: "fixed"}, Edits: []string{"01890a5d3c7b0000abcf"},
		Reactions: []archive.Reaction{{User: wAlice, OccupantID: "occ", Emojis: []string{"👍"}}}}}
}

// wireValues returns a fresh value (a pointer) of every registered type.
func wireValues() []any {
	return []any{
		&Create{Head: wHead(), Fields: wFields(), Items: wItems(), Generated: true},
		&Post{Head: wHead(), Body: "hi & bye", Payload: []byte("<body>hi &amp; bye</body>"), MsgID: "m1", Occupant: "occ",
			Replace: "c1", Retract: "r1", React: &React{ID: "s1", Emojis: []string{"👍"}}, Displayed: "d1"},
		&Moderate{Head: wHead(), ID: "s1", Reason: "spam", Payload: []byte("<retract/>"), Occupant: "occ"},
		&SetConfig{Head: wHead(), Fields: wFields()},
		&ChangeAffs{Head: wHead(), Items: wItems()},
		&Destroy{Head: wHead()},
		&GetConfig{Head: wHead(), Version: "v1"},
		&GetAffs{Head: wHead(), Version: "v2", List: Member},
		&GetInfo{Head: wHead(), Version: "v3"},
		&QueryHistory{Head: wHead(), Query: archive.Query{
			Room: wRoom, Start: wTime, End: wTime.Add(time.Hour), With: wAlice,
			AfterID: "a", BeforeID: "b", IDs: []string{"c", "d"},
			Max: 50, After: "e", Before: "f", Last: true,
			Summary: true, Posts: true, NotWith: wAlice, MsgID: "m1", CountMax: 7,
		}, QueryID: "q1", NS: "urn:xmpp:mam:2", Flip: true, CountOnly: true},
		&Join{Head: wHead(), Nick: "Alice"},
		&Leave{Head: wHead(), Occupant: xmpp.MustParseJID("alice@example.com/gajim"), Session: 9, Reason: LeftDisconnected},
		&Ping{Head: wHead()},
		&AcceptDefaults{Head: wHead()},
		&Removed{Head: wHead(), Result: AffResult{Old: wAffs(), New: wAffs()[:1], OldVersion: "v4", NewVersion: "v5"}, NoticeID: "n1"},
		&Reply{
			Room: wRoom, Origin: wOrigin(), Op: "get_info",
			Err:       &Error{Type: "cancel", Condition: "item-not-found", Text: "no such room"},
			Unchanged: true, Version: "v6", Config: wFields(), Name: "Coffee",
			Affs: []AffItem{{User: wAlice, Aff: Owner}}, List: Owner, Generated: true,
			History: &History{QueryID: "q2", NS: "urn:xmpp:mam:2", Flip: true, CountOnly: true, Summary: true,
				Page: archive.Page{Messages: wMessages(), Count: 10, FirstIndex: 3, Complete: true}},
		},
		&Posted{EventHead: wEventHead(), Sender: wAlice, ArchiveID: "01890a5d3c7b0000abcd", Time: wTime,
			Stanza:   xmpp.GroupchatFrame("m1", wRoom.WithResource("alice@example.com"), []byte("<body>hi</body>"), wRoom, "01890a5d3c7b0000abcd"),
			Audience: wAffs()},
		&AffsChanged{EventHead: wEventHead(), Old: wAffs()[:1], New: wAffs(), PrevVersion: "v7", Version: "v8",
			NoticeID: "n2", By: wAlice, Created: true},
		&ConfigChanged{EventHead: wEventHead(), Changed: wFields(), PrevVersion: "v9", Version: "v10", By: wAlice, Audience: wAffs()},
		&Destroyed{EventHead: wEventHead(), Former: wAffs()},
		&OccupantJoined{EventHead: wEventHead(), Occupant: Occupant{JID: xmpp.MustParseJID("alice@example.com/gajim"), Session: 9, Nick: "Alice"},
			Aff: Owner, Affs: wAffs(), Subject: "beans", Created: true},
		&OccupantLeft{EventHead: wEventHead(), Occupant: Occupant{JID: xmpp.MustParseJID("alice@example.com/gajim"), Session: 9, Nick: "Alice"},
			Aff: Member, Reason: LeftRemoved},
	}
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// zeroFields lists, by path, the exported fields under v that are zero,
// recursing into structs, pointers, slices and maps, so that a field added
// to a wire type (or to a type it holds) without a test value is named. A
// type with its own text form (xmpp.JID, Dialect) or no exported fields
// (time.Time) counts as one value. An empty slice or map counts as zero:
// its elements would go untested.
func zeroFields(path string, v reflect.Value) []string {
	if v.IsZero() {
		return []string{path}
	}
	if v.Type().Implements(textMarshaler) {
		return nil
	}
	var out []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return zeroFields(path, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() {
				out = append(out, zeroFields(path+"."+f.Name, v.Field(i))...)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return []string{path}
		}
		for i := range v.Len() {
			out = append(out, zeroFields(fmt.Sprintf("%s[%d]", path, i), v.Index(i))...)
		}
	case reflect.Map:
		if v.Len() == 0 {
			return []string{path}
		}
		for _, k := range v.MapKeys() {
			out = append(out, zeroFields(fmt.Sprintf("%s[%v]", path, k), v.MapIndex(k))...)
		}
	}
	return out
}

// TestZeroFieldsFindsGaps keeps the walk honest: it must name a nested
// zero field, an empty slice and a zero field inside a slice element.
func TestZeroFieldsFindsGaps(t *testing.T) {
	p := &Posted{EventHead: wEventHead(), Sender: wAlice, ArchiveID: "a", Time: wTime, Stanza: []byte("<message/>"), Audience: wAffs()}
	if z := zeroFields("Posted", reflect.ValueOf(p)); len(z) != 0 {
		t.Fatalf("complete value reported zero: %v", z)
	}
	p.Origin.Echo = nil
	p.MUC[0].Nick = ""
	p.Audience = []Aff{}
	want := []string{"Posted.EventHead.Origin.Echo", "Posted.EventHead.MUC[0].Nick", "Posted.Audience"}
	if z := zeroFields("Posted", reflect.ValueOf(p)); !slices.Equal(z, want) {
		t.Fatalf("zeroFields = %v, want %v", z, want)
	}
}

// TestWireValuesAreComplete checks that the test values cover every
// registered type, once, with every exported field set.
func TestWireValuesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range wireValues() {
		name := TypeName(v)
		if name == "" {
			t.Errorf("%T is not registered", v)
			continue
		}
		if seen[name] {
			t.Errorf("two test values of %s", name)
		}
		seen[name] = true
		tn := reflect.TypeOf(v).Elem().Name()
		for _, f := range zeroFields(tn, reflect.ValueOf(v)) {
			t.Errorf("%s is zero in the test value: give it one, so the wire test covers it", f)
		}
	}
	for name, typ := range wireTypes {
		if !seen[name] {
			t.Errorf("registered type %s (%s) has no test value", name, typ)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, v := range wireValues() {
		name := TypeName(v)
		t.Run(name, func(t *testing.T) {
			b, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte(`{"v":1,"type":"`+name+`","data":{`)) {
				t.Fatalf("envelope: %s", b)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("round trip changed the value:\nsent: %#v\ngot:  %#v\nwire: %s", v, got, b)
			}
			if TypeName(got) != name {
				t.Fatalf("TypeName after the trip = %q, want %q", TypeName(got), name)
			}
			again, err := Marshal(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("second Marshal (%v):\nfirst:  %s\nsecond: %s", err, b, again)
			}
		})
	}
}

// TestPostedOutboundAfterTrip checks that the unexported delivery cache is
// rebuilt on the receiving side from Stanza alone.
func TestPostedOutboundAfterTrip(t *testing.T) {
	var sent *Posted
	for _, v := range wireValues() {
		if p, ok := v.(*Posted); ok {
			sent = p
		}
	}
	want := sent.Outbound().Bytes("bob@example.com/web")
	sent.out = nil // not on the wire: compare as a receiver has it
	b, err := Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*Posted)
	if got.out != nil {
		t.Fatal("the delivery cache came over the wire")
	}
	if g := got.Outbound().Bytes("bob@example.com/web"); !bytes.Equal(g, want) {
		t.Fatalf("delivered after the trip:\ngot:  %q\nwant: %q", g, want)
	}
}

var (
	requestType = reflect.TypeFor[Request]()
	eventType   = reflect.TypeFor[Event]()
)

// TestWireRegistryKinds checks that every registered type is, as a pointer,
// exactly one of a Request or an Event, except Reply, which is neither;
// and that names and types pair one to one.
func TestWireRegistryKinds(t *testing.T) {
	if len(wireNames) != len(wireTypes) {
		t.Fatalf("a type is registered under two names: %d names, %d types", len(wireTypes), len(wireNames))
	}
	for name, typ := range wireTypes {
		p := reflect.PointerTo(typ)
		req, ev := p.Implements(requestType), p.Implements(eventType)
		switch {
		case typ == reflect.TypeFor[Reply]():
			if req || ev {
				t.Errorf("Reply implements Request (%v) or Event (%v)", req, ev)
			}
		case req == ev:
			t.Errorf("%s (%s): Request %v, Event %v; want exactly one", name, typ, req, ev)
		}
		if got := TypeName(reflect.New(typ).Interface()); got != name {
			t.Errorf("TypeName(*%s) = %q, want %q", typ.Name(), got, name)
		}
	}
}

// TestWireRegistryComplete reads the package's source for every struct
// type that is a request or an event (it embeds Head or EventHead, or one
// that does, or declares Header or EventHeader) and checks that each is
// registered, and that nothing else is, Reply apart: a new request type
// that is not registered could not cross nodes.
func TestWireRegistryComplete(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	embeds := map[string][]string{} // struct type → embedded type names
	roots := map[string]bool{"Head": true, "EventHead": true}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					ts, ok := s.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					embeds[ts.Name.Name] = nil
					for _, fl := range st.Fields.List {
						if len(fl.Names) > 0 {
							continue
						}
						x := fl.Type
						if s, ok := x.(*ast.StarExpr); ok {
							x = s.X
						}
						if id, ok := x.(*ast.Ident); ok {
							embeds[ts.Name.Name] = append(embeds[ts.Name.Name], id.Name)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || (d.Name.Name != "Header" && d.Name.Name != "EventHeader") {
					continue
				}
				x := d.Recv.List[0].Type
				if s, ok := x.(*ast.StarExpr); ok {
					x = s.X
				}
				if id, ok := x.(*ast.Ident); ok && !roots[id.Name] {
					roots[id.Name] = true // declares the method itself
				}
			}
		}
	}
	// A type is on the wire if it is a root other than the heads, or
	// embeds one that is on the wire or a head.
	isWire := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for typ, emb := range embeds {
			if isWire[typ] {
				continue
			}
			w := roots[typ] && typ != "Head" && typ != "EventHead"
			for _, e := range emb {
				w = w || roots[e] || isWire[e]
			}
			if w {
				isWire[typ], changed = true, true
			}
		}
	}
	isWire["Reply"] = true
	if !isWire["Post"] || !isWire["Posted"] || len(isWire) < 10 {
		t.Fatalf("the source scan found too little: %v", isWire)
	}
	registered := map[string]bool{}
	for _, typ := range wireTypes {
		registered[typ.Name()] = true
	}
	for typ := range isWire {
		if !registered[typ] {
			t.Errorf("%s is a request or event type but is not in wireTypes", typ)
		}
	}
	for typ := range registered {
		if !isWire[typ] {
			t.Errorf("%s is in wireTypes but is no request, event or Reply", typ)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, in := range []string{
		`{"v":1,"type":"no_such_type","data":{}}`,
		`{"v":2,"type":"post","data":{}}`,
		`{"v":0,"type":"post","data":{}}`,
		`{"type":"post","data":{}}`,
		`{"v":1,"data":{}}`,
		`{"v":1,"type":"post"}`,
		`{"v":1,"type":"post","data":{"room":"a@b@c"}}`,
		`{"v":1,"type":"post","data":{"origin":{"dialect":"xmpp"}}}`,
		`{"v":1,"type":"post","data":{"payload":"not base64!"}}`,
		`{"v":1,"type":"posted","data":{"time":"yesterday"}}`,
		`{"v":1,"type":"post","data":[]}`,
		`null`,
		``,
		`{"v":1,"type":"post","data":{}`,
	} {
		if v, err := Unmarshal([]byte(in)); err == nil {
			t.Errorf("Unmarshal(%s) = %#v, want an error", in, v)
		}
	}
}

func TestMarshalRefuses(t *testing.T) {
	var nilPost *Post
	var nilReq Request
	for _, v := range []any{nil, nilReq, nilPost, &Head{}, &EventHead{}, Origin{}, &Origin{}, 42, "post", &Error{}} {
		if b, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%#v) = %s, want an error", v, b)
		}
	}
}

// FuzzUnmarshal feeds the decoder anything: it must never panic, and what
// it accepts must marshal again, to bytes that decode and marshal to the
// same bytes (the wire form is stable after one trip).
func FuzzUnmarshal(f *testing.F) {
	for _, v := range wireValues() {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"type":"post","data":null}`))
	f.Add([]byte(`{"v":1,"type":"posted","data":{"time":"2026-12-02T10:51:42.5+01:00","stanza":"PG1lc3NhZ2UvPg=="}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := Unmarshal(in)
		if err != nil {
			return
		}
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("an accepted %T does not marshal: %v\nin: %q", v, err, in)
		}
		v2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("what Marshal wrote does not decode: %v\nin:   %q\nwire: %q", err, in, b)
		}
		if reflect.TypeOf(v2) != reflect.TypeOf(v) {
			t.Fatalf("type changed: %T then %T", v, v2)
		}
		b2, err := Marshal(v2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("wire form not stable (%v):\nin:     %q\nfirst:  %q\nsecond: %q", err, in, b, b2)
		}
	})
}

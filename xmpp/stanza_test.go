package xmpp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
)

func mustParse(t testing.TB, s string) *etree.Element {
	t.Helper()
	e, err := ParseElement([]byte(s))
	if err != nil {
		t.Fatalf("ParseElement(%s): %v", s, err)
	}
	return e
}

// built reads s the way code builds elements, without ParseElement's checks:
// for what the parser refuses but the stanza helpers must still handle.
func built(t testing.TB, s string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// attrs returns e's unprefixed attributes other than namespace declarations.
func attrs(e *etree.Element) map[string]string {
	m := map[string]string{}
	for _, a := range e.Attr {
		if a.Space == "" && a.Key != "xmlns" {
			m[a.Key] = a.Value
		}
	}
	return m
}

func TestNewStanza(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kind    string
		id      string
		typ     string
		from    JID
		to      JID
		toErr   bool
		fromErr bool
		built   bool // ParseElement refuses it
	}{
		{
			name: "groupchat message",
			in:   `<message xmlns='jabber:client' id='m1' type='groupchat' from='alice@example.com/phone' to='Room@MUC.example.com'><body>hi</body></message>`,
			kind: KindMessage, id: "m1", typ: "groupchat",
			from: JID{"alice", "example.com", "phone"}, to: JID{Local: "room", Domain: "muc.example.com"},
		},
		{
			name: "iq without addresses",
			in:   `<iq type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`,
			kind: KindIQ, id: "q1", typ: "get",
		},
		{
			name: "presence without attributes",
			in:   `<presence/>`,
			kind: KindPresence,
		},
		{
			name: "malformed to",
			in:   `<message id='m2' to='@muc.example.com' from='alice@example.com'/>`,
			kind: KindMessage, id: "m2", from: JID{Local: "alice", Domain: "example.com"}, toErr: true,
		},
		{
			name: "malformed from",
			in:   `<message id='m3' to='room@muc.example.com' from='alice@exa mple.com'/>`,
			kind: KindMessage, id: "m3", to: JID{Local: "room", Domain: "muc.example.com"}, fromErr: true,
		},
		{
			name: "both malformed",
			in:   `<iq id='q2' to='a@b@c' from='x@/r'/>`,
			kind: KindIQ, id: "q2", toErr: true, fromErr: true,
		},
		{
			name: "empty to is no address",
			in:   `<message to=''/>`,
			kind: KindMessage,
		},
		{
			// A prefixed attribute is another attribute altogether: reading it
			// as 'to' would route the stanza somewhere its 'to' does not say.
			// ParseElement refuses it on a stanza; code may still build one.
			name:  "prefixed routing attributes are not the routing attributes",
			built: true,
			in: `<message xmlns:f='urn:f' f:to='evil@example.com' f:from='mallory@example.com' f:id='x' f:type='chat' ` +
				`to='room@muc.example.com' id='m4' type='groupchat'/>`,
			kind: KindMessage, id: "m4", typ: "groupchat", to: JID{Local: "room", Domain: "muc.example.com"},
		},
		{
			name:  "only a prefixed to",
			in:    `<message xmlns:f='urn:f' f:to='evil@example.com'/>`,
			kind:  KindMessage,
			built: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *etree.Element
			if tt.built {
				e = built(t, tt.in)
			} else {
				e = mustParse(t, tt.in)
			}
			st, toErr, fromErr := NewStanza(e)
			if st == nil || st.El != e {
				t.Fatalf("NewStanza returned %+v, want a stanza around the element", st)
			}
			if st.Kind != tt.kind || st.ID != tt.id || st.Type != tt.typ {
				t.Errorf("kind, id, type = %q, %q, %q; want %q, %q, %q", st.Kind, st.ID, st.Type, tt.kind, tt.id, tt.typ)
			}
			if st.From != tt.from || st.To != tt.to {
				t.Errorf("from, to = %v, %v; want %v, %v", st.From, st.To, tt.from, tt.to)
			}
			if tt.toErr {
				var se *StanzaError
				if !errors.As(toErr, &se) || se.Condition != JIDMalformed || se.Type != Modify {
					t.Errorf("toErr = %#v, want a jid-malformed StanzaError of type modify", toErr)
				}
			} else if toErr != nil {
				t.Errorf("toErr = %v, want nil", toErr)
			}
			if tt.fromErr != (fromErr != nil) {
				t.Errorf("fromErr = %v, want an error: %v", fromErr, tt.fromErr)
			}
			if fromErr != nil && !errors.Is(fromErr, ErrJIDMalformed) {
				t.Errorf("fromErr = %v, want ErrJIDMalformed", fromErr)
			}
		})
	}
}

func TestStanzaSetAddresses(t *testing.T) {
	e := built(t, `<message xmlns:f='urn:f' f:from='kept@example.com' from='spoofed@example.com' to='room@muc.example.com'/>`)
	st, _, _ := NewStanza(e)
	alice := MustParseJID("alice@example.com/phone")
	st.SetFrom(alice)
	st.SetTo(JID{})
	if st.From != alice || !st.To.IsZero() {
		t.Errorf("From, To = %v, %v", st.From, st.To)
	}
	want := `<message xmlns:f='urn:f' f:from='kept@example.com' from='alice@example.com/phone'/>`
	if got := String(e); got != want {
		t.Errorf("element =\n%s\nwant\n%s", got, want)
	}
	st.SetTo(MustParseJID("bob@example.com"))
	if got := e.SelectAttrValue("to", ""); got != "bob@example.com" {
		t.Errorf("to = %q after SetTo", got)
	}
}

func TestNewStanzaElement(t *testing.T) {
	tests := []struct {
		kind, typ, id string
		from, to      string
		want          string
	}{
		{KindIQ, "get", "q1", "alice@example.com/r", "example.com",
			`<iq xmlns='jabber:client' type='get' id='q1' from='alice@example.com/r' to='example.com'/>`},
		{KindPresence, "", "", "", "",
			`<presence xmlns='jabber:client'/>`},
		{KindMessage, "chat", "", "", "bob@example.com",
			`<message xmlns='jabber:client' type='chat' to='bob@example.com'/>`},
	}
	for _, tt := range tests {
		e := NewStanzaElement(tt.kind, tt.typ, tt.id, MustParseJID(tt.from), MustParseJID(tt.to))
		if got := String(e); got != tt.want {
			t.Errorf("NewStanzaElement =\n%s\nwant\n%s", got, tt.want)
		}
	}
}

func TestErrorReply(t *testing.T) {
	const in = `<message xmlns='jabber:client' xmlns:m='urn:xmpp:muclight:0' id='m1' type='groupchat' ` +
		`from='alice@example.com/phone' to='room@muc.example.com'>` +
		`<body>hi &amp; bye</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/><m:x a='1'/></message>`
	tests := []struct {
		name string
		err  *StanzaError
		want string // the <error/> child
	}{
		{
			"with text", NewError(NotAcceptable, "too long"),
			`<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>too long</text></error>`,
		},
		{
			"without text", NewError(Forbidden, ""),
			`<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
		},
		{
			"explicit type", &StanzaError{Type: Wait, Condition: ResourceConstraint, Text: "slow down"},
			`<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>slow down</text></error>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustParse(t, in)
			parsed := String(req)
			st, _, _ := NewStanza(req)
			reply := ErrorReply(st, tt.err)

			// The reply is what goes on the wire, so read it back from there.
			e, err := ParseElement(Marshal(reply))
			if err != nil {
				t.Fatalf("the reply does not parse: %v\n%s", err, Marshal(reply))
			}
			if !Is(e, "message", NSClient) {
				t.Errorf("reply is {%s}%s", e.NamespaceURI(), e.Tag)
			}
			wantAttrs := map[string]string{
				"type": "error", "id": "m1", "from": "room@muc.example.com", "to": "alice@example.com/phone",
			}
			if got := attrs(e); fmt.Sprint(got) != fmt.Sprint(wantAttrs) {
				t.Errorf("attributes = %v, want %v", got, wantAttrs)
			}
			kids := e.ChildElements()
			if len(kids) != 4 {
				t.Fatalf("reply has %d children, want the 3 echoed and <error/>:\n%s", len(kids), String(e))
			}
			if b := kids[0]; !Is(b, "body", NSClient) || b.Text() != "hi & bye" {
				t.Errorf("first child = %s, want the body", String(b))
			}
			if o := kids[1]; !Is(o, "origin-id", "urn:xmpp:sid:0") || o.SelectAttrValue("id", "") != "o1" {
				t.Errorf("second child = %s, want the origin-id", String(o))
			}
			if x := kids[2]; !Is(x, "x", "urn:xmpp:muclight:0") {
				t.Errorf("third child = %s in %q, want the prefixed payload in its namespace", String(x), x.NamespaceURI())
			}
			if !Is(kids[3], "error", NSClient) {
				t.Errorf("last child = {%s}%s, want {jabber:client}error", kids[3].NamespaceURI(), kids[3].Tag)
			}
			if got := String(kids[3]); got != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", got, tt.want)
			}
			if got := String(req); got != parsed {
				t.Errorf("the request changed:\n%s\nwas\n%s", got, parsed)
			}
		})
	}
}

func TestErrorReplyKinds(t *testing.T) {
	for _, kind := range []string{KindMessage, KindPresence, KindIQ} {
		t.Run(kind, func(t *testing.T) {
			st, _, _ := NewStanza(mustParse(t, "<"+kind+" to='example.com' from='alice@example.com/r'/>"))
			e := ErrorReply(st, NewError(ServiceUnavailable, ""))
			want := "<" + kind + ` xmlns='jabber:client' type='error' from='example.com' to='alice@example.com/r'>` +
				`<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></` + kind + ">"
			if got := String(e); got != want {
				t.Errorf("ErrorReply =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestResultIQ(t *testing.T) {
	st, _, _ := NewStanza(mustParse(t,
		`<iq xmlns='jabber:client' type='get' id='q1' from='alice@example.com/r' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`))
	tests := []struct {
		name    string
		payload *etree.Element
		want    string
	}{
		{"empty", nil, `<iq xmlns='jabber:client' type='result' id='q1' from='example.com' to='alice@example.com/r'/>`},
		{"with payload", Elem("query", NSDiscoInfo),
			`<iq xmlns='jabber:client' type='result' id='q1' from='example.com' to='alice@example.com/r'>` +
				`<query xmlns='http://jabber.org/protocol/disco#info'/></iq>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(ResultIQ(st, tt.payload)); got != tt.want {
				t.Errorf("ResultIQ =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestOutbound(t *testing.T) {
	const groupchat = `<message xmlns='jabber:client' to='room@muc.example.com' from='room@muc.example.com/alice' ` +
		`type='groupchat' id='m1'><body>a &lt; b &amp; &apos;c&apos; 日本</body>` +
		`<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`
	tests := []struct {
		name string
		in   string
		to   string
	}{
		{"replaces to", groupchat, "bob@example.com/laptop"},
		{"empty to drops the attribute", groupchat, ""},
		{"escapes a resource with markup characters", groupchat, `bob@example.com/it's <b>&amp;</b> "q"`},
		{"adds to where there was none", `<presence from='room@muc.example.com/alice'><x xmlns='urn:x'/></presence>`, "bob@example.com"},
		{"no attributes, no children", `<presence/>`, "bob@example.com"},
		{"to is the last attribute", `<message id='1' to='room@muc.example.com'><body>x</body></message>`, "bob@example.com"},
		{"prefixed root", `<c:message xmlns:c='jabber:client' to='a@example.com'/>`, "bob@example.com"},
		{"prefixed to is kept (built by code)", `<message xmlns:f='urn:f' f:to='f@example.com' to='room@muc.example.com' id='1'/>`, "bob@example.com"},
		{"prefixed to only (built by code)", `<message xmlns:f='urn:f' f:to='f@example.com' id='1'/>`, "bob@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// ParseElement refuses a prefixed to on a stanza; NewOutbound must
			// still tell it from the 'to' it replaces.
			parse := ParseElement
			if strings.HasSuffix(tt.name, "(built by code)") {
				parse = func(b []byte) (*etree.Element, error) { return built(t, string(b)), nil }
			}
			e, err := parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			before := string(Marshal(e))
			o := NewOutbound(e)
			if after := string(Marshal(e)); after != before {
				t.Errorf("NewOutbound changed its element:\n%s\nwas\n%s", after, before)
			}

			out := o.Bytes(tt.to)
			got, err := parse(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			want := e.Copy()
			setAttr(want, "to", tt.to)
			if attr := attrOf(got, "to"); attr != tt.to {
				t.Errorf("to = %q, want %q", attr, tt.to)
			}
			if j, err := ParseJID(attrOf(got, "to")); err != nil || j.String() != tt.to {
				t.Errorf("to %q does not round-trip through ParseJID: %q, %v", tt.to, j, err)
			}
			got.SortAttrs()
			want.SortAttrs()
			if g, w := String(got), String(want); g != w {
				t.Errorf("output re-parses to\n%s\nwant\n%s", g, w)
			}

			if o.Kind() != e.Tag {
				t.Errorf("Kind() = %q, want %q", o.Kind(), e.Tag)
			}
			if n := o.Len(); n != len(o.Bytes("")) {
				t.Errorf("Len() = %d, len(Bytes(\"\")) = %d", n, len(o.Bytes("")))
			}
			dst := o.AppendTo([]byte("prefix"), tt.to)
			if !bytes.Equal(dst, append([]byte("prefix"), out...)) {
				t.Errorf("AppendTo = %s, want prefix+%s", dst, out)
			}
		})
	}
}

// attrOf is the value of e's unprefixed attribute key, "" if it has none.
func attrOf(e *etree.Element, key string) string {
	for _, a := range e.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

func TestOutboundIsShareable(t *testing.T) {
	e := mustParse(t, `<message to='room@muc.example.com' type='groupchat'><body>hi</body></message>`)
	o := NewOutbound(e)
	want := map[string][]byte{}
	for i := range 8 {
		to := fmt.Sprintf("user%d@example.com/r", i)
		want[to] = o.Bytes(to)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	for to, w := range want {
		wg.Go(func() {
			var dst []byte
			for range 100 {
				dst = o.AppendTo(dst[:0], to)
				if !bytes.Equal(dst, w) {
					errs <- fmt.Errorf("AppendTo(%q) = %s, want %s", to, dst, w)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOutboundAppendToDoesNotAllocate(t *testing.T) {
	o := NewOutbound(mustParse(t, `<message to='room@muc.example.com' type='groupchat'><body>hi</body></message>`))
	dst := make([]byte, 0, 512)
	for _, to := range []string{"bob@example.com/laptop", `bob@example.com/<it's & "q">`, ""} {
		if n := testing.AllocsPerRun(100, func() { dst = o.AppendTo(dst[:0], to) }); n != 0 {
			t.Errorf("AppendTo(%q) into a large enough buffer: %v allocs, want 0", to, n)
		}
	}
}

func TestStanzaErrorElement(t *testing.T) {
	tests := []struct {
		err  *StanzaError
		want string
		str  string
	}{
		{NewError(ItemNotFound, ""),
			`<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`,
			"item-not-found"},
		{NewError(BadRequest, "a < b & 'c'"),
			`<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>a &lt; b &amp; &apos;c&apos;</text></error>`,
			"bad-request: a < b & 'c'"},
	}
	for _, tt := range tests {
		t.Run(string(tt.err.Condition), func(t *testing.T) {
			if got := String(tt.err.Element()); got != tt.want {
				t.Errorf("Element =\n%s\nwant\n%s", got, tt.want)
			}
			if got := tt.err.Error(); got != tt.str {
				t.Errorf("Error() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestNewErrorTypes(t *testing.T) {
	want := map[Condition]ErrorType{
		BadRequest: Modify, Conflict: Cancel, FeatureNotImplemented: Cancel, Forbidden: Auth,
		InternalServerError: Cancel, ItemNotFound: Cancel, JIDMalformed: Modify, NotAcceptable: Modify,
		NotAllowed: Cancel, NotAuthorized: Auth, PolicyViolation: Modify, RegistrationRequired: Auth,
		RemoteServerNotFound: Cancel, ResourceConstraint: Wait, ServiceUnavailable: Cancel,
		UnexpectedRequest: Wait,
		// Not a stanza condition this server has a usual type for.
		UndefinedConditionName: Cancel,
	}
	for c, typ := range want {
		if e := NewError(c, "t"); e.Type != typ || e.Condition != c || e.Text != "t" {
			t.Errorf("NewError(%s) = %+v, want type %s", c, e, typ)
		}
	}
}

func TestStreamErrorElement(t *testing.T) {
	tests := []struct {
		err  *StreamError
		want string
		str  string
	}{
		{&StreamError{Condition: NotWellFormed},
			`<stream:error xmlns:stream='http://etherx.jabber.org/streams'>` +
				`<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
			"stream error not-well-formed"},
		{&StreamError{Condition: PolicyViolation, Text: "too <big>"},
			`<stream:error xmlns:stream='http://etherx.jabber.org/streams'>` +
				`<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
				`<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>too &lt;big&gt;</text></stream:error>`,
			"stream error policy-violation: too <big>"},
	}
	for _, tt := range tests {
		t.Run(string(tt.err.Condition), func(t *testing.T) {
			el := tt.err.Element()
			if got := String(el); got != tt.want {
				t.Errorf("Element =\n%s\nwant\n%s", got, tt.want)
			}
			if got := tt.err.Error(); got != tt.str {
				t.Errorf("Error() = %q, want %q", got, tt.str)
			}
			e, err := ParseElement(Marshal(el))
			if err != nil {
				t.Fatal(err)
			}
			if !Is(e, "error", NSStream) || Child(e, string(tt.err.Condition), NSStreams) == nil {
				t.Errorf("re-parsed stream error is not {%s}error with {%s}%s", NSStream, NSStreams, tt.err.Condition)
			}
		})
	}
}

func TestAsStanzaError(t *testing.T) {
	se := NewError(Conflict, "taken")
	tests := []struct {
		name string
		err  error
		want *StanzaError // nil: a new internal-server-error
	}{
		{"itself", se, se},
		{"wrapped", fmt.Errorf("create room: %w", se), se},
		{"joined", errors.Join(io.EOF, se), se},
		{"plain error", errors.New("disk full"), nil},
		{"stream error", &StreamError{Condition: PolicyViolation}, nil},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsStanzaError(tt.err)
			switch {
			case tt.want != nil && got != tt.want:
				t.Errorf("AsStanzaError = %#v, want %#v", got, tt.want)
			case tt.want == nil && (got == nil || got.Condition != InternalServerError || got.Type != Cancel || got.Text != ""):
				t.Errorf("AsStanzaError = %#v, want a bare internal-server-error of type cancel", got)
			}
		})
	}
}

func TestAttr(t *testing.T) {
	// The shape that fooled SelectAttrValue: a prefixed namesake first.
	e := mustParse(t, `<user xmlns:f='urn:f' f:affiliation='owner' affiliation='member' f:jid='x@y'/>`)
	if got := e.SelectAttrValue("affiliation", ""); got != "owner" {
		t.Fatalf("etree now reads %q; this test no longer shows why Attr exists", got)
	}
	tests := []struct{ key, want string }{
		{"affiliation", "member"},
		{"jid", ""},
		{"f:affiliation", ""},
		{"xmlns", ""},
	}
	for _, tt := range tests {
		if got := Attr(e, tt.key); got != tt.want {
			t.Errorf("Attr(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := Attr(nil, "affiliation"); got != "" {
		t.Errorf("Attr(nil) = %q", got)
	}
	// LookupAttr tells an empty attribute from an absent one, and does not
	// take a prefixed namesake for either.
	v := mustParse(t, `<open xmlns:f='urn:f' f:version='1.0' version='' f:to='x'/>`)
	for _, tt := range []struct {
		key, want string
		ok        bool
	}{{"version", "", true}, {"to", "", false}} {
		if got, ok := LookupAttr(v, tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("LookupAttr(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := LookupAttr(nil, "version"); ok {
		t.Error("LookupAttr(nil) found an attribute")
	}
}

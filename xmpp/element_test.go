package xmpp

import (
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// wantStreamError fails unless err is a *StreamError with condition c.
func wantStreamError(t *testing.T, err error, c Condition) {
	t.Helper()
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *StreamError %s", err, err, c)
	}
	if se.Condition != c {
		t.Fatalf("condition = %s (%v), want %s", se.Condition, se, c)
	}
}

func nested(depth int) string {
	return strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth)
}

func TestParseElementAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		tag  string // local name of the root
		ns   string // namespace of the root
		out  string // Marshal of the result
	}{
		{
			"message with jabber:client",
			`<message xmlns='jabber:client' to='room@muc.example.com' type='groupchat' id='1'><body>hi</body></message>`,
			"message", NSClient,
			`<message xmlns='jabber:client' to='room@muc.example.com' type='groupchat' id='1'><body>hi</body></message>`,
		},
		{
			"XML declaration tolerated",
			`<?xml version='1.0' encoding='UTF-8'?><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`,
			"open", NSFraming,
			`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`,
		},
		{
			"whitespace around the element",
			"\n\t <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/> \r\n",
			"close", NSFraming,
			`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`,
		},
		{
			"double quotes and an empty pair of tags",
			`<presence xmlns="jabber:client"></presence>`,
			"presence", NSClient,
			`<presence xmlns='jabber:client'/>`,
		},
		{
			"no namespace",
			`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`,
			"iq", "",
			`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`,
		},
		{
			"predefined and numeric entities, multibyte UTF-8",
			`<message><body>a &lt; b &amp;&amp; c &gt; d &apos;q&apos; &quot;q&quot; &#x263A; &#233; ünïcødé 日本 🎉</body></message>`,
			"message", "",
			`<message><body>a &lt; b &amp;&amp; c &gt; d &apos;q&apos; &quot;q&quot; ☺ é ünïcødé 日本 🎉</body></message>`,
		},
		{
			"CDATA section becomes text",
			`<message><body><![CDATA[<b>&x</b>]]></body></message>`,
			"message", "",
			`<message><body>&lt;b&gt;&amp;x&lt;/b&gt;</body></message>`,
		},
		{
			"prefixed root bound on itself",
			`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
			"features", NSStream,
			`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
		},
		{
			"prefixed attribute bound on an ancestor, xml:lang needs no binding",
			`<message xmlns:x='urn:x' xml:lang='en'><body x:a='1' xml:lang='de'>hallo</body></message>`,
			"message", "",
			`<message xmlns:x='urn:x' xml:lang='en'><body xmlns:x='urn:x' x:a='1' xml:lang='de'>hallo</body></message>`,
		},
		{
			"prefix redeclared in a subtree and used after it",
			`<a xmlns:p='urn:1'><b xmlns:p='urn:2'><p:c/></b><p:d/></a>`,
			"a", "",
			`<a xmlns:p='urn:1'><b xmlns:p='urn:2'><p:c/></b><p:d xmlns:p='urn:1'/></a>`,
		},
		{
			"empty CDATA section",
			`<message><body><![CDATA[]]></body></message>`,
			"message", "",
			`<message><body/></message>`,
		},
		{
			"carriage returns in text and attributes survive serialisation",
			`<message id='a&#13;b&#9;c&#10;d'><body>line&#13;&#10;next</body></message>`,
			"message", "",
			`<message id='a&#xD;b&#x9;c&#xA;d'><body>line&#xD;
next</body></message>`,
		},
		{"nesting at the parser's limit of 1024", nested(1024), "a", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseElement([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseElement: %v", err)
			}
			if !Is(e, tt.tag, tt.ns) {
				t.Errorf("root is {%s}%s, want {%s}%s", e.NamespaceURI(), e.Tag, tt.ns, tt.tag)
			}
			if e.Parent() != nil {
				t.Errorf("root still has a parent")
			}
			if tt.out != "" {
				if got := string(Marshal(e)); got != tt.out {
					t.Errorf("Marshal =\n%s\nwant\n%s", got, tt.out)
				}
			}
		})
	}
}

func TestParseElementKeepsText(t *testing.T) {
	e, err := ParseElement([]byte(`<message><body>a &lt; b&#13;&#10;c 日本 &#x1F389;</body></message>`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Child(e, "body", "").Text(), "a < b\r\nc 日本 🎉"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	again, err := ParseElement(Marshal(e))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Child(again, "body", "").Text(), "a < b\r\nc 日本 🎉"; got != want {
		t.Errorf("body after a round trip = %q, want %q", got, want)
	}
}

func TestParseElementRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Condition
	}{
		{"empty message", "", NotWellFormed},
		{"only whitespace", " \n\t", NotWellFormed},
		{"only an XML declaration", "<?xml version='1.0'?>", NotWellFormed},
		{"two root elements", "<a/><b/>", NotWellFormed},
		{"two stanzas", "<message><body>1</body></message><message><body>2</body></message>", NotWellFormed},
		{"text before the element", "hello<a/>", NotWellFormed},
		{"text after the element", "<a/>hello", NotWellFormed},
		{"comment before the element", "<!-- hi --><a/>", RestrictedXML},
		{"comment after the element", "<a/><!-- hi -->", RestrictedXML},
		{"comment inside the element", "<message><body>x<!-- hi --></body></message>", RestrictedXML},
		{"processing instruction before", "<?php echo 1 ?><a/>", RestrictedXML},
		{"processing instruction inside", "<a><b><?foo bar?></b></a>", RestrictedXML},
		{"XML declaration inside", "<a><?xml version='1.0'?></a>", RestrictedXML},
		{"XML declaration after the element", "<a/><?xml version='1.0'?>", RestrictedXML},
		{"XML declaration after whitespace", " <?xml version='1.0'?><a/>", RestrictedXML},
		{"two XML declarations", "<?xml version='1.0'?><?xml version='1.0'?><a/>", RestrictedXML},
		{"DOCTYPE", "<!DOCTYPE a><a/>", RestrictedXML},
		{"DOCTYPE with a harmless internal subset", `<!DOCTYPE a [<!ELEMENT a ANY>]><a/>`, RestrictedXML},
		{"DOCTYPE inside the element", "<a><!DOCTYPE b></a>", RestrictedXML},
		// The standard library's decoder expands no DTD entities, so the
		// reference fails to parse before the DOCTYPE is looked at.
		{"entity bomb", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`, NotWellFormed},
		{"external entity", `<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`, NotWellFormed},
		{"undefined entity", "<message><body>&nbsp;</body></message>", NotWellFormed},
		{"undefined entity in an attribute", "<message id='&x;'/>", NotWellFormed},
		{"NUL character reference", "<a>&#0;</a>", NotWellFormed},
		{"control character reference", "<a>&#x1B;</a>", NotWellFormed},
		{"raw control character", "<a>\x01</a>", NotWellFormed},
		{"invalid UTF-8", "<a>\xff\xfe</a>", NotWellFormed},
		{"XML 1.1", "<?xml version='1.1'?><a/>", NotWellFormed},
		{"unbound prefix on the root", "<foo:message/>", NotWellFormed},
		{"unbound prefix on a child", "<message><x:body>hi</x:body></message>", NotWellFormed},
		{"prefix bound only on a sibling", "<a><b xmlns:p='urn:p'/><p:c/></a>", NotWellFormed},
		{"prefix bound only on a sibling's child", "<a><b><c xmlns:p='urn:p'/></b><p:d/></a>", NotWellFormed},
		{"prefix bound only in a child", "<p:a><b xmlns:p='urn:p'/></p:a>", NotWellFormed},
		{"attribute prefix bound only on a sibling", "<a><b xmlns:p='urn:p'/><c p:x='1'/></a>", NotWellFormed},
		{"prefix undeclared", "<a xmlns:p='urn:p'><b xmlns:p=''><p:c/></b></a>", NotWellFormed},
		{"empty prefix declaration value", "<a xmlns:p=''/>", NotWellFormed},
		{"xmlns used as an element prefix", "<xmlns:a/>", NotWellFormed},
		{"unbound prefix on an attribute", "<message foo:to='x'/>", NotWellFormed},
		{"unbound prefix on a nested attribute", "<message><body foo:a='x'/></message>", NotWellFormed},
		{"truncated element", "<message><body>hi</body>", NotWellFormed},
		{"truncated start tag", "<message to='x", NotWellFormed},
		{"mismatched end tag", "<message><body>hi</bdy></message>", NotWellFormed},
		{"mismatched prefix on end tag", "<a:b xmlns:a='x' xmlns:c='x'></c:b>", NotWellFormed},
		{"stray end tag", "</message>", NotWellFormed},
		{"unquoted attribute", "<a b=c/>", NotWellFormed},
		{"attribute without a value", "<a b/>", NotWellFormed},
		{"raw less-than in an attribute", "<a b='<'/>", NotWellFormed},
		{"raw ampersand in text", "<a>&</a>", NotWellFormed},
		{"two colons in a name", "<a:b:c xmlns:a='x'/>", NotWellFormed},
		{"name is a colon", "<:/>", NotWellFormed},
		{"name starts with a colon", "<message><:body/></message>", NotWellFormed},
		{"name ends with a colon", "<message:/>", NotWellFormed},
		{"attribute name starts with a colon", "<message :to='x'/>", NotWellFormed},
		{"empty prefix declaration", "<message xmlns:='x'/>", NotWellFormed},
		{"nesting one past the parser's limit", nested(1025), PolicyViolation},
		{"very deep nesting", nested(100000), PolicyViolation},
		{"very deep unclosed nesting", strings.Repeat("<a>", 100000), PolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseElement([]byte(tt.in))
			if e != nil {
				t.Errorf("ParseElement returned an element with its error")
			}
			wantStreamError(t, err, tt.want)
		})
	}
}

// muc is a message whose children exercise every way of naming a namespace.
const muc = `<message xmlns='jabber:client' xmlns:m='urn:xmpp:muclight:0'>` +
	`<body>first</body>` +
	`<x xmlns='urn:x'><item n='1'/><item n='2' xmlns='urn:y'/><item n='3'/></x>` +
	`<m:configuration><m:roomname>Room</m:roomname><subject>s</subject></m:configuration>` +
	`<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>` +
	`<body xmlns='urn:other'>other</body>` +
	`<body>second</body>` +
	`</message>`

func TestChildNamespaces(t *testing.T) {
	msg, err := ParseElement([]byte(muc))
	if err != nil {
		t.Fatal(err)
	}
	x := Child(msg, "x", "urn:x")
	conf := Child(msg, "configuration", "urn:xmpp:muclight:0")
	if x == nil || conf == nil {
		t.Fatalf("x = %v, configuration = %v", x, conf)
	}
	const ml = "urn:xmpp:muclight:0"
	tests := []struct {
		name   string
		parent *etree.Element
		local  string
		ns     string
		want   []string // text or 'n' attribute of every match, in order
	}{
		{"inherited default namespace", msg, "body", NSClient, []string{"first", "second"}},
		{"own default namespace", msg, "body", "urn:other", []string{"other"}},
		{"no namespace does not match an inherited one", msg, "body", "", nil},
		{"declared default namespace on the child", msg, "origin-id", "urn:xmpp:sid:0", []string{""}},
		{"wrong namespace", msg, "origin-id", NSClient, nil},
		{"prefixed child", msg, "configuration", ml, []string{""}},
		{"prefix is not part of the name", msg, "m:configuration", ml, nil},
		{"prefixed grandchild", conf, "roomname", ml, []string{"Room"}},
		{"unprefixed child of a prefixed element keeps the default", conf, "subject", NSClient, []string{"s"}},
		{"unprefixed child of a prefixed element is not in the prefix's namespace", conf, "subject", ml, nil},
		{"default inherited from a child's declaration", x, "item", "urn:x", []string{"1", "3"}},
		{"default redeclared on a grandchild", x, "item", "urn:y", []string{"2"}},
		{"no such child", msg, "thread", NSClient, nil},
		{"nil parent", nil, "body", NSClient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label := func(e *etree.Element) string {
				if n := e.SelectAttrValue("n", ""); n != "" {
					return n
				}
				return e.Text()
			}
			var got []string
			for _, c := range Children(tt.parent, tt.local, tt.ns) {
				if !Is(c, tt.local, tt.ns) {
					t.Errorf("Children returned %s, for which Is is false", String(c))
				}
				got = append(got, label(c))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || len(got) != len(tt.want) {
				t.Errorf("Children = %q, want %q", got, tt.want)
			}
			first := Child(tt.parent, tt.local, tt.ns)
			switch {
			case len(tt.want) == 0 && first != nil:
				t.Errorf("Child = %s, want nil", String(first))
			case len(tt.want) > 0 && (first == nil || label(first) != tt.want[0]):
				t.Errorf("Child = %v, want the one labelled %q", first, tt.want[0])
			}
		})
	}
}

func TestIs(t *testing.T) {
	msg, err := ParseElement([]byte(muc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		e     *etree.Element
		local string
		ns    string
		want  bool
	}{
		{"root", msg, "message", NSClient, true},
		{"root, no namespace", msg, "message", "", false},
		{"root, wrong name", msg, "presence", NSClient, false},
		{"nil", nil, "message", NSClient, false},
		{"prefixed", Child(msg, "configuration", "urn:xmpp:muclight:0"), "configuration", "urn:xmpp:muclight:0", true},
		{"built with Elem", Elem("ping", NSPing), "ping", NSPing, true},
		{"built with Elem, no namespace", Elem("ping", ""), "ping", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Is(tt.e, tt.local, tt.ns); got != tt.want {
				t.Errorf("Is = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestElem(t *testing.T) {
	if got, want := String(Elem("query", NSDiscoInfo)), `<query xmlns='http://jabber.org/protocol/disco#info'/>`; got != want {
		t.Errorf("Elem = %s, want %s", got, want)
	}
	if got, want := String(Elem("body", "")), `<body/>`; got != want {
		t.Errorf("Elem without a namespace = %s, want %s", got, want)
	}
}

func TestIsStanzaElement(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`<message/>`, true},
		{`<presence/>`, true},
		{`<iq/>`, true},
		{`<message xmlns='jabber:client'/>`, true},
		{`<presence xmlns='jabber:client' type='unavailable'/>`, true},
		{`<iq xmlns='jabber:client' type='get'/>`, true},
		{`<message xmlns='jabber:server'/>`, false},
		{`<iq xmlns='jabber:server'/>`, false},
		{`<message xmlns='urn:other'/>`, false},
		{`<c:message xmlns:c='jabber:client'/>`, false},
		{`<c:iq xmlns:c='jabber:client'/>`, false},
		{`<Message xmlns='jabber:client'/>`, false},
		{`<body xmlns='jabber:client'/>`, false},
		{`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`, false},
		{`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>`, false},
		{`<r xmlns='urn:xmpp:sm:3'/>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseElement([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := IsStanzaElement(e); got != tt.want {
				t.Errorf("IsStanzaElement = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsStanzaElementInheritedNamespace(t *testing.T) {
	// A stanza nested in another element (a forwarded message, say) takes
	// its namespace from there.
	e, err := ParseElement([]byte(`<forwarded xmlns='urn:xmpp:forward:0'><message/></forwarded>`))
	if err != nil {
		t.Fatal(err)
	}
	if IsStanzaElement(Child(e, "message", "urn:xmpp:forward:0")) {
		t.Error("a message in urn:xmpp:forward:0 counts as a stanza")
	}
}

func TestMarshalMatchesString(t *testing.T) {
	e, err := ParseElement([]byte(muc))
	if err != nil {
		t.Fatal(err)
	}
	// The one change: the prefixed child declares its prefix itself.
	want := strings.Replace(muc, "<m:configuration>", "<m:configuration xmlns:m='urn:xmpp:muclight:0'>", 1)
	m := Marshal(e)
	if string(m) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", m, want)
	}
	if s := String(e); s != string(m) {
		t.Errorf("String = %s, Marshal = %s", s, m)
	}
	prefix := []byte("<open/>")
	if got := AppendElement(prefix, e); string(got) != "<open/>"+want {
		t.Errorf("AppendElement did not append: %s", got)
	}
}

func TestMarshalProgrammaticElements(t *testing.T) {
	e := Elem("message", NSClient)
	e.CreateAttr("id", "it's <\"&\">\t\n\r")
	body := e.CreateElement("body")
	body.SetText("a\x00b\r\n\uFFFD'\"<&>]]>")
	e.CreateComment("note")
	got := String(e)
	want := `<message xmlns='jabber:client' id='it&apos;s &lt;&quot;&amp;&quot;&gt;&#x9;&#xA;&#xD;'>` +
		"<body>a\uFFFDb&#xD;\n\uFFFD&apos;&quot;&lt;&amp;&gt;]]&gt;</body><!--note--></message>"
	if got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	e.RemoveChildAt(1)
	back, err := ParseElement(Marshal(e))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.SelectAttrValue("id", ""); got != "it's <\"&\">\t\n\r" {
		t.Errorf("id after a round trip = %q", got)
	}
}

// TestParseElementRefusesForbiddenXML is defect 10 of issue 14: input that XML
// or its namespaces forbid was accepted and forwarded. Each must be refused at
// parse with the stream error RFC 6120 names for it.
func TestParseElementRefusesForbiddenXML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Condition
	}{
		// XML 1.0 §3.1, Unique Att Spec: a message with two 'to' went to the second.
		{"two to attributes", `<message to='a@localhost' to='b@localhost' type='chat'><body>x</body></message>`, NotWellFormed},
		{"two attributes on a child", `<message><body a='1' a='2'>x</body></message>`, NotWellFormed},
		{"two xml:lang", `<message xml:lang='en' xml:lang='de'/>`, NotWellFormed},
		{"one prefix declared twice", `<a xmlns:p='urn:1' xmlns:p='urn:2'><p:b/></a>`, NotWellFormed},
		{"default namespace declared twice", `<message xmlns='jabber:client' xmlns='urn:x'/>`, NotWellFormed},
		// Namespaces in XML §6.3: two prefixes bound to one namespace name.
		{"same expanded attribute name", `<a xmlns:p='urn:n' xmlns:q='urn:n' p:x='1' q:x='2'/>`, NotWellFormed},
		{"same expanded name, one prefix inherited", `<a xmlns:p='urn:n'><b xmlns:q='urn:n' p:x='1' q:x='2'/></a>`, NotWellFormed},
		// Namespaces in XML §3, reserved prefixes and namespace names.
		{"xmlns:xml bound elsewhere", `<message xmlns:xml='urn:not-xml' xml:lang='en'/>`, NotWellFormed},
		{"xmlns:xmlns declared", `<message xmlns:xmlns='urn:x'/>`, NotWellFormed},
		{"xmlns:xmlns bound to its own name", `<message xmlns:xmlns='http://www.w3.org/2000/xmlns/'/>`, NotWellFormed},
		{"xmlns:xmlns lets xmlns prefix an element", `<xmlns:a xmlns:xmlns='urn:x'/>`, NotWellFormed},
		{"another prefix bound to the XML namespace", `<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>`, NotWellFormed},
		{"another prefix bound to the xmlns namespace", `<a xmlns:p='http://www.w3.org/2000/xmlns/'/>`, NotWellFormed},
		{"default namespace is the XML namespace", `<a xmlns='http://www.w3.org/XML/1998/namespace'/>`, NotWellFormed},
		{"default namespace is the xmlns namespace", `<a><b xmlns='http://www.w3.org/2000/xmlns/'/></a>`, NotWellFormed},
		// A prefixed attribute on a stanza is not its routing attribute, but a
		// recipient that matches attributes by local name would take it for one.
		{"unbound j:from", `<message j:from='admin@localhost' to='bob@localhost'><body>x</body></message>`, NotWellFormed},
		{"bound j:from", `<message xmlns:j='jabber:client' j:from='admin@localhost' to='bob@localhost'><body>x</body></message>`, BadNamespacePrefix},
		{"bound f:to on an iq", `<iq xmlns:f='urn:f' f:to='evil@localhost' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`, BadNamespacePrefix},
		{"prefixed type on a presence", `<presence xmlns:f='urn:f' f:type='unavailable'/>`, BadNamespacePrefix},
		{"xml:id on a message", `<message xml:id='x' to='bob@localhost'/>`, BadNamespacePrefix},
		// XML 1.0 §4.1, Legal Character: references must name a Char.
		{"surrogate reference in text", `<message><body>&#xD800;</body></message>`, NotWellFormed},
		{"low surrogate reference in text", `<message><body>a&#xDFFF;b</body></message>`, NotWellFormed},
		{"decimal surrogate reference", `<message><body>&#55296;</body></message>`, NotWellFormed},
		{"surrogate reference in an attribute", `<message id='&#xD800;'/>`, NotWellFormed},
		{"surrogate reference after a CDATA section", `<message><body><![CDATA[&#xD800;]]>&#xDBFF;</body></message>`, NotWellFormed},
		{"U+FFFE reference", `<message><body>&#xFFFE;</body></message>`, NotWellFormed},
		// RFC 6120 §11.6: UTF-8 only.
		{"UTF-16 declaration", `<?xml version='1.0' encoding='UTF-16'?><message><body>x</body></message>`, UnsupportedEncoding},
		{"Latin-1 declaration, double quotes", `<?xml version="1.0" encoding="ISO-8859-1"?><message/>`, UnsupportedEncoding},
		{"encoding with spaces around the equals sign", `<?xml version='1.0' encoding = 'UTF-16' ?><message/>`, UnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseElement([]byte(tt.in))
			if e != nil {
				t.Errorf("ParseElement returned %s with its error", String(e))
			}
			wantStreamError(t, err, tt.want)
		})
	}
}

// TestParseElementAcceptsNearlyForbiddenXML keeps the rules above from
// refusing what XML allows.
func TestParseElementAcceptsNearlyForbiddenXML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		body string // text of the first <body/>, if any
	}{
		{"xmlns:xml bound to the XML namespace", `<message xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>`, ""},
		{"same local name in two namespaces", `<a xmlns:p='urn:1' xmlns:q='urn:2' p:x='1' q:x='2' x='3'/>`, ""},
		{"one prefix bound twice on a path", `<a xmlns:p='urn:1' p:x='1'><b xmlns:p='urn:2' p:x='2'/></a>`, ""},
		{"prefixed attributes with other names on a stanza", `<message xmlns:f='urn:f' f:label='x' xml:lang='en'><body f:to='y'>x</body></message>`, "x"},
		{"UTF-8 declaration, lower case", `<?xml version='1.0' encoding='utf-8'?><message><body>x</body></message>`, "x"},
		{"declaration without encoding", `<?xml version="1.0" standalone="yes"?><message/>`, ""},
		{"a reference-like text in a CDATA section", `<message><body><![CDATA[&#xD800;]]></body></message>`, "&#xD800;"},
		{"a literal U+FFFD", "<message><body>\uFFFD &#xFFFD; &#x10FFFF; &#xE000; &#xD7FF;</body></message>", "\uFFFD \uFFFD \U0010FFFF \uE000 \uD7FF"},
		{"an escaped reference", `<message><body>&amp;#xD800;</body></message>`, "&#xD800;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseElement([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseElement: %v", err)
			}
			if b := Child(e, "body", ""); b != nil && b.Text() != tt.body {
				t.Errorf("body = %q, want %q", b.Text(), tt.body)
			}
		})
	}
}

// expandedNames lists, in document order, the expanded name of every element
// and of every attribute (with its value) below and including e, resolving
// prefixes through e's ancestors: what a namespace-aware reader sees.
func expandedNames(e *etree.Element) []string {
	var out []string
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		out = append(out, "{"+e.NamespaceURI()+"}"+e.Tag)
		for _, a := range e.Attr {
			switch {
			case a.Space == "xmlns" || a.Space == "" && a.Key == "xmlns":
			case a.Space == "":
				out = append(out, "@"+a.Key+"="+a.Value)
			case a.Space == "xml":
				out = append(out, "@{"+NSXML+"}"+a.Key+"="+a.Value)
			default:
				out = append(out, "@{"+prefixURI(e, a.Space)+"}"+a.Key+"="+a.Value)
			}
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(e)
	return out
}

func prefixURI(e *etree.Element, prefix string) string {
	for ; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if a.Space == "xmlns" && a.Key == prefix {
				return a.Value
			}
		}
	}
	return "(unbound)"
}

// TestParseElementChildrenSelfContained is defect 3 of issue 14: a room moved
// the children of a groupchat into the message it built, and a child that used
// a prefix declared on the sender's <message/> lost the declaration, so every
// occupant's stream broke with not-well-formed and MAM skipped the archived
// copy. Every child of a parsed element, moved or copied out of it, must
// serialise to XML that parses alone and that means the same thing in a
// jabber:client stream.
func TestParseElementChildrenSelfContained(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"defect 3", `<message xmlns:x='u' type='groupchat' to='r@muclight.localhost'><x:d/><body>hi</body></message>`},
		{"prefix on a grandchild and on attributes", `<message xmlns='jabber:client' xmlns:p='urn:p' xmlns:q='urn:q'>` +
			`<x xmlns='urn:x'><p:y q:a='1'/></x><body p:lang='x'>hi</body></message>`},
		{"prefix shadowed in one child, used in another", `<message xmlns='jabber:client' xmlns:p='urn:outer'>` +
			`<a xmlns:p='urn:inner'><p:b/></a><p:c/></message>`},
		{"outer binding used after an inner one", `<message xmlns:p='urn:1'><a><b xmlns:p='urn:2'><p:c/></b><p:d/></a></message>`},
		{"prefixed stanza-id and origin-id", `<message xmlns='jabber:client' xmlns:sid='urn:xmpp:sid:0' type='groupchat'>` +
			`<body>x</body><sid:origin-id id='o'/><sid:stanza-id id='s' by='r@muclight.localhost'/></message>`},
		{"prefixes bound on the child itself", `<iq xmlns='jabber:client' type='set' id='1'><q:query xmlns:q='jabber:iq:roster'><q:item jid='a@b'/></q:query></iq>`},
		{"a default namespace other than jabber:client", `<forwarded xmlns='urn:xmpp:forward:0' xmlns:d='urn:xmpp:delay'>` +
			`<d:delay stamp='2026-01-01T00:00:00Z'/><message xmlns='jabber:client'><body>b</body></message><note/></forwarded>`},
		{"xml:lang needs no declaration", `<message xmlns='jabber:client' xmlns:h='http://jabber.org/protocol/xhtml-im'>` +
			`<body xml:lang='en'>x</body><h:html><body xmlns='http://www.w3.org/1999/xhtml' xml:lang='en'><h:p>x</h:p></body></h:html></message>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func() *etree.Element {
				e, err := ParseElement([]byte(tt.in))
				if err != nil {
					t.Fatalf("ParseElement: %v", err)
				}
				if e.NamespaceURI() == "" {
					e.CreateAttr("xmlns", NSClient) // as the session does
				}
				return e
			}
			orig := parse()
			var want [][]string
			for _, c := range orig.ChildElements() {
				want = append(want, expandedNames(c))
			}

			// Read back inside a jabber:client element: the context of every
			// stanza the server writes.
			check := func(how string, i int, b []byte) {
				t.Helper()
				if _, err := ParseElement(b); err != nil {
					t.Errorf("%s child %d alone does not parse: %v\n%s", how, i, err, b)
					return
				}
				wrapped, err := ParseElement([]byte("<message xmlns='jabber:client'>" + string(b) + "</message>"))
				if err != nil {
					t.Errorf("%s child %d does not parse in a message: %v\n%s", how, i, err, b)
					return
				}
				if got := expandedNames(wrapped.ChildElements()[0]); strings.Join(got, " ") != strings.Join(want[i], " ") {
					t.Errorf("%s child %d reads back as\n%q\nwant\n%q", how, i, got, want[i])
				}
			}
			for i, c := range orig.ChildElements() {
				check("copied", i, Marshal(c.Copy()))
			}
			// The room's way: children moved (AddChild) or copied into a new
			// message, serialised through an Outbound.
			moved := parse()
			m1 := NewStanzaElement(KindMessage, "groupchat", "1", JID{}, JID{})
			m2 := NewStanzaElement(KindMessage, "groupchat", "1", JID{}, JID{})
			for _, c := range moved.ChildElements() {
				m2.AddChild(c.Copy())
				m1.AddChild(c)
			}
			for name, m := range map[string]*etree.Element{"moved": m1, "copied into a message": m2} {
				out := NewOutbound(m).Bytes("bob@localhost")
				back, err := ParseElement(out)
				if err != nil {
					t.Errorf("%s: the built message does not parse: %v\n%s", name, err, out)
					continue
				}
				for i, c := range back.ChildElements() {
					if got := expandedNames(c); strings.Join(got, " ") != strings.Join(want[i], " ") {
						t.Errorf("%s: child %d reads back as\n%q\nwant\n%q", name, i, got, want[i])
					}
				}
			}
		})
	}
}

// TestMarshalEmptyText is the crasher FuzzParseElement found: an empty CDATA
// section parsed to an empty text token, which marshalled to <body></body>,
// which parsed back to nothing and marshalled to <body/>.
func TestMarshalEmptyText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<message><body><![CDATA[]]></body></message>`, `<message><body/></message>`},
		{`<message><body><![CDATA[]]><![CDATA[]]></body></message>`, `<message><body/></message>`},
		{`<message><body>a<![CDATA[]]>b</body></message>`, `<message><body>ab</body></message>`},
		{`<message><body><![CDATA[]]><x/></body></message>`, `<message><body><x/></body></message>`},
	}
	for _, tt := range tests {
		m1 := Marshal(mustParse(t, tt.in))
		if string(m1) != tt.want {
			t.Errorf("Marshal(%s) = %s, want %s", tt.in, m1, tt.want)
		}
		if m2 := Marshal(mustParse(t, string(m1))); string(m2) != string(m1) {
			t.Errorf("not stable across a round trip: %s, then %s", m1, m2)
		}
	}
	// Built by code: empty text and CDATA sections write nothing, and a CDATA
	// section writes the text it holds.
	e := Elem("message", "")
	e.CreateElement("body").SetText("")
	e.CreateElement("subject").SetCData("")
	e.CreateElement("thread").SetCData("a<b]]>")
	if got, want := String(e), `<message><body/><subject/><thread>a&lt;b]]&gt;</thread></message>`; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

package xmpp

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// ParseElement parses the one complete XML element that an RFC 7395 message
// carries. It refuses, as a *StreamError, what the framing forbids: more or
// fewer than one root element, text outside it, comments, processing
// instructions and DTDs (restricted-xml, RFC 6120 §11.1); what XML and its
// namespaces forbid (not-well-formed): unbound prefixes, duplicate attributes,
// the reserved xml and xmlns prefixes misbound, references to characters XML
// cannot carry; an XML declaration of an encoding other than UTF-8
// (unsupported-encoding, RFC 6120 §11.6); and a prefixed to, from, id or type
// on a stanza (bad-namespace-prefix), which a recipient that matches
// attributes by local name would take for the routing attribute.
//
// Every child element of the returned root is self-contained: it declares the
// prefixes that it and its descendants take from the root, and the root's
// default namespace unless that is jabber:client (or none), the content
// namespace of every stanza. A child moved or copied into another stanza
// therefore keeps its meaning, and serialises to XML that parses alone.
func ParseElement(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	// Kept so that checkTree can refuse them; etree would keep the last.
	doc.ReadSettings.PreserveDuplicateAttrs = true
	if err := doc.ReadFromBytes(b); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, &StreamError{Condition: PolicyViolation, Text: "element nested too deeply"}
		}
		return nil, &StreamError{Condition: NotWellFormed}
	}
	var root *etree.Element
	for i, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			if root != nil {
				return nil, &StreamError{Condition: NotWellFormed, Text: "more than one element in a message"}
			}
			root = t
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, &StreamError{Condition: NotWellFormed, Text: "text outside the element"}
			}
		case *etree.ProcInst:
			// An XML declaration is tolerated (RFC 7395 §3.3.3 discourages it)
			// where XML allows one, first; any other processing instruction
			// is restricted XML.
			if t.Target != "xml" || i != 0 {
				return nil, &StreamError{Condition: RestrictedXML}
			}
			// The decoder reads every encoding as UTF-8, which would make
			// another encoding's bytes mean something their sender did not.
			if enc := declParam(t.Inst, "encoding"); enc != "" && !strings.EqualFold(enc, "UTF-8") {
				return nil, &StreamError{Condition: UnsupportedEncoding, Text: "XMPP is UTF-8 only"}
			}
		default:
			return nil, &StreamError{Condition: RestrictedXML}
		}
	}
	if root == nil {
		return nil, &StreamError{Condition: NotWellFormed, Text: "no element in the message"}
	}
	if err := checkTree(root); err != nil {
		return nil, err
	}
	if err := checkRoutingAttrs(root); err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("&#")) {
		if err := checkCharRefs(b); err != nil {
			return nil, err
		}
	}
	// Detach from the document so the element is a free-standing root.
	doc.RemoveChild(root)
	return root, nil
}

// nsXMLNS is the namespace that the xmlns prefix stands for, which no
// declaration may name.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// binding is one prefix declaration on the path from the root.
type binding struct {
	uri   string
	depth int // of the declaring element; 0 is the root
}

// need is a declaration that a child of the root must carry to be
// self-contained.
type need struct {
	child       *etree.Element
	prefix, uri string
}

// attrName is an attribute's name as Namespaces in XML compares them: a
// declaration by the prefix it declares, any other attribute by namespace and
// local name.
type attrName struct {
	decl    bool
	ns, key string
}

// checkTree walks the element iteratively (the parser already bounds depth),
// refuses restricted tokens and what namespaces forbid, and makes the root's
// children self-contained. It keeps the bindings in scope itself instead of
// asking etree, whose lookup walks up to the root for every prefixed name:
// quadratic in a deep, hostile message.
func checkTree(root *etree.Element) error {
	var bound map[string][]binding // prefix → its declarations on the current path
	var needs []need
	var nbuf [8]attrName
	names := nbuf[:0]
	type step struct {
		e    *etree.Element
		exit bool
	}
	var buf [32]step
	stack := append(buf[:0], step{e: root})
	// depth counts the elements entered and not yet left: when an element
	// is entered, exactly its ancestors.
	depth := 0
	var child *etree.Element // the root's child being walked
	// resolve finds a prefix's namespace, noting a child's use of the root's
	// binding; "" for an unbound prefix.
	resolve := func(prefix string) string {
		bs := bound[prefix]
		if len(bs) == 0 {
			return ""
		}
		b := bs[len(bs)-1]
		if b.depth == 0 && depth > 0 {
			noted := false
			for i := len(needs) - 1; i >= 0 && needs[i].child == child; i-- {
				if needs[i].prefix == prefix {
					noted = true
					break
				}
			}
			if !noted {
				needs = append(needs, need{child: child, prefix: prefix, uri: b.uri})
			}
		}
		return b.uri
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		e := s.e
		if s.exit {
			depth--
			for _, a := range e.Attr {
				if a.Space == "xmlns" {
					bound[a.Key] = bound[a.Key][:len(bound[a.Key])-1]
				}
			}
			continue
		}
		if depth == 1 {
			child = e
		}
		for _, a := range e.Attr {
			switch {
			case a.Space == "xmlns":
				if err := checkDecl(a.Key, a.Value); err != nil {
					return err
				}
				if bound == nil {
					bound = map[string][]binding{}
				}
				bound[a.Key] = append(bound[a.Key], binding{uri: a.Value, depth: depth})
			case a.Space == "" && a.Key == "xmlns" && (a.Value == NSXML || a.Value == nsXMLNS):
				return &StreamError{Condition: NotWellFormed, Text: "reserved namespace as the default"}
			}
		}
		stack = append(stack, step{e: e, exit: true})
		if e.Space != "" && resolve(e.Space) == "" {
			return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + e.Space}
		}
		// encoding/xml keeps a name such as ":a" or "a:" whole; XML
		// namespaces allow a colon only between a prefix and a local name.
		if strings.Contains(e.Tag, ":") {
			return &StreamError{Condition: NotWellFormed, Text: "colon in name " + e.Tag}
		}
		names = names[:0]
		for _, a := range e.Attr {
			if strings.Contains(a.Key, ":") {
				return &StreamError{Condition: NotWellFormed, Text: "colon in name " + a.Key}
			}
			n := attrName{key: a.Key}
			switch a.Space {
			case "":
			case "xmlns":
				n.decl = true
			case "xml":
				n.ns = NSXML
			default:
				if n.ns = resolve(a.Space); n.ns == "" {
					return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + a.Space}
				}
			}
			names = append(names, n)
		}
		if hasDuplicate(names) {
			return &StreamError{Condition: NotWellFormed, Text: "attribute given twice in <" + e.FullTag() + "/>"}
		}
		depth++ // for the children, entered after this
		for _, t := range e.Child {
			switch t := t.(type) {
			case *etree.Element:
				stack = append(stack, step{e: t})
			case *etree.CharData:
			default:
				return &StreamError{Condition: RestrictedXML}
			}
		}
	}
	selfContain(root, needs)
	return nil
}

// checkDecl applies Namespaces in XML §3 to a declaration of prefix: xml may
// only be bound to its own namespace, xmlns never, no other prefix to either,
// and no prefix undeclared (empty).
func checkDecl(prefix, uri string) error {
	switch {
	case uri == "":
		return &StreamError{Condition: NotWellFormed, Text: "empty namespace for prefix " + prefix}
	case prefix == "xmlns":
		return &StreamError{Condition: NotWellFormed, Text: "the xmlns prefix cannot be declared"}
	case (prefix == "xml") != (uri == NSXML), uri == nsXMLNS:
		return &StreamError{Condition: NotWellFormed, Text: "prefix " + prefix + " bound to a reserved namespace"}
	}
	return nil
}

// hasDuplicate reports whether two attributes of one element have the same
// name; a map only for an element with many, so that a hostile one stays
// linear.
func hasDuplicate(names []attrName) bool {
	if len(names) > 16 {
		seen := make(map[attrName]struct{}, len(names))
		for _, n := range names {
			if _, ok := seen[n]; ok {
				return true
			}
			seen[n] = struct{}{}
		}
		return false
	}
	for i := 1; i < len(names); i++ {
		for j := range i {
			if names[i] == names[j] {
				return true
			}
		}
	}
	return false
}

// selfContain gives the root's children the declarations they take from the
// root (needs, grouped by child), first among their attributes.
func selfContain(root *etree.Element, needs []need) {
	def := ""
	for _, a := range root.Attr {
		if a.Space == "" && a.Key == "xmlns" {
			def = a.Value
		}
	}
	for i := 0; i < len(needs); {
		c, n := needs[i].child, len(needs[i].child.Attr)
		for ; i < len(needs) && needs[i].child == c; i++ {
			c.CreateAttr("xmlns:"+needs[i].prefix, needs[i].uri)
		}
		c.Attr = slices.Concat(c.Attr[n:], c.Attr[:n])
	}
	if def == "" || def == NSClient {
		return
	}
	for _, c := range root.ChildElements() {
		if attrIndex(c, "xmlns") < 0 {
			n := len(c.Attr)
			c.CreateAttr("xmlns", def)
			c.Attr = slices.Concat(c.Attr[n:], c.Attr[:n])
		}
	}
}

// routingAttrs are the attributes RFC 6120 §8.1 gives every stanza.
var routingAttrs = map[string]bool{"to": true, "from": true, "id": true, "type": true}

// checkRoutingAttrs refuses a prefixed routing attribute on a stanza: it is
// another attribute to a namespace-aware reader, but the one a careless
// recipient would route or trust, next to the 'from' the server stamped.
func checkRoutingAttrs(root *etree.Element) error {
	switch root.Tag {
	case KindMessage, KindPresence, KindIQ:
	default:
		return nil
	}
	if root.Space != "" {
		return nil
	}
	for _, a := range root.Attr {
		if a.Space != "" && a.Space != "xmlns" && routingAttrs[a.Key] {
			return &StreamError{Condition: BadNamespacePrefix, Text: "prefixed " + a.Key + " attribute on a stanza"}
		}
	}
	return nil
}

var (
	cdataStart = []byte("<![CDATA[")
	cdataEnd   = []byte("]]>")
)

// checkCharRefs refuses character references to what XML cannot carry. The
// standard library's decoder turns a reference to a surrogate into U+FFFD
// instead of failing, so the input is read again; only once it has parsed,
// without comments or processing instructions, where '&' starts a reference
// everywhere but in CDATA sections.
func checkCharRefs(b []byte) error {
	for {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			return nil
		}
		if c := bytes.Index(b[:i], cdataStart); c >= 0 {
			end := bytes.Index(b[c+len(cdataStart):], cdataEnd)
			if end < 0 {
				return nil // cannot happen in input that parsed
			}
			b = b[c+len(cdataStart)+end+len(cdataEnd):]
			continue
		}
		b = b[i+1:]
		if len(b) == 0 || b[0] != '#' {
			continue
		}
		b = b[1:]
		base := rune(10)
		if len(b) > 0 && b[0] == 'x' {
			base, b = 16, b[1:]
		}
		var r rune
		for len(b) > 0 && b[0] != ';' {
			d := rune(unhex(b[0]))
			if d >= base {
				break // cannot happen in input that parsed
			}
			if r <= utf8.MaxRune {
				r = r*base + d
			}
			b = b[1:]
		}
		if !isXMLChar(r) {
			return &StreamError{Condition: NotWellFormed, Text: "reference to a character XML cannot carry"}
		}
	}
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// declParam returns the value of the pseudo-attribute name in the body of an
// XML declaration ("version='1.0' encoding='UTF-8'"), "" if it has none.
func declParam(s, name string) string {
	for {
		i := strings.Index(s, name)
		if i < 0 {
			return ""
		}
		s = strings.TrimLeft(s[i+len(name):], " \t\r\n")
		if !strings.HasPrefix(s, "=") {
			continue
		}
		s = strings.TrimLeft(s[1:], " \t\r\n")
		if s == "" || s[0] != '\'' && s[0] != '"' {
			continue
		}
		if j := strings.IndexByte(s[1:], s[0]); j >= 0 {
			return s[1 : 1+j]
		}
		return ""
	}
}

// Child returns e's first child element with the given local name and
// namespace, resolving prefixes and inherited default namespaces. It is the
// lookup protocol code needs, where etree's own selectors match prefixes.
func Child(e *etree.Element, local, ns string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Child {
		if c, ok := c.(*etree.Element); ok && c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// Children returns e's child elements with the given local name and namespace.
func Children(e *etree.Element, local, ns string) []*etree.Element {
	if e == nil {
		return nil
	}
	var out []*etree.Element
	for _, c := range e.Child {
		if c, ok := c.(*etree.Element); ok && c.Tag == local && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// Is reports whether e has the given local name and namespace.
func Is(e *etree.Element, local, ns string) bool {
	return e != nil && e.Tag == local && e.NamespaceURI() == ns
}

// Elem creates an element with a default namespace declaration, the shape
// every payload this server writes has.
func Elem(local, ns string) *etree.Element {
	e := etree.NewElement(local)
	if ns != "" {
		e.CreateAttr("xmlns", ns)
	}
	return e
}

// writeSettings serialise the tokens appendXML leaves to etree.
var writeSettings = &etree.WriteSettings{AttrSingleQuote: true}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Marshal serialises e (and its subtree) as one XML element.
func Marshal(e *etree.Element) []byte {
	return AppendElement(nil, e)
}

// AppendElement appends e's serialisation to dst. It writes into a pooled
// buffer first, so that dst grows at most once.
func AppendElement(dst []byte, e *etree.Element) []byte {
	buf := bufPool.Get().(*[]byte)
	*buf = appendXML((*buf)[:0], e)
	dst = append(dst, *buf...)
	if cap(*buf) <= 64<<10 {
		bufPool.Put(buf)
	}
	return dst
}

// String serialises e for logs and tests.
func String(e *etree.Element) string {
	return string(appendXML(nil, e))
}

// appendXML writes what etree's WriteTo writes, single-quoted, but escapes
// what etree writes raw and a parser would not read back: carriage returns
// (which it turns into newlines) and, in attribute values, tabs and newlines
// (which it turns into spaces). A CDATA section is written as the text it
// holds, and an element whose only content is empty text as an empty-element
// tag, so that what Marshal writes and parses back marshals to the same bytes.
func appendXML(dst []byte, e *etree.Element) []byte {
	dst = append(dst, '<')
	dst = appendName(dst, e.Space, e.Tag)
	for _, a := range e.Attr {
		dst = append(dst, ' ')
		dst = appendName(dst, a.Space, a.Key)
		dst = append(dst, "='"...)
		dst = appendEscaped(dst, a.Value, true)
		dst = append(dst, '\'')
	}
	open := false // the start tag's '>' is written
	for _, t := range e.Child {
		switch c := t.(type) {
		case *etree.Element:
			if !open {
				dst, open = append(dst, '>'), true
			}
			dst = appendXML(dst, c)
		case *etree.CharData:
			if c.Data == "" {
				continue
			}
			if !open {
				dst, open = append(dst, '>'), true
			}
			dst = appendEscaped(dst, c.Data, false)
		default:
			// Comments, directives and processing instructions only come
			// from code, never from ParseElement.
			if !open {
				dst, open = append(dst, '>'), true
			}
			var b bytes.Buffer
			t.WriteTo(&b, writeSettings)
			dst = append(dst, b.Bytes()...)
		}
	}
	if !open {
		return append(dst, "/>"...)
	}
	dst = append(dst, "</"...)
	dst = appendName(dst, e.Space, e.Tag)
	return append(dst, '>')
}

func appendName(dst []byte, space, local string) []byte {
	if space != "" {
		dst = append(dst, space...)
		dst = append(dst, ':')
	}
	return append(dst, local...)
}

// appendEscaped appends s escaped for text or a single- or double-quoted
// attribute value; like etree, it writes U+FFFD for what XML cannot carry.
func appendEscaped(dst []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && !asciiSpecial[c] {
			i++
			continue
		}
		r, w := rune(c), 1
		if c >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '\'':
			esc = "&apos;"
		case r == '"':
			esc = "&quot;"
		case r == '\r':
			esc = "&#xD;"
		case r == '\n' && attr:
			esc = "&#xA;"
		case r == '\t' && attr:
			esc = "&#x9;"
		case r == utf8.RuneError && w == 1, !isXMLChar(r):
			esc = "\uFFFD"
		default:
			i += w
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i += w
		last = i
	}
	return append(dst, s[last:]...)
}

// asciiSpecial marks the ASCII bytes appendEscaped must look at.
var asciiSpecial = func() (t [utf8.RuneSelf]bool) {
	for c := range byte(0x20) {
		t[c] = true
	}
	for _, c := range []byte("&<>'\"") {
		t[c] = true
	}
	return t
}()

// isXMLChar reports whether XML 1.0 can carry r (its Char production).
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

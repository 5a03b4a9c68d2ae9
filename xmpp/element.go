package xmpp

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// ParseElement parses the one complete XML element that an RFC 7395 message
// carries. It refuses, as a *StreamError, what the framing forbids: more or
// fewer than one root element, text outside it, comments, processing
// instructions and DTDs (restricted-xml, RFC 6120 §11.1), and prefixes that
// no declaration binds (not-well-formed).
func ParseElement(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
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
	// Detach from the document so the element is a free-standing root.
	doc.RemoveChild(root)
	return root, nil
}

// checkTree walks the element iteratively (the parser already bounds depth)
// and refuses restricted tokens and unbound prefixes. It counts the prefix
// declarations in scope instead of asking etree, whose lookup walks up to the
// root for every prefixed name: quadratic in a deep, hostile message.
func checkTree(root *etree.Element) error {
	var bound map[string]int // prefix → its declarations on the current path
	type step struct {
		e    *etree.Element
		exit bool
	}
	var buf [32]step
	stack := append(buf[:0], step{e: root})
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		e := s.e
		if s.exit {
			for _, a := range e.Attr {
				if a.Space == "xmlns" {
					bound[a.Key]--
				}
			}
			continue
		}
		for _, a := range e.Attr {
			if a.Space == "xmlns" {
				// Namespaces in XML 1.0 cannot undeclare a prefix.
				if a.Value == "" {
					return &StreamError{Condition: NotWellFormed, Text: "empty namespace for prefix " + a.Key}
				}
				if bound == nil {
					bound = map[string]int{}
				}
				bound[a.Key]++
			}
		}
		stack = append(stack, step{e: e, exit: true})
		if e.Space != "" && bound[e.Space] == 0 {
			return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + e.Space}
		}
		// encoding/xml keeps a name such as ":a" or "a:" whole; XML
		// namespaces allow a colon only between a prefix and a local name.
		if strings.Contains(e.Tag, ":") {
			return &StreamError{Condition: NotWellFormed, Text: "colon in name " + e.Tag}
		}
		for _, a := range e.Attr {
			if strings.Contains(a.Key, ":") {
				return &StreamError{Condition: NotWellFormed, Text: "colon in name " + a.Key}
			}
			if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" && bound[a.Space] == 0 {
				return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + a.Space}
			}
		}
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
	return nil
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
// (which it turns into spaces).
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
	if len(e.Child) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	for _, t := range e.Child {
		if c, ok := t.(*etree.Element); ok {
			dst = appendXML(dst, c)
		} else if c, ok := t.(*etree.CharData); ok && !c.IsCData() {
			dst = appendEscaped(dst, c.Data, false)
		} else {
			// Comments, directives, processing instructions and CDATA
			// sections only come from code, never from ParseElement.
			var b bytes.Buffer
			t.WriteTo(&b, writeSettings)
			dst = append(dst, b.Bytes()...)
		}
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

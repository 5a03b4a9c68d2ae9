package xmpp

import (
	"bytes"
	"errors"
	"strings"
	"sync"

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
	for _, t := range doc.Child {
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
			// An XML declaration is tolerated (RFC 7395 §3.3.3 discourages it);
			// any other processing instruction is restricted XML.
			if t.Target != "xml" {
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
// and refuses restricted tokens and unbound prefixes.
func checkTree(root *etree.Element) error {
	stack := []*etree.Element{root}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e.Space != "" && e.NamespaceURI() == "" {
			return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + e.Space}
		}
		for _, a := range e.Attr {
			if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" && a.NamespaceURI() == "" {
				return &StreamError{Condition: NotWellFormed, Text: "unbound prefix " + a.Space}
			}
		}
		for _, t := range e.Child {
			switch t := t.(type) {
			case *etree.Element:
				stack = append(stack, t)
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

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var writeSettings = &etree.WriteSettings{AttrSingleQuote: true}

// Marshal serialises e (and its subtree) as one XML element.
func Marshal(e *etree.Element) []byte {
	return AppendElement(nil, e)
}

// AppendElement appends e's serialisation to dst.
func AppendElement(dst []byte, e *etree.Element) []byte {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	e.WriteTo(buf, writeSettings)
	dst = append(dst, buf.Bytes()...)
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
	return dst
}

// String serialises e for logs and tests.
func String(e *etree.Element) string {
	var b strings.Builder
	e.WriteTo(&b, writeSettings)
	return b.String()
}

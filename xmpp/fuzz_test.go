package xmpp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseElement checks that the parser never panics, that what it accepts
// serialises to bytes it accepts again and that serialise identically, that
// every child of what it accepts serialises alone to XML it accepts, and that
// the stanza helpers cope with whatever it accepts. The seed corpus is in
// testdata/fuzz/FuzzParseElement, together with the inputs fuzzing found.
func FuzzParseElement(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseElement(in)
		if err != nil {
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is a %T, want a *StreamError", err, err)
			}
			if e != nil {
				t.Fatal("ParseElement returned an element with its error")
			}
			return
		}

		m1 := Marshal(e)
		e2, err := ParseElement(m1)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\ninput:  %q\noutput: %q", err, in, m1)
		}
		if m2 := Marshal(e2); !bytes.Equal(m1, m2) {
			t.Fatalf("Marshal is not stable across a round trip:\ninput:  %q\nfirst:  %q\nsecond: %q", in, m1, m2)
		}

		// A child taken out of the element stands on its own (defect 3).
		for _, c := range e.ChildElements() {
			if alone := Marshal(c.Copy()); !parses(alone) {
				t.Fatalf("a child copied out does not parse alone:\ninput: %q\nchild: %q", in, alone)
			}
		}

		IsStanzaElement(e)
		st, _, _ := NewStanza(e)

		// What the server writes back must parse at the other end.
		reply := Marshal(ErrorReply(st, NewError(BadRequest, "x")))
		if _, err := ParseElement(reply); err != nil {
			t.Fatalf("ErrorReply does not parse: %v\ninput: %q\nreply: %q", err, in, reply)
		}
		o := NewOutbound(e)
		if after := Marshal(e); !bytes.Equal(after, m1) {
			t.Fatalf("NewOutbound changed its element:\nbefore: %q\nafter:  %q", m1, after)
		}
		for _, to := range []string{"", "bob@example.com/it's <&>"} {
			out := o.Bytes(to)
			got, err := ParseElement(out)
			if err != nil {
				t.Fatalf("Outbound.Bytes(%q) does not parse: %v\ninput: %q\nout:   %q", to, err, in, out)
			}
			if v := attrValue(got, "to"); v != to {
				t.Fatalf("Outbound.Bytes(%q) has to=%q\nout: %q", to, v, out)
			}
		}
	})
}

func parses(b []byte) bool {
	_, err := ParseElement(b)
	return err == nil
}

package xmpp

import (
	"strings"
	"testing"
)

// benchGroupchat is a typical MUC Light groupchat message as a client sends
// it: a body and an XEP-0359 origin-id, about 300 bytes.
var benchGroupchat = []byte(`<message xmlns='jabber:client' from='alice@example.com/phone-3f2a9c' ` +
	`to='coffee@muclight.example.com' id='0b2e5c1a-7f3d-4b8e-9c6a-1d2e3f4a5b6c' type='groupchat'>` +
	`<body>Is the meeting still on for 3pm? I have the slides ready.</body>` +
	`<origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/></message>`)

func BenchmarkParseGroupchat(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchGroupchat)))
	for b.Loop() {
		e, err := ParseElement(benchGroupchat)
		if err != nil {
			b.Fatal(err)
		}
		if _, toErr, fromErr := NewStanza(e); toErr != nil || fromErr != nil {
			b.Fatal(toErr, fromErr)
		}
	}
}

func BenchmarkMarshalGroupchat(b *testing.B) {
	e := mustParse(b, string(benchGroupchat))
	b.ReportAllocs()
	b.SetBytes(int64(len(Marshal(e))))
	for b.Loop() {
		Marshal(e)
	}
}

func BenchmarkOutboundNew(b *testing.B) {
	e := mustParse(b, string(benchGroupchat))
	b.ReportAllocs()
	b.SetBytes(int64(len(Marshal(e))))
	for b.Loop() {
		NewOutbound(e)
	}
}

// BenchmarkOutboundAppendTo is the per-recipient cost of fan-out: it should
// allocate nothing once the buffer has grown.
func BenchmarkOutboundAppendTo(b *testing.B) {
	o := NewOutbound(mustParse(b, string(benchGroupchat)))
	for _, to := range []string{"bob@example.com/laptop-77e1", `bob@example.com/<it's & "q">`} {
		name := "plain"
		if strings.ContainsAny(to, "<&'\"") {
			name = "escaped"
		}
		b.Run(name, func(b *testing.B) {
			dst := o.AppendTo(nil, to)
			b.ReportAllocs()
			b.SetBytes(int64(len(dst)))
			for b.Loop() {
				dst = o.AppendTo(dst[:0], to)
			}
		})
	}
}

// BenchmarkParseDeepPrefixed is a worst case for checkTree: every element's
// prefix lookup walks to the root.
func BenchmarkParseDeepPrefixed(b *testing.B) {
	const depth = 1000
	msg := []byte("<p:a xmlns:p='urn:p'>" + strings.Repeat("<p:a>", depth-1) +
		strings.Repeat("<p:b/>", (64<<10)/6) + strings.Repeat("</p:a>", depth))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseElement(msg); err != nil {
			b.Fatal(err)
		}
	}
}

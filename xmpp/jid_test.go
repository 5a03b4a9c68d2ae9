package xmpp

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseJIDValid(t *testing.T) {
	long := strings.Repeat("a", maxPartLen)
	tests := []struct {
		name string
		in   string
		want JID
		str  string // canonical String(); empty means the same as in
	}{
		{"empty is the zero JID", "", JID{}, ""},
		{"domain only", "example.com", JID{Domain: "example.com"}, ""},
		{"bare", "alice@example.com", JID{Local: "alice", Domain: "example.com"}, ""},
		{"full", "alice@example.com/phone", JID{"alice", "example.com", "phone"}, ""},
		{"domain and resource", "example.com/admin", JID{Domain: "example.com", Resource: "admin"}, ""},
		{"resource keeps slash and at", "alice@example.com/a/b@c", JID{"alice", "example.com", "a/b@c"}, ""},
		{"slash splits before at", "a/b@example.com", JID{Domain: "a", Resource: "b@example.com"}, ""},
		{"resource keeps case and spaces", "alice@example.com/My Phone", JID{"alice", "example.com", "My Phone"}, ""},
		{"local and domain lower-cased", "ALICE@EXAMPLE.COM/Res", JID{"alice", "example.com", "Res"}, "alice@example.com/Res"},
		{"non-ASCII local case-mapped", "ΣΟΦΙΑ@example.com", JID{Local: "σοφια", Domain: "example.com"}, "σοφια@example.com"},
		{"trailing dot stripped", "example.com.", JID{Domain: "example.com"}, "example.com"},
		{"trailing dot stripped in full JID", "alice@example.com./r", JID{"alice", "example.com", "r"}, "alice@example.com/r"},
		{"IPv4 domain", "alice@127.0.0.1", JID{Local: "alice", Domain: "127.0.0.1"}, ""},
		{"IPv6 literal lower-cased", "alice@[2001:DB8::1]/r", JID{"alice", "[2001:db8::1]", "r"}, "alice@[2001:db8::1]/r"},
		{"local at the length limit", long + "@example.com", JID{Local: long, Domain: "example.com"}, ""},
		{"resource at the length limit", "example.com/" + long, JID{Domain: "example.com", Resource: long}, ""},
		{"63-byte label", strings.Repeat("d", 63) + ".example", JID{Domain: strings.Repeat("d", 63) + ".example"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := ParseJID(tt.in)
			if err != nil {
				t.Fatalf("ParseJID(%q): %v", tt.in, err)
			}
			if j != tt.want {
				t.Fatalf("ParseJID(%q) = %#v, want %#v", tt.in, j, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got := j.String(); got != str {
				t.Errorf("String() = %q, want %q", got, str)
			}
			again, err := ParseJID(j.String())
			if err != nil || again != j {
				t.Errorf("ParseJID(String()) = %#v, %v; want %#v", again, err, j)
			}
		})
	}
}

func TestParseJIDInvalid(t *testing.T) {
	long := strings.Repeat("a", maxPartLen+1)
	var longDomain []string
	for range 20 {
		longDomain = append(longDomain, strings.Repeat("d", 60))
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty local before at", "@example.com"},
		{"empty local in full JID", "@example.com/r"},
		{"empty resource after slash", "alice@example.com/"},
		{"empty resource on domain", "example.com/"},
		{"empty domain after at", "alice@"},
		{"empty domain with resource", "alice@/r"},
		{"only a resource", "/r"},
		{"only a dot", "."},
		{"two trailing dots", "example.com.."},
		{"empty label", "example..com"},
		{"leading dot", ".example.com"},
		{"label over 63 bytes", strings.Repeat("d", 64) + ".example"},
		{"double quote in local", `a"b@example.com`},
		{"ampersand in local", "a&b@example.com"},
		{"apostrophe in local", "a'b@example.com"},
		{"colon in local", "a:b@example.com"},
		{"less-than in local", "a<b@example.com"},
		{"greater-than in local", "a>b@example.com"},
		{"second at lands in domain", "a@b@example.com"},
		{"space in local", "al ice@example.com"},
		{"local over 1023 bytes", long + "@example.com"},
		{"resource over 1023 bytes", "alice@example.com/" + long},
		{"domain over 1023 bytes", strings.Join(longDomain, ".")},
		{"invalid UTF-8 in local", "\xff@example.com"},
		{"invalid UTF-8 in domain", "alice@exa\xffmple.com"},
		{"invalid UTF-8 in resource", "alice@example.com/\xff"},
		{"space in domain", "exa mple.com"},
		{"space in domain of full JID", "alice@example .com/r"},
		{"tab in domain", "example\t.com"},
		{"newline in domain", "example.com\n"},
		{"NUL in domain", "exa\x00mple.com"},
		{"DEL in domain", "exa\x7fmple.com"},
		{"angle bracket in domain", "exa<mple.com"},
		{"backslash in domain", `exa\mple.com`},
		{"control character in resource", "alice@example.com/a\x00b"},
		{"empty IPv6 literal", "alice@[]"},
		{"bogus IPv6 literal", "alice@[not an address]"},
		{"IPv4 in brackets", "alice@[127.0.0.1]"},
		{"unclosed IPv6 literal", "alice@[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := ParseJID(tt.in)
			if !errors.Is(err, ErrJIDMalformed) {
				t.Fatalf("ParseJID(%q) = %#v, %v; want ErrJIDMalformed", tt.in, j, err)
			}
			if !j.IsZero() {
				t.Errorf("ParseJID(%q) returned %#v with its error, want the zero JID", tt.in, j)
			}
		})
	}
}

func TestNewJID(t *testing.T) {
	j, err := NewJID("Alice", "Example.COM.", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	if want := (JID{"alice", "example.com", "Phone"}); j != want {
		t.Errorf("NewJID = %#v, want %#v", j, want)
	}
	if _, err := NewJID("a@b", "example.com", ""); !errors.Is(err, ErrJIDMalformed) {
		t.Errorf("NewJID with '@' in the localpart: err = %v, want ErrJIDMalformed", err)
	}
	if _, err := NewJID("alice", "", ""); !errors.Is(err, ErrJIDMalformed) {
		t.Errorf("NewJID without a domain: err = %v, want ErrJIDMalformed", err)
	}
}

func TestMustParseJIDPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseJID(\"@example.com\") did not panic")
		}
	}()
	MustParseJID("@example.com")
}

func TestJIDParts(t *testing.T) {
	tests := []struct {
		in     string
		bare   string
		isBare bool
		isZero bool
	}{
		{"", "", true, true},
		{"example.com", "example.com", true, false},
		{"example.com/r", "example.com", false, false},
		{"alice@example.com", "alice@example.com", true, false},
		{"alice@example.com/phone", "alice@example.com", false, false},
		{"alice@example.com/a/b", "alice@example.com", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			j := MustParseJID(tt.in)
			if got := j.Bare().String(); got != tt.bare {
				t.Errorf("Bare() = %q, want %q", got, tt.bare)
			}
			if !j.Bare().IsBare() {
				t.Errorf("Bare().IsBare() = false")
			}
			if j.Bare().Local != j.Local || j.Bare().Domain != j.Domain {
				t.Errorf("Bare() = %#v lost parts of %#v", j.Bare(), j)
			}
			if got := j.IsBare(); got != tt.isBare {
				t.Errorf("IsBare() = %v, want %v", got, tt.isBare)
			}
			if got := j.IsZero(); got != tt.isZero {
				t.Errorf("IsZero() = %v, want %v", got, tt.isZero)
			}
		})
	}
}

func TestJIDWithResource(t *testing.T) {
	j := MustParseJID("alice@example.com/phone")
	if got := j.WithResource("laptop").String(); got != "alice@example.com/laptop" {
		t.Errorf("WithResource(laptop) = %q", got)
	}
	if got := j.WithResource(""); got != j.Bare() {
		t.Errorf("WithResource(\"\") = %#v, want the bare JID", got)
	}
	if j.Resource != "phone" {
		t.Errorf("WithResource changed its receiver: %#v", j)
	}
}

// TestJIDText: a JID crosses nodes as its canonical string in JSON, the zero
// JID as "", and what comes in is parsed and canonicalised, not trusted.
func TestJIDText(t *testing.T) {
	type wire struct {
		From     JID
		To       JID
		Audience []JID
		Seen     map[JID]int
	}
	in := wire{
		From:     MustParseJID("alice@example.com/My Phone"),
		Audience: []JID{MustParseJID("bob@example.com"), MustParseJID("muclight.example.com")},
		Seen:     map[JID]int{MustParseJID("carol@example.com/r"): 2},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"From":"alice@example.com/My Phone","To":"","Audience":["bob@example.com","muclight.example.com"],"Seen":{"carol@example.com/r":2}}`
	if string(b) != want {
		t.Fatalf("Marshal = %s\nwant      %s", b, want)
	}
	var out wire
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip = %#v, want %#v", out, in)
	}
	if !out.To.IsZero() {
		t.Errorf("the zero JID came back as %#v", out.To)
	}

	var j JID
	if err := json.Unmarshal([]byte(`"ALICE@Example.COM./Res"`), &j); err != nil {
		t.Fatal(err)
	}
	if j != (JID{"alice", "example.com", "Res"}) {
		t.Errorf("not canonicalised on the way in: %#v", j)
	}
	for _, bad := range []string{`"@example.com"`, `"alice@example.com/"`, `"a<b@example.com"`} {
		keep := j
		err := json.Unmarshal([]byte(bad), &j)
		if !errors.Is(err, ErrJIDMalformed) {
			t.Errorf("Unmarshal(%s) = %v, want ErrJIDMalformed", bad, err)
		}
		if j != keep {
			t.Errorf("Unmarshal(%s) changed the JID to %#v", bad, j)
		}
	}
}

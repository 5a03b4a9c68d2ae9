package xmpp

import (
	"errors"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// JID is an XMPP address (RFC 7622) in its canonical form. The zero value is
// the empty address, used for stanzas that carry no 'to' or 'from'.
type JID struct {
	Local    string
	Domain   string
	Resource string
}

// ErrJIDMalformed is returned by ParseJID for any address that RFC 7622 rejects;
// callers map it to the jid-malformed condition.
var ErrJIDMalformed = errors.New("xmpp: malformed JID")

const maxPartLen = 1023

// ParseJID splits and canonicalises s: the localpart with the
// UsernameCaseMapped PRECIS profile, the domain lower-cased, the resource with
// OpaqueString. An empty string yields the zero JID.
func ParseJID(s string) (JID, error) {
	if s == "" {
		return JID{}, nil
	}
	var j JID
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		j.Resource = rest[i+1:]
		rest = rest[:i]
		if j.Resource == "" {
			return JID{}, ErrJIDMalformed
		}
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		j.Local = rest[:i]
		rest = rest[i+1:]
		if j.Local == "" {
			return JID{}, ErrJIDMalformed
		}
	}
	j.Domain = rest
	return j.canonical()
}

// MustParseJID is ParseJID for constants in code and tests; it panics on error.
func MustParseJID(s string) JID {
	j, err := ParseJID(s)
	if err != nil {
		panic(err.Error() + ": " + s)
	}
	return j
}

// NewJID builds and canonicalises a JID from its parts.
func NewJID(local, domain, resource string) (JID, error) {
	return JID{Local: local, Domain: domain, Resource: resource}.canonical()
}

func (j JID) canonical() (JID, error) {
	// PRECIS replaces invalid UTF-8 with U+FFFD instead of refusing it.
	if !utf8.ValidString(j.Local) || !utf8.ValidString(j.Resource) {
		return JID{}, ErrJIDMalformed
	}
	var err error
	if j.Local != "" {
		if j.Local, err = precis.UsernameCaseMapped.String(j.Local); err != nil || len(j.Local) > maxPartLen ||
			strings.ContainsAny(j.Local, "\"&'/:<>@") {
			return JID{}, ErrJIDMalformed
		}
	}
	if j.Domain, err = canonicalDomain(j.Domain); err != nil {
		return JID{}, err
	}
	if j.Resource != "" {
		if j.Resource, err = precis.OpaqueString.String(j.Resource); err != nil || len(j.Resource) > maxPartLen {
			return JID{}, ErrJIDMalformed
		}
	}
	return j, nil
}

// canonicalDomain lower-cases the domain and refuses what cannot be a DNS name
// or IP literal. Internationalised names are accepted as UTF-8 and only
// lower-cased; this server serves the domains its operator configures, so full
// IDNA mapping buys nothing here.
func canonicalDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > maxPartLen || !utf8.ValidString(d) {
		return "", ErrJIDMalformed
	}
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		// IPv6 literal (RFC 7622 §3.2): an address, no zone.
		if a, err := netip.ParseAddr(d[1 : len(d)-1]); err != nil || !a.Is6() || a.Zone() != "" {
			return "", ErrJIDMalformed
		}
		return strings.ToLower(d), nil
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return "", ErrJIDMalformed
		}
	}
	if strings.ContainsAny(d, "\"&'/:<>@[]\\") || strings.ContainsFunc(d, isSpaceOrControl) {
		return "", ErrJIDMalformed
	}
	return strings.ToLower(d), nil
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// IsZero reports whether j is the empty address.
func (j JID) IsZero() bool { return j == JID{} }

// IsBare reports whether j has no resource.
func (j JID) IsBare() bool { return j.Resource == "" }

// Bare returns j without its resource.
func (j JID) Bare() JID { return JID{Local: j.Local, Domain: j.Domain} }

// WithResource returns j with its resource replaced by r (not canonicalised:
// callers pass resources that came from a parsed JID or the server itself).
func (j JID) WithResource(r string) JID { j.Resource = r; return j }

// String renders j as local@domain/resource, leaving out empty parts.
func (j JID) String() string {
	if j.Local == "" && j.Resource == "" {
		return j.Domain
	}
	var b strings.Builder
	b.Grow(len(j.Local) + len(j.Domain) + len(j.Resource) + 2)
	if j.Local != "" {
		b.WriteString(j.Local)
		b.WriteByte('@')
	}
	b.WriteString(j.Domain)
	if j.Resource != "" {
		b.WriteByte('/')
		b.WriteString(j.Resource)
	}
	return b.String()
}

// MarshalText renders j canonically, so that a JID serialises as a JSON
// string (requests and events crossing nodes); the zero JID is "".
func (j JID) MarshalText() ([]byte, error) { return []byte(j.String()), nil }

// UnmarshalText parses text with ParseJID, so that what another node sent is
// canonical and valid before anything compares it; "" is the zero JID.
func (j *JID) UnmarshalText(text []byte) error {
	p, err := ParseJID(string(text))
	if err != nil {
		return err
	}
	*j = p
	return nil
}

package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

// Occupant ids are stable for a user in a room (any resource), distinct
// across users, rooms and secrets, and do not show the JID.
func TestOccupantID(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	rm, other := xmpp.MustParseJID("coven@muclight.localhost"), xmpp.MustParseJID("moot@muclight.localhost")
	alice, bob := xmpp.MustParseJID("alice@localhost/phone"), xmpp.MustParseJID("bob@localhost")
	id := OccupantID(secret, rm, alice)
	if len(id) != 22 || strings.Contains(id, "alice") {
		t.Fatalf("OccupantID = %q, want 22 characters not showing the JID", id)
	}
	if got := OccupantID(secret, rm.WithResource("x"), alice.Bare()); got != id {
		t.Errorf("the same user and room gave %q and %q", id, got)
	}
	for name, got := range map[string]string{
		"another user":   OccupantID(secret, rm, bob),
		"another room":   OccupantID(secret, other, alice),
		"another secret": OccupantID([]byte("other"), rm, alice),
	} {
		if got == id {
			t.Errorf("%s has the same occupant id %q", name, id)
		}
	}
}

// The pooled form gives OccupantID's value (ids must not change).
func TestOccupantIDsMatch(t *testing.T) {
	secret := []byte("s")
	ids := NewOccupantIDs(secret)
	for _, p := range [][2]string{{"coven@muclight.localhost", "alice@localhost/phone"}, {"muclight.localhost", "localhost"}, {"r@s", "u@d"}} {
		rm, u := xmpp.MustParseJID(p[0]), xmpp.MustParseJID(p[1])
		m := hmacRef(secret, rm.Bare().String(), u.Bare().String())
		if got := ids.ID(rm, u); got != m || OccupantID(secret, rm, u) != m {
			t.Errorf("%v %v: %q, want %q", rm, u, got, m)
		}
	}
}

func hmacRef(secret []byte, rm, user string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("occupant-id\x00" + rm + "\x00" + user))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

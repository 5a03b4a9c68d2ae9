package ws

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/wschat/xmppws/xmpp"
)

// TestTokenKeyEquivalent holds the property the token store relies on: a
// token as issueToken makes it is longer than SHA-256's block, so an HMAC
// keyed with the token (what a client computes) equals one keyed with its
// digest (what the server keeps). A shorter token would break every FAST
// login, and this test first.
func TestTokenKeyEquivalent(t *testing.T) {
	raw := make([]byte, tokenBytes)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	if len(token) <= sha256.BlockSize {
		t.Fatalf("token of %d bytes, not above the %d-byte block", len(token), sha256.BlockSize)
	}
	digest := sha256.Sum256([]byte(token))
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("Initiator"))
	if !hmac.Equal(mac.Sum(nil), htMessage(digest[:], "Initiator")) {
		t.Fatal("HMAC keyed with the token differs from HMAC keyed with its digest")
	}
	// What is stored is neither the token nor its digest.
	secret := bytes.Repeat([]byte{7}, 32)
	user := xmpp.MustParseJID("alice@localhost")
	stored := xorBytes(digest[:], tokenMask(secret, user, "id1"))
	if bytes.Equal(stored, digest[:]) || bytes.Contains([]byte(token), stored) {
		t.Fatal("the stored key is the digest itself")
	}
	if !bytes.Equal(xorBytes(stored, tokenMask(secret, user, "id1")), digest[:]) {
		t.Fatal("unmasking does not give the digest back")
	}
	if bytes.Equal(tokenMask(secret, user, "id1"), tokenMask(secret, user, "id2")) {
		t.Fatal("two tokens share a mask")
	}
}

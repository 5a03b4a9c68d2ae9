package apptoken_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wschat/xmppws/apptoken"
)

var (
	now    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	secret = []byte("0123456789abcdef0123456789abcdef")
)

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice@localhost", "aud": "chat", "iss": "app", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t *testing.T, alg string, secret, pub []byte) *apptoken.Verifier {
	t.Helper()
	v, err := apptoken.New(apptoken.Config{Algorithm: alg, Secret: secret, PublicKeyPEM: pub, Audience: "chat", Issuer: "app",
		Leeway: apptoken.DefaultLeeway, Hosts: []string{"localhost"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pemOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pemOf(t, &rsaKey.PublicKey)
	hs := verifier(t, apptoken.HS256, secret, nil)
	rs := verifier(t, apptoken.RS256, nil, rsaPEM)
	ed := verifier(t, apptoken.EdDSA, nil, pemOf(t, edPub))
	none := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		v     *apptoken.Verifier
		token string
		want  error // nil: accepted as alice@localhost
	}{
		{"valid HS256", hs, sign(t, jwt.SigningMethodHS256, secret, claims(nil)), nil},
		{"valid RS256", rs, sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), nil},
		{"valid EdDSA", ed, sign(t, jwt.SigningMethodEdDSA, edPriv, claims(nil)), nil},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), apptoken.ErrInvalid},
		{"expired within leeway", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), nil},
		{"no exp", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") })), apptoken.ErrInvalid},
		{"issued in the future", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), apptoken.ErrInvalid},
		{"wrong audience", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "other" })), apptoken.ErrInvalid},
		{"audience list", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", "chat"} })), nil},
		{"wrong issuer", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })), apptoken.ErrInvalid},
		{"wrong HS key", hs, sign(t, jwt.SigningMethodHS256, []byte("another secret of thirty-two byt"), claims(nil)), apptoken.ErrInvalid},
		{"wrong RS key", rs, sign(t, jwt.SigningMethodRS256, otherRSA, claims(nil)), apptoken.ErrInvalid},
		{"alg none", hs, none(claims(nil)), apptoken.ErrInvalid},
		{"alg none to RS", rs, none(claims(nil)), apptoken.ErrInvalid},
		// The classic confusion: HMAC keyed with the server's public key.
		{"HS256 signed with the RS public key", rs, sign(t, jwt.SigningMethodHS256, rsaPEM, claims(nil)), apptoken.ErrInvalid},
		{"RS256 to an HS verifier", hs, sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), apptoken.ErrInvalid},
		{"HS512 to an HS256 verifier", hs, sign(t, jwt.SigningMethodHS512, secret, claims(nil)), apptoken.ErrInvalid},
		{"unserved domain", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "alice@elsewhere" })), apptoken.ErrSubject},
		{"full JID", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "alice@localhost/phone" })), apptoken.ErrSubject},
		{"domain only", hs, sign(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "localhost" })), apptoken.ErrSubject},
		{"garbage", hs, "eyJhbGciOi.not.atoken", apptoken.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := tc.v.Verify(tc.token)
			if tc.want == nil {
				if err != nil || j.String() != "alice@localhost" {
					t.Fatalf("Verify = %v, %v; want alice@localhost", j, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want %v", j, err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
}

func TestNewRefusesWeakConfig(t *testing.T) {
	for name, cfg := range map[string]apptoken.Config{
		"short secret":  {Algorithm: apptoken.HS256, Secret: []byte("short"), Audience: "chat"},
		"no audience":   {Algorithm: apptoken.HS256, Secret: secret},
		"alg none":      {Algorithm: "none", Audience: "chat"},
		"bad RSA key":   {Algorithm: apptoken.RS256, PublicKeyPEM: []byte("nope"), Audience: "chat"},
		"bad EdDSA key": {Algorithm: apptoken.EdDSA, PublicKeyPEM: []byte("nope"), Audience: "chat"},
	} {
		if _, err := apptoken.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLooksLikeToken(t *testing.T) {
	if !apptoken.LooksLikeToken(sign(t, jwt.SigningMethodHS256, secret, claims(nil))) {
		t.Error("a JWT is not recognised")
	}
	for _, pw := range []string{"pw-alice", "eyJ-but.no", "a.b.c"} {
		if apptoken.LooksLikeToken(pw) {
			t.Errorf("%q taken for a token", pw)
		}
	}
}

package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wschat/xmppws/api"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

// TestJWTLoginOnRunningServer configures [auth.jwt] with an RS256 public
// key file, as an application would, and logs in through the whole server
// with PLAIN and OAUTHBEARER; a token signed HS256 with the public key as
// the secret (algorithm confusion), an expired one and one for a user the
// store does not hold (auto_create off) are refused as wrong passwords.
func TestJWTLoginOnRunningServer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pubFile := filepath.Join(t.TempDir(), "app.pub")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	e := startAPIServer(t, func(c *Config) {
		c.Auth.JWT = JWTConfig{Enabled: true, Algorithm: "RS256", PublicKeyFile: pubFile, Audience: "xmppws", Issuer: "https://app.example",
			Leeway: duration{30 * time.Second}, JIDClaim: "sub"}
	})
	e.wantStatus("POST", "/api/v1/users", map[string]string{"jid": "alice@localhost", "password": "pw-alice"}, 201, &api.Created{})
	sign := func(m jwt.SigningMethod, k any, sub string, exp time.Duration) string {
		s, err := jwt.NewWithClaims(m, jwt.MapClaims{"sub": sub, "aud": "xmppws", "iss": "https://app.example",
			"exp": time.Now().Add(exp).Unix()}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodRS256, key, "alice@localhost", time.Hour)
	url := "ws://" + e.a.Addr() + e.cfg.WebSocket.Path
	open := func() *client.Client {
		c, err := client.Dial(tctx(t), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if _, err := c.Open(tctx(t), "localhost"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// PLAIN with the token as the password: the whole login, bound.
	c := open()
	if err := c.AuthPlain(tctx(t), "alice", good); err != nil {
		t.Fatalf("PLAIN with a token: %v", err)
	}
	if _, err := c.Open(tctx(t), "localhost"); err != nil {
		t.Fatal(err)
	}
	if j, err := c.Bind(tctx(t), "app"); err != nil || j.String() != "alice@localhost/app" {
		t.Fatalf("bound %v %v", j, err)
	}
	var ss struct {
		Sessions []api.Session `json:"sessions"`
	}
	e.wantStatus("GET", "/api/v1/users/alice@localhost/sessions", nil, 200, &ss)
	if len(ss.Sessions) != 1 {
		t.Fatalf("the token's session is not listed: %+v", ss)
	}
	if c := open(); c.AuthOAuthBearer(tctx(t), "alice@localhost", good) != nil {
		t.Fatal("OAUTHBEARER with a good token refused")
	}
	for name, tok := range map[string]string{
		"HS256 keyed with the public key": sign(jwt.SigningMethodHS256, pubPEM, "alice@localhost", time.Hour),
		"expired":                         sign(jwt.SigningMethodRS256, key, "alice@localhost", -time.Hour),
		"user not in the store":           sign(jwt.SigningMethodRS256, key, "nobody@localhost", time.Hour),
	} {
		for _, mech := range []string{"PLAIN", "OAUTHBEARER"} {
			c := open()
			var err error
			if mech == "PLAIN" {
				user, _, _ := strings.Cut(name, " ")
				user = map[string]string{"user": "nobody"}[user]
				if user == "" {
					user = "alice"
				}
				err = c.AuthPlain(tctx(t), user, tok)
			} else {
				err = c.AuthOAuthBearer(tctx(t), "", tok)
			}
			var ae *client.AuthError
			if !errors.As(err, &ae) || ae.Condition != "not-authorized" {
				t.Errorf("%s with %s: %v, want not-authorized", mech, name, err)
			}
		}
	}
	// The password keeps working beside the tokens.
	if c, err := client.Login(tctx(t), url, xmpp.MustParseJID("alice@localhost/pw"), "pw-alice"); err != nil {
		t.Fatalf("password login: %v", err)
	} else {
		c.CloseNow()
	}
	if strings.Contains(e.log.String(), good) {
		t.Fatal("a token was logged")
	}
}

func TestAPIAndJWTConfigRejected(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ toml, key string }{
		{"[api]\naddress = 'nowhere'\n[[api.tokens]]\nname = 'a'\ntoken = '" + apiToken + "'", "api.address"},
		{"[api]\naddress = '127.0.0.1:0'", "api.tokens"},
		{"[[api.tokens]]\nname = 'a'\ntoken = 'short'", "api.tokens[0].token"},
		{"[[api.tokens]]\nname = ''\ntoken = '" + apiToken + "'", "api.tokens[0].name"},
		{"[[api.tokens]]\nname = 'a'\ntoken = '" + apiToken + "'\n[[api.tokens]]\nname = 'a'\ntoken = '" + apiToken + "x'", "api.tokens[1].name"},
		{"[api]\nmax_in_flight = 0", "api.max_in_flight"},
		{"[auth.jwt]\nenabled = true\nsecret = '0123456789abcdef0123456789abcdef'", "auth.jwt.audience"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'", "auth.jwt.secret"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'\nsecret = 'short'", "auth.jwt"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'\nalgorithm = 'none'", "auth.jwt.algorithm"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'\nalgorithm = 'RS256'", "auth.jwt.public_key_file"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'\nalgorithm = 'EdDSA'\npublic_key_file = '" + filepath.Join(dir, "missing.pem") + "'", "auth.jwt.public_key_file"},
		{"[auth.jwt]\nenabled = true\naudience = 'x'\nsecret = '0123456789abcdef0123456789abcdef'\nleeway = '-1s'", "auth.jwt.leeway"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte(tc.toml), 0o600)
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), apiToken) {
			t.Errorf("%q: the error quotes a token", tc.toml)
		}
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
)

// TestFASTTokensAdmin runs the whole server and manages alice's FAST
// tokens through the admin socket: tokens lists what a client was issued
// (and never the token), revoke-tokens ends one or all, and a new password
// or the deletion of the account ends every token too.
func TestFASTTokensAdmin(t *testing.T) {
	cfg := testConfig(t)
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	if _, e, c := userCmd(t, cfg, "pw\n", "add", "alice@localhost"); c != 0 {
		t.Fatalf("add: %s", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	open := func() *client.Client {
		t.Helper()
		c, err := client.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if _, err := c.Open(ctx, "localhost"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	issue := func(ua, password string) string {
		t.Helper()
		res, err := open().AuthSASL2(ctx, client.SASL2{Username: "alice", Password: password, UserAgentID: ua,
			Software: "Tester", Device: "laptop", Bind: true, RequestToken: "HT-SHA-256-NONE"})
		if err != nil || res.Token == "" {
			t.Fatalf("password login with a token request: %v", err)
		}
		return res.Token
	}
	tokenLogin := func(ua, token string) error {
		t.Helper()
		_, err := open().AuthSASL2(ctx, client.SASL2{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: token, UserAgentID: ua, Bind: true})
		return err
	}
	refused := func(what, ua, token string) {
		t.Helper()
		var ae *client.AuthError
		if err := tokenLogin(ua, token); !errors.As(err, &ae) || ae.Condition != "not-authorized" {
			t.Errorf("%s: token login %v, want not-authorized", what, err)
		}
	}

	phone, laptop := issue("ua-phone", "pw"), issue("ua-laptop", "pw")
	if err := tokenLogin("ua-phone", phone); err != nil {
		t.Fatalf("token login: %v", err)
	}
	out, e, c := userCmd(t, cfg, "", "tokens", "alice@localhost")
	if c != 0 {
		t.Fatalf("tokens: %s", e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(out, "ua-phone") || !strings.Contains(out, "ua-laptop") || !strings.Contains(out, "Tester on laptop") {
		t.Fatalf("tokens listing:\n%s", out)
	}
	if strings.Contains(out, phone) || strings.Contains(out, laptop) {
		t.Fatal("the listing shows a token")
	}
	// Tokens issued in the same millisecond list in either order.
	byUA := map[string]string{}
	for _, l := range lines {
		for _, ua := range []string{"ua-phone", "ua-laptop"} {
			if strings.Contains(l, "user-agent "+ua+",") {
				byUA[ua] = l
			}
		}
	}
	if strings.Contains(byUA["ua-phone"], "last used never") || !strings.Contains(byUA["ua-laptop"], "last used never") {
		t.Errorf("last-used column wrong:\n%s", out)
	}
	phoneID := strings.Fields(byUA["ua-phone"])[0]

	if _, e, c := userCmd(t, cfg, "", "revoke-tokens", "alice@localhost", phoneID); c != 0 {
		t.Fatalf("revoke one: %s", e)
	}
	refused("after revoking it", "ua-phone", phone)
	if err := tokenLogin("ua-laptop", laptop); err != nil {
		t.Fatalf("the other token after revoking one: %v", err)
	}
	if _, e, c := userCmd(t, cfg, "", "revoke-tokens", "alice@localhost", "nope"); c == 0 || !strings.Contains(e, "no token") {
		t.Errorf("revoking a missing token: %d %s", c, e)
	}
	if _, e, c := userCmd(t, cfg, "", "revoke-tokens", "alice@localhost"); c != 0 {
		t.Fatalf("revoke all: %s", e)
	}
	refused("after revoking all", "ua-laptop", laptop)

	tok := issue("ua-phone", "pw")
	if _, e, c := userCmd(t, cfg, "pw2\n", "passwd", "alice@localhost"); c != 0 {
		t.Fatalf("passwd: %s", e)
	}
	refused("after a new password", "ua-phone", tok)
	if out, _, _ := userCmd(t, cfg, "", "tokens", "alice@localhost"); strings.TrimSpace(out) != "" {
		t.Errorf("tokens left after a new password:\n%s", out)
	}

	tok = issue("ua-phone", "pw2")
	if _, e, c := userCmd(t, cfg, "", "del", "alice@localhost"); c != 0 {
		t.Fatalf("del: %s", e)
	}
	if _, e, c := userCmd(t, cfg, "pw2\n", "add", "alice@localhost"); c != 0 {
		t.Fatalf("add again: %s", e)
	}
	refused("after the account was deleted and made again", "ua-phone", tok)
}

func TestFASTConfigRejected(t *testing.T) {
	for _, tc := range []struct{ toml, key string }{
		{"[websocket]\nfast_token_ttl = '10s'", "websocket.fast_token_ttl"},
		{"[websocket]\nfast_max_tokens = 0", "websocket.fast_max_tokens"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte(tc.toml), 0o600)
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("[websocket]\nfast = false\nfast_token_ttl = '1h'\n"), 0o600)
	cfg, err := loadConfig(path)
	if err != nil || cfg.WebSocket.FAST || wsConfig(cfg).FASTTokenTTL != time.Hour {
		t.Errorf("fast = false, fast_token_ttl = 1h: %+v %v", cfg.WebSocket, err)
	}
}

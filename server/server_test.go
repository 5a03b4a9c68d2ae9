package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Address != "127.0.0.1:5280" || cfg.General.Hosts[0] != "localhost" || cfg.Storage.DataDir != "data" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte(`
[general]
hosts = ["Example.COM", "chat.example.com"]
[websocket]
auth_timeout = "5s"
max_pending = 1048576
stall_timeout = "250ms"
allowed_origins = ["*.example.com"]
`), 0o600)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.General.Hosts[0] != "example.com" {
		t.Errorf("host not canonicalised: %v", cfg.General.Hosts)
	}
	if cfg.WebSocket.AuthTimeout.Duration != 5*time.Second || cfg.WebSocket.MaxPending != 1<<20 || cfg.WebSocket.StallTimeout.Duration != 250*time.Millisecond {
		t.Errorf("values not applied: %+v", cfg.WebSocket)
	}
	if cfg.WebSocket.MaxStanzaSize != 64<<10 {
		t.Errorf("unset key lost its default: %d", cfg.WebSocket.MaxStanzaSize)
	}
}

func TestConfigRejected(t *testing.T) {
	for _, tc := range []struct{ toml, key string }{
		{"[general]\nhosts = []", "general.hosts"},
		{"[general]\nhosts = ['a@b']", "general.hosts"},
		{"[general]\nhosts = ['x', 'X']", "general.hosts"},
		{"[general]\nlog_level = 'loud'", "general.log_level"},
		{"[general]\nshutdown_timeout = '0s'", "general.shutdown_timeout"},
		{"[general]\nhostz = ['x']", "general.hostz"},
		{"[http]\naddress = 'nowhere'", "http.address"},
		{"[http]\ntls_cert = 'c.pem'", "http.tls_cert"},
		{"[http]\nalternate_urls = ['http://b.example.com/xmpp-websocket']", "http.alternate_urls"},
		{"[http]\nalternate_urls = ['/xmpp-websocket']", "http.alternate_urls"},
		{"[http]\nalternate_urls = ['ws:b.example.com']", "http.alternate_urls"},
		{"[http]\nalternate_urls = ['ws://b.example.com/x', 'ws://b.example.com/x']", "http.alternate_urls"},
		{"[websocket]\nmax_stanza_size = 10", "websocket.max_stanza_size"},
		{"[websocket]\nauth_timeout = 'soon'", "auth_timeout"},
		{"[websocket]\nsend_queue_len = 1000", "websocket.max_pending"},
		{"[websocket]\nmax_pending = 65536", "websocket.max_pending"},
		{"[websocket]\nstall_timeout = '0s'", "websocket.stall_timeout"},
		{"[websocket]\nstall_timeout = '1m'", "websocket.stall_timeout"},
		{"[websocket]\npath = 'ws'", "websocket.path"},
		{"[websocket]\nallowed_origins = ['[']", "websocket.allowed_origins"},
		{"[storage]\nbackend = 'postgres'", "storage.backend"},
		{"[websocket]\nmax_pending = 'many'", "max_pending"},
		{"[websocket]\nsm_ack_every = 0\nsm_ack_interval = '0s'", "websocket.sm_ack_every"},
		{"[websocket]\nsm_max_unacked = 1024", "websocket.sm_max_unacked"},
		{"[websocket]\nsm_max_unacked = 33554432", "websocket.sm_max_unacked"},
		{"[websocket]\nsm_resume_timeout = '48h'", "websocket.sm_resume_timeout"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte(tc.toml), 0o600)
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
	}
}

func testConfig(t *testing.T) Config {
	cfg := defaultConfig()
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func userCmd(t *testing.T, cfg Config, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := userCommand(cfg, args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestUserCommandsOffline(t *testing.T) {
	cfg := testConfig(t)
	if _, e, c := userCmd(t, cfg, "secret\n", "add", "-create-database", "alice@localhost"); c != 0 {
		t.Fatalf("add: %d %s", c, e)
	}
	if _, e, c := userCmd(t, cfg, "again\n", "add", "-create-database", "alice@localhost"); c == 0 || !strings.Contains(e, "exists") {
		t.Errorf("duplicate add: %d %s", c, e)
	}
	if _, e, c := userCmd(t, cfg, "x\n", "add", "-create-database", "eve@elsewhere"); c == 0 || !strings.Contains(e, "not served") {
		t.Errorf("unserved domain: %d %s", c, e)
	}
	if _, _, c := userCmd(t, cfg, "", "add", "-create-database", "bob@localhost"); c == 0 {
		t.Error("add with no password accepted")
	}
	if _, e, c := userCmd(t, cfg, "new\n", "passwd", "alice@localhost"); c != 0 {
		t.Errorf("passwd: %s", e)
	}
	if out, _, _ := userCmd(t, cfg, "", "list"); out != "alice@localhost\n" {
		t.Errorf("list: %q", out)
	}
	if _, e, c := userCmd(t, cfg, "", "del", "alice@localhost"); c != 0 {
		t.Errorf("del: %s", e)
	}
	if _, _, c := userCmd(t, cfg, "", "del", "alice@localhost"); c == 0 {
		t.Error("deleting a missing user succeeded")
	}
	if _, _, c := userCmd(t, cfg, "", "frobnicate"); c != 2 {
		t.Error("unknown subcommand not refused with usage")
	}
}

// TestRunningServer starts the whole server, manages a user through the
// admin socket while the server holds the store, logs in over WebSocket,
// reads /metrics and shuts down with <close/> to the session.
func TestRunningServer(t *testing.T) {
	cfg := testConfig(t)
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			a.Shutdown(context.Background())
		}
	})
	if _, e, c := userCmd(t, cfg, "pw\n", "add", "-create-database", "alice@localhost"); c != 0 {
		t.Fatalf("add through the admin socket: %s", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	c, err := client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/t"), "pw")
	if err != nil {
		t.Fatalf("login right after add: %v", err)
	}
	defer c.CloseNow()

	if _, e, code := userCmd(t, cfg, "pw2\n", "passwd", "alice@localhost"); code != 0 {
		t.Fatalf("passwd: %s", e)
	}
	if _, err := client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/u"), "pw"); err == nil {
		t.Error("old password still accepted after passwd")
	}

	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"xmpp_sessions 1", `xmpp_auth_total{mechanism="SCRAM-SHA-256",result="success"} 1`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}

	done := make(chan error, 1)
	go func() { done <- a.Shutdown(ctx) }()
	el, err := c.Next(ctx)
	if err != nil || !xmpp.Is(el, "close", xmpp.NSFraming) {
		t.Fatalf("at shutdown got %v %v, want <close/>", el, err)
	}
	c.Close(ctx)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped = true
	// The store was released: the offline path works again.
	if out, e, code := userCmd(t, cfg, "", "list"); code != 0 || out != "alice@localhost\n" {
		t.Errorf("after shutdown: %q %s", out, e)
	}
}

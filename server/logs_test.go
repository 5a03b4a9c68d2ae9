package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// logCapture is a log destination the test reads while the server writes.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// jsonLines parses every line as one JSON object.
func jsonLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// findLine returns the first line with msg whose attributes include want.
func findLine(lines []map[string]any, msg string, want map[string]any) map[string]any {
next:
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return l
	}
	return nil
}

// TestLogsTellTheStory runs a failed login, a login, a room creation, a
// limiter refusal and a session end against a whole server logging JSON, and
// checks the lines an operator reads, and that no password is among them.
func TestLogsTellTheStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := writeTemp(t, `[general]
log_format = "json"
[http]
address = "127.0.0.1:0"
[storage]
data_dir = "`+dir+`"
[modules.mod_muc_limits]
muc_max_char_count = 10
`)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	const password, wrong = "pw-Secret-1", "wrong-Secret-2"
	if _, e, c := userCmd(t, cfg, password+"\n", "add", "-create-database", "alice@localhost"); c != 0 {
		t.Fatalf("user add: %s", e)
	}
	var logs logCapture
	a, err := start(cfg, newLogger(cfg.General, &logs))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			a.Shutdown(context.Background())
		}
	})
	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	if c, err := client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/x"), wrong); err == nil {
		c.CloseNow()
		t.Fatal("a wrong password was accepted")
	}
	c, err := client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/t"), password)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	room := "story@muclight.localhost"
	create := client.IQ("set", room, client.Query(rooms.NSCreate, ""))
	create.CreateAttr("id", "create")
	c.Send(ctx, create)
	if _, err := c.Expect(ctx, func(el *etree.Element) bool { return el.SelectAttrValue("id", "") == "create" }); err != nil {
		t.Fatalf("create: %v", err)
	}
	msg := etree.NewElement("message")
	msg.CreateAttr("to", room)
	msg.CreateAttr("type", "groupchat")
	msg.CreateAttr("id", "long")
	msg.CreateElement("body").SetText("longer than ten bytes")
	c.Send(ctx, msg)
	el, err := c.Expect(ctx, func(el *etree.Element) bool { return el.SelectAttrValue("id", "") == "long" })
	if err != nil || el.SelectAttrValue("type", "") != "error" {
		t.Fatalf("over muc_max_char_count: %v %v, want an error", el, err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil { // every session has ended and logged
		t.Fatal(err)
	}
	stopped = true

	text := logs.String()
	for _, secret := range []string{password, wrong} {
		if strings.Contains(text, secret) {
			t.Errorf("the log holds a password (%s)", secret)
		}
	}
	lines := jsonLines(t, text)
	checks := []struct {
		msg  string
		want map[string]any
		has  []string
	}{
		{"store opened", map[string]any{"backend": "embedded", "created": false}, []string{"at"}},
		{"module", map[string]any{"name": "mod_muc_light", "legacy_mode": false, "rooms_per_user": "infinity"}, []string{"max_occupants", "hosts"}},
		{"module", map[string]any{"name": "mod_muc_limits", "muc_max_char_count": 10.0}, nil},
		{"module", map[string]any{"name": "mod_mam", "muc_light": true, "backend": "embedded"}, []string{"retention_days"}},
		{"login failed", map[string]any{"user": "alice", "mechanism": "SCRAM-SHA-256", "reason": "not-authorized"}, []string{"remote"}},
		{"login", map[string]any{"jid": "alice@localhost", "mechanism": "SCRAM-SHA-256"}, []string{"remote"}},
		{"room created", map[string]any{"room": room, "by": "alice@localhost", "dialect": "muclight"}, nil},
		{"limiter refusal", map[string]any{"user": "alice@localhost", "room": room, "reason": "too_long", "count": 1.0}, nil},
		{"session ended", map[string]any{"jid": "alice@localhost/t", "reason": "client-closed", "stanzas_in": 3.0}, []string{"remote", "duration", "stanzas_out"}},
	}
	for _, ck := range checks {
		l := findLine(lines, ck.msg, ck.want)
		if l == nil {
			t.Errorf("no %q line with %v in:\n%s", ck.msg, ck.want, text)
			continue
		}
		for _, k := range ck.has {
			if _, ok := l[k]; !ok {
				t.Errorf("%q line lacks %s: %v", ck.msg, k, l)
			}
		}
		if l["level"] != "INFO" {
			t.Errorf("%q is at %v, want INFO", ck.msg, l["level"])
		}
	}
}

// adminRun runs the binary's main code with args and stdin.
func adminRun(stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// TestAdminRefusesMissingDatabase: with no server running and no database
// under data_dir, an admin command says so, exits non-zero and creates
// nothing; user add -create-database creates it; -config works after the
// subcommand as before it.
func TestAdminRefusesMissingDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfgPath := writeTemp(t, "[storage]\ndata_dir = \""+dir+"\"\n")
	db := filepath.Join(dir, boltstore.FileName)
	for _, args := range [][]string{
		{"user", "list", "-config", cfgPath},
		{"-config", cfgPath, "user", "list"},
		{"user", "del", "-config=" + cfgPath, "alice@localhost"},
		{"domain", "purge", "localhost", "-config", cfgPath},
	} {
		_, e, code := adminRun("", args...)
		if code == 0 || !strings.Contains(e, "no database") || !strings.Contains(e, db) {
			t.Errorf("%v: exit %d, %q; want a non-zero exit naming the missing %s", args, code, e, db)
		}
	}
	if _, e, code := adminRun("pw\n", "user", "add", "alice@localhost", "-config", cfgPath); code == 0 || !strings.Contains(e, "-create-database") {
		t.Errorf("add without -create-database: exit %d, %q; want a refusal that names the flag", code, e)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("a refused command created the database")
	}
	if _, e, code := adminRun("pw\n", "user", "add", "-create-database", "alice@localhost", "-config", cfgPath); code != 0 {
		t.Fatalf("add -create-database: exit %d, %s", code, e)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("add -create-database made no database: %v", err)
	}
	for _, args := range [][]string{
		{"user", "list", "-config", cfgPath},
		{"-config", cfgPath, "user", "list"},
		{"--config", cfgPath, "user", "list", "--config=" + cfgPath},
	} {
		if out, e, code := adminRun("", args...); code != 0 || out != "alice@localhost\n" {
			t.Errorf("%v: exit %d, %q, %q; want alice", args, code, out, e)
		}
	}
	if _, _, code := adminRun("", "-config", cfgPath, "user", "list", "-config", cfgPath+".other"); code != 2 {
		t.Errorf("two different -config files: exit %d, want 2", code)
	}
	if _, _, code := adminRun("", "user", "list", "-create-database", "-config", cfgPath); code != 2 {
		t.Errorf("-create-database on list: exit %d, want 2 (usage)", code)
	}
}

// TestLogFormatRefused: an unknown log_format stops the start with a message
// naming the option.
func TestLogFormatRefused(t *testing.T) {
	_, err := loadConfig(writeTemp(t, "[general]\nlog_format = \"xml\"\n"))
	if err == nil || !strings.Contains(err.Error(), "general.log_format") || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("log_format = xml: %v, want an error naming general.log_format", err)
	}
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// TestMain lets the test binary play the server process for the crash
// test: with XMPPWS_TEST_RUN_SERVER set it runs main's code with those
// arguments instead of the tests.
func TestMain(m *testing.M) {
	if args := os.Getenv("XMPPWS_TEST_RUN_SERVER"); args != "" {
		if path := os.Getenv("XMPPWS_TEST_SPANS"); path != "" {
			spanHook = fileSpans(path)
		}
		os.Exit(run(strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// archivedIDs pages through a room's whole archive and returns the ids.
func archivedIDs(ctx context.Context, t *testing.T, c *client.Client, room string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	after := ""
	for {
		set := "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>"
		if after != "" {
			set += "<after>" + after + "</after>"
		}
		q := mucQuery(rooms.NSMAM2, set+"</set>")
		q.CreateAttr("queryid", "all")
		res, err := c.IQ(ctx, client.IQ("set", room, q))
		if err != nil {
			t.Fatalf("archive query: %v", err)
		}
		// The results arrived before the iq result; collect them.
		for {
			el, err := c.Expect(shortPoll(ctx), func(el *etree.Element) bool {
				return xmpp.Child(el, "result", rooms.NSMAM2) != nil
			})
			if err != nil {
				break
			}
			ids[xmpp.Child(el, "result", rooms.NSMAM2).SelectAttrValue("id", "")] = true
		}
		fin := xmpp.Child(res, "fin", rooms.NSMAM2)
		if fin.SelectAttrValue("complete", "") == "true" {
			return ids
		}
		l := xmpp.Child(xmpp.Child(fin, "set", xmpp.NSRSM), "last", xmpp.NSRSM)
		if l == nil {
			return ids
		}
		after = l.Text()
	}
}

// shortPoll is a context that is already done: Expect then returns only
// what is queued.
func shortPoll(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

func stanzaID(el *etree.Element) string {
	if s := xmpp.Child(el, "stanza-id", rooms.NSSID); s != nil {
		return s.SelectAttrValue("id", "")
	}
	return ""
}

// idCollector records the stanza-ids its clients receive, each read by a
// goroutine that ends with its client.
type idCollector struct {
	mu     sync.Mutex
	ids    map[string]bool
	want   int
	enough chan struct{} // closed once want ids arrived
	wg     sync.WaitGroup
}

func collectIDs(ctx context.Context, want int, cs ...*client.Client) *idCollector {
	c := &idCollector{ids: map[string]bool{}, want: want, enough: make(chan struct{})}
	for _, cl := range cs {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				el, err := cl.Next(ctx)
				if err != nil {
					return
				}
				if id := stanzaID(el); id != "" {
					c.mu.Lock()
					if !c.ids[id] {
						c.ids[id] = true
						if len(c.ids) == c.want {
							close(c.enough)
						}
					}
					c.mu.Unlock()
				}
			}
		}()
	}
	return c
}

// done waits for the readers (close the clients first) and returns the ids.
func (c *idCollector) done() map[string]bool {
	c.wg.Wait()
	return c.ids
}

// missingFrom counts the received ids that archived lacks.
func missingFrom(received, archived map[string]bool) int {
	lost := 0
	for id := range received {
		if !archived[id] {
			lost++
		}
	}
	return lost
}

// TestHistorySurvivesRestart: messages archived by one server process are
// there for the next, on both stores.
func TestHistorySurvivesRestart(t *testing.T) {
	for _, backend := range []string{"embedded", "mongodb"} {
		t.Run(backend, func(t *testing.T) {
			cfg := testConfig(t)
			if backend == "mongodb" {
				cfg = mongoConfig(t, mongotest.URI(t))
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			a, err := start(cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			userCmd(t, cfg, "pw\n", "add", "-create-database", "alice@localhost")
			url := func() string { return "ws://" + a.Addr() + cfg.WebSocket.Path }
			alice, err := client.Login(ctx, url(), xmpp.MustParseJID("alice@localhost/a"), "pw")
			if err != nil {
				t.Fatal(err)
			}
			room := "kept@muclight.localhost"
			if _, err := alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSCreate, ""))); err != nil {
				t.Fatal(err)
			}
			sent := map[string]bool{}
			for i := 0; i < 5; i++ {
				alice.Send(ctx, client.Message(room, "groupchat", fmt.Sprint("before restart ", i)))
				el, err := alice.Expect(ctx, func(el *etree.Element) bool { return stanzaID(el) != "" })
				if err != nil {
					t.Fatal(err)
				}
				sent[stanzaID(el)] = true
			}
			alice.Close(ctx)
			if err := a.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if a, err = start(cfg, log); err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(context.Background())
			alice, err = client.Login(ctx, url(), xmpp.MustParseJID("alice@localhost/a"), "pw")
			if err != nil {
				t.Fatal(err)
			}
			defer alice.CloseNow()
			got := archivedIDs(ctx, t, alice, room)
			for id := range sent {
				if !got[id] {
					t.Errorf("message %s lost across the restart (archive has %d entries)", id, len(got))
				}
			}
		})
	}
}

// serverProcess is the server running as a child process (the test binary
// in server mode), so that it can be killed with SIGKILL.
type serverProcess struct {
	cmd  *exec.Cmd
	addr string
	cfg  string // configuration file, for a restart
}

var startedRE = regexp.MustCompile(`msg="server started" http=(\S+)`)

func startProcess(t *testing.T, cfgPath string, env ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), "XMPPWS_TEST_RUN_SERVER=-config\x1f"+cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, cfg: cfgPath}
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case p.addr = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("server process did not start")
	}
	return p
}

func (p *serverProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestCrashLosesNothingDelivered kills the server (SIGKILL) in the middle
// of a stream of groupchat messages; after a restart every message that any
// occupant had received is in the archive, because nothing is delivered
// before its archive write is durable.
func TestCrashLosesNothingDelivered(t *testing.T) {
	for _, backend := range []string{"embedded", "mongodb"} {
		t.Run(backend, func(t *testing.T) {
			if testing.Short() {
				t.Skip("starts server processes")
			}
			toml := fmt.Sprintf("[http]\naddress = \"127.0.0.1:0\"\n[storage]\ndata_dir = %q\n", t.TempDir())
			if backend == "mongodb" {
				mc := mongoConfig(t, mongotest.URI(t)).Storage.MongoDB
				toml += fmt.Sprintf("backend = \"mongodb\"\n[storage.mongodb]\nuri = %q\ndatabase = %q\n", mc.URI, mc.Database)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			p, alice, bob := processWithPair(ctx, t, toml)
			room := "crash@muclight.localhost"
			if _, err := alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))); err != nil {
				t.Fatal(err)
			}
			// Stream messages; both occupants record every stanza-id they receive.
			rec := collectIDs(ctx, 200, alice, bob)
			stop := make(chan struct{})
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if alice.Send(ctx, client.Message(room, "groupchat", fmt.Sprint("m", i))) != nil {
						return
					}
				}
			}()
			select {
			case <-rec.enough:
			case <-ctx.Done():
				t.Fatal("messages did not flow")
			}
			p.kill() // SIGKILL mid-stream
			close(stop)
			alice.CloseNow()
			bob.CloseNow()
			received := rec.done()

			p = startProcess(t, p.cfg)
			bob, err := client.Login(ctx, "ws://"+p.addr+"/xmpp-websocket", xmpp.MustParseJID("bob@localhost/b2"), "pw")
			if err != nil {
				t.Fatal(err)
			}
			defer bob.CloseNow()
			archived := archivedIDs(ctx, t, bob, room)
			lost := missingFrom(received, archived)
			if lost > 0 {
				t.Fatalf("%d of %d received messages are not in the archive after the crash", lost, len(received))
			}
			t.Logf("%d messages received before SIGKILL, all archived (archive holds %d)", len(received), len(archived))
		})
	}
}

// TestSIGTERMWithStalledClient stops the server process with SIGTERM while
// one client has stopped reading and its socket is full: the process still
// exits once general.shutdown_timeout has passed (the stalled write has a
// deadline), long before write_timeout would have closed that client.
func TestSIGTERMWithStalledClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	toml := fmt.Sprintf("[general]\nshutdown_timeout = \"2s\"\n[http]\naddress = \"127.0.0.1:0\"\n[websocket]\nwrite_timeout = \"10m\"\n[websocket.shaper]\nstanza_rate = 0\nbyte_rate = 0\n[storage]\ndata_dir = %q\n", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, alice, bob := processWithPair(ctx, t, toml)
	room := "stall@muclight.localhost"
	if _, err := alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))); err != nil {
		t.Fatal(err)
	}
	bob.StopReading()
	// Alice reads what comes back, so only bob's side backs up; she sends
	// about 9 MiB: more than the loopback socket buffers hold, less than
	// websocket.max_pending, so bob's writer is blocked in a write.
	alice.SetRawHandler(func([]byte) bool { return true })
	big := strings.Repeat("x", 60<<10)
	for i := 0; i < 150; i++ {
		if err := alice.Send(ctx, client.Message(room, "groupchat", big)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		t.Logf("server exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after SIGTERM with a client that does not read")
	}
}

// processWithPair writes toml as the configuration, adds alice and bob,
// starts the server process on it and logs both in; the process and both
// sessions end with the test.
func processWithPair(ctx context.Context, t *testing.T, toml string) (p *serverProcess, alice, bob *client.Client) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "server.toml")
	os.WriteFile(cfgPath, []byte(toml), 0o600)
	fileCfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, e, c := userCmd(t, fileCfg, "pw\n", "add", "-create-database", u+"@localhost"); c != 0 {
			t.Fatalf("add %s: %s", u, e)
		}
	}
	p = startProcess(t, cfgPath)
	url := "ws://" + p.addr + "/xmpp-websocket"
	if alice, err = client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/a"), "pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.CloseNow() })
	if bob, err = client.Login(ctx, url, xmpp.MustParseJID("bob@localhost/b"), "pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.CloseNow() })
	return p, alice, bob
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/xmppws/cluster"
	"github.com/wschat/xmppws/cluster/natstest"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// fileSpans records a server process's acting spans in a file, one line
// per fact ("S|A|E room node unixnano"), each written at once, so that a
// SIGKILL loses none: the no-two-owners check across processes. The
// processes share one machine and so one clock.
func fileSpans(path string) func(rm, node string) actingSpan {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	write := func(kind, rm, node string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s %s %s %d\n", kind, rm, node, time.Now().UnixNano())
	}
	return func(rm, node string) actingSpan {
		write("S", rm, node)
		return fileSpan{write, rm, node}
	}
}

type fileSpan struct {
	write    func(kind, rm, node string)
	rm, node string
}

func (s fileSpan) Acted() { s.write("A", s.rm, s.node) }
func (s fileSpan) End()   { s.write("E", s.rm, s.node) }

// checkSpanFiles fails when two nodes' spans of one room overlap: from a
// span's start to its last act, no other node acted or started.
func checkSpanFiles(t *testing.T, paths ...string) {
	t.Helper()
	type span struct {
		node       string
		start, end int64
	}
	spans := map[string][]*span{} // by room
	open := map[[2]string]*span{} // room, node → its current span
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 4 {
				continue // a line cut by the kill
			}
			at, _ := strconv.ParseInt(fs[3], 10, 64)
			k := [2]string{fs[1], fs[2]}
			switch fs[0] {
			case "S":
				s := &span{node: fs[2], start: at, end: at}
				open[k] = s
				spans[fs[1]] = append(spans[fs[1]], s)
			case "A", "E":
				if s := open[k]; s != nil && fs[0] == "A" {
					s.end = at
				}
			}
		}
		f.Close()
	}
	n := 0
	for rm, ss := range spans {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
		for i := 1; i < len(ss); i++ {
			for j := 0; j < i; j++ {
				if ss[j].node != ss[i].node && ss[i].start <= ss[j].end {
					t.Errorf("room %s: node %s acted from %d to %d while node %s started at %d", rm, ss[j].node, ss[j].start, ss[j].end, ss[i].node, ss[i].start)
				}
			}
		}
		n += len(ss)
	}
	t.Logf("%d acting spans over %d rooms checked", n, len(spans))
}

// TestClusterNodeKilled: a node is killed with SIGKILL while a room it
// owns streams messages. The room comes back on another node once the
// dead node's membership expires (cluster.node_ttl), every message a
// client received is in the archive, and no room ever had two acting
// owners.
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	ns := natstest.Start(t)
	mc := mongoConfig(t, mongotest.URI(t)).Storage.MongoDB
	dir := t.TempDir()
	names := []string{"a", "b", "c"}
	var procs []*serverProcess
	var spanFiles []string
	for i, name := range names {
		toml := fmt.Sprintf("[http]\naddress = \"127.0.0.1:0\"\n[storage]\ndata_dir = %q\nbackend = \"mongodb\"\n[storage.mongodb]\nuri = %q\ndatabase = %q\n"+
			"[cluster]\nnats_url = %q\nnode = %q\nheartbeat = \"100ms\"\nnode_ttl = \"1s\"\n",
			filepath.Join(dir, name), mc.URI, mc.Database, ns.URL(), name)
		cfgPath := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(cfgPath, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			fileCfg, err := loadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"alice", "bob"} {
				if _, e, c := userCmd(t, fileCfg, "pw\n", "add", u+"@localhost"); c != 0 {
					t.Fatalf("add %s: %s", u, e)
				}
			}
		}
		spans := filepath.Join(dir, name+".spans")
		spanFiles = append(spanFiles, spans)
		procs = append(procs, startProcess(t, cfgPath, "XMPPWS_TEST_SPANS="+spans))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := func(i int) string { return "ws://" + procs[i].addr + "/xmpp-websocket" }
	// A room the placement gives to c while all three are live.
	rm := ""
	for i := 0; rm == ""; i++ {
		if r := fmt.Sprintf("kill%d@muclight.localhost", i); cluster.OwnerOf(xmpp.MustParseJID(r), names) == "c" {
			rm = r
		}
	}
	alice, err := client.Login(ctx, url(0), xmpp.MustParseJID("alice@localhost/a"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.CloseNow()
	bob, err := client.Login(ctx, url(1), xmpp.MustParseJID("bob@localhost/b"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.CloseNow()
	// The nodes may not all see each other yet: retry the create until the
	// room exists (a create answered conflict was made by an earlier try).
	for {
		_, err := alice.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>")))
		if err == nil || strings.Contains(err.Error(), "conflict") {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	rec := collectIDs(ctx, 100, bob)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if alice.Send(ctx, client.Message(rm, "groupchat", fmt.Sprint("m", i))) != nil {
				return
			}
			time.Sleep(time.Millisecond) // a steady stream, not a burst the shaper paces
		}
	}()
	select {
	case <-rec.enough:
	case <-ctx.Done():
		t.Fatal("messages did not flow")
	}
	procs[2].kill() // SIGKILL mid-stream
	close(stop)
	<-sent
	// The room comes back on a or b once c's membership expired.
	postUntilAccepted(ctx, t, alice, rm, "after")
	archived := archivedIDs(ctx, t, alice, rm)
	bob.CloseNow()
	received := rec.done()
	if lost := missingFrom(received, archived); lost > 0 {
		t.Errorf("%d of %d messages bob received are not in the archive", lost, len(received))
	}
	t.Logf("%d messages received before and around the kill, all archived (%d in the archive)", len(received), len(archived))
	for _, p := range procs {
		p.kill()
	}
	checkSpanFiles(t, spanFiles...)
}

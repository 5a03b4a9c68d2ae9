package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/xmpp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 100_000 {
		// Spread over six orders of magnitude, 100 ns to 100 ms.
		v := time.Duration(100 * float64(uint64(1)<<r.IntN(20)) * (1 + r.Float64()))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(float64(len(vals))*q+0.999999), 1)
		want := vals[rank-1]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/128 {
			t.Errorf("q%g = %v, want %v within 1/128 above", q, got, want)
		}
	}
	if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Errorf("min %v max %v count %d, want %v %v %d", h.Min(), h.Max(), h.Count(), vals[0], vals[len(vals)-1], len(vals))
	}
}

func TestHistogramExactSmallValuesAndEdges(t *testing.T) {
	var h Histogram
	for _, v := range []time.Duration{-5, 0, 1, 255, 256, 257, 1<<62 + 12345, 1<<63 - 1} {
		h.Record(v)
	}
	if h.Min() != 0 || h.Max() != 1<<63-1 {
		t.Errorf("min %v max %v", h.Min(), h.Max())
	}
	if got := h.Quantile(3.0 / 8); got != 1 {
		t.Errorf("third value %v, want 1 (exact below 256 ns)", got)
	}
	for i := range numBuckets {
		lo := uint64(0)
		if i > 0 {
			lo = bucketMax(i-1) + 1
		}
		if bucketOf(lo) != i || bucketOf(bucketMax(i)) != i {
			t.Fatalf("bucket %d: [%d, %d] maps to %d and %d", i, lo, bucketMax(i), bucketOf(lo), bucketOf(bucketMax(i)))
		}
	}
	if bucketMax(numBuckets-1) != 1<<64-1 {
		t.Errorf("last bucket ends at %d", bucketMax(numBuckets-1))
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i))
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Min() != 0 || h.Max() != 7999 {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
}

func TestBodyRoundTrip(t *testing.T) {
	e := &engine{run: "abc123", cfg: Config{BodySize: 100}}
	r := &room{jid: xmpp.MustParseJID("load-abc123-0001@muclight.localhost")}
	raw := e.appendMessage(nil, r, 41, 7, true, 1234567*time.Nanosecond)
	el, err := xmpp.ParseElement(raw)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if el.SelectAttrValue("to", "") != r.jid.String() || el.SelectAttrValue("type", "") != "groupchat" {
		t.Errorf("message %s", raw)
	}
	body := xmpp.Child(el, "body", xmpp.NSClient).Text()
	if len(body) < 100 {
		t.Errorf("body of %d bytes, want at least 100", len(body))
	}
	st, ok := e.parseBody(body)
	if !ok || st != (stamp{measured: true, sender: 41, at: 1234567}) {
		t.Errorf("parsed %+v %v from %q", st, ok, body)
	}
	if s, ok := e.senderOfID(el.SelectAttrValue("id", "")); !ok || s != 41 {
		t.Errorf("sender of id %q: %d %v", el.SelectAttrValue("id", ""), s, ok)
	}
	for _, b := range []string{"", "hello", "xmppload other1 m 1 2 3", "xmppload abc123 x 1 2 3", "xmppload abc123 m 1 2", "xmppload abc123 w one 2 3"} {
		if _, ok := e.parseBody(b); ok {
			t.Errorf("%q parsed as this run's body", b)
		}
	}
	if st, ok := e.parseBody("xmppload abc123 w 3 9 77"); !ok || st.measured || st.sender != 3 || st.at != 77 {
		t.Errorf("warm-up body: %+v %v", st, ok)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		url    string
		remote bool
		ok     bool
	}{
		{"ws://127.0.0.1:5280/xmpp-websocket", false, true},
		{"ws://127.8.9.10:5280/x", false, true},
		{"ws://localhost:5280/x", false, true},
		{"wss://LOCALHOST/x", false, true},
		{"ws://[::1]:5280/x", false, true},
		{"ws://192.168.1.10:5280/x", false, false},
		{"ws://example.com/x", false, false},
		{"ws://localhost.example.com/x", false, false},
		{"ws://[::ffff:10.0.0.1]/x", false, false},
		{"ws://example.com/x", true, true},
		{"http://127.0.0.1:5280/x", false, false},
		{"127.0.0.1:5280", false, false},
	} {
		cfg := DefaultConfig()
		cfg.URL, cfg.AllowRemote = tc.url, tc.remote
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s (allow-remote %v): %v", tc.url, tc.remote, err)
		}
	}
	cfg := DefaultConfig()
	cfg.MetricsURL = "http://10.1.2.3:5280/metrics"
	if err := cfg.Validate(); !errors.Is(err, ErrRemote) {
		t.Errorf("remote metrics URL: %v", err)
	}
}

func TestConfigRejected(t *testing.T) {
	for name, f := range map[string]func(*Config){
		"users":        func(c *Config) { c.Users = 0 },
		"too many":     func(c *Config) { c.Users = MaxUsers + 1 },
		"room-size":    func(c *Config) { c.RoomSize = c.Users + 1 },
		"mode":         func(c *Config) { c.Mode = "irc" },
		"duration":     func(c *Config) { c.Duration = 0 },
		"window":       func(c *Config) { c.Window = 0 },
		"rate":         func(c *Config) { c.Rate = -1 },
		"admin-socket": func(c *Config) { c.CreateUsers = true },
		"user-prefix":  func(c *Config) { c.UserPrefix = "a@b" },
	} {
		cfg := DefaultConfig()
		f(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Run(context.Background(), Config{}, nil); err == nil {
		t.Error("Run accepted the zero Config")
	}
}

// TestRunWithoutServer checks that a run against nothing fails with the
// reason and leaves no goroutine behind.
func TestRunWithoutServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := DefaultConfig()
	cfg.URL = "ws://" + addr + "/xmpp-websocket"
	cfg.Users, cfg.Rooms, cfg.RoomSize = 3, 1, 3
	sum, err := Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "no session") || sum.SessionsFailed != 3 {
		t.Fatalf("err %v, summary %+v", err, sum)
	}
}

func TestCreateUsersThroughAdminSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("no unix sockets: %v", err)
	}
	var (
		mu   sync.Mutex
		seen []string
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var req adminRequest
			json.NewDecoder(c).Decode(&req)
			mu.Lock()
			seen = append(seen, req.Cmd+" "+req.JID+" "+req.Password)
			mu.Unlock()
			resp := adminResponse{OK: true}
			if strings.HasSuffix(req.JID, "2@localhost") {
				resp = adminResponse{Error: "account: user already exists"}
			}
			json.NewEncoder(c).Encode(resp)
			c.Close()
		}
	})
	defer func() { ln.Close(); wg.Wait() }()

	e := &engine{cfg: DefaultConfig()}
	e.cfg.Users, e.cfg.AdminSocket, e.cfg.Password = 3, sock, "pw"
	if err := e.createUsers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.sum.UsersCreated != 2 || e.sum.UsersExisting != 1 {
		t.Errorf("created %d, existing %d", e.sum.UsersCreated, e.sum.UsersExisting)
	}
	mu.Lock()
	slices.Sort(seen)
	want := []string{"user_add load0001@localhost pw", "user_add load0002@localhost pw", "user_add load0003@localhost pw"}
	if !slices.Equal(seen, want) {
		t.Errorf("requests %q", seen)
	}
	mu.Unlock()

	e.cfg.AdminSocket = filepath.Join(t.TempDir(), "none.sock")
	if err := e.createUsers(context.Background()); err == nil {
		t.Error("no error without a server on the socket")
	}
}

func TestResourceReadings(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err == nil {
		rss, peak, err := procRSS(os.Getpid())
		if err != nil || rss <= 0 || peak < rss {
			t.Errorf("own RSS %d peak %d: %v", rss, peak, err)
		}
		if d, err := procCPU(os.Getpid()); err != nil || d < 0 {
			t.Errorf("own CPU %v: %v", d, err)
		}
		c := newCPUSampler(os.Getpid())
		a := c.sample()
		end := time.Now().Add(50 * time.Millisecond)
		for time.Now().Before(end) {
		}
		b := c.sample()
		c.Close()
		if c.err != nil || !a.serverOK || !b.serverOK || !a.toolOK || b.tool <= a.tool {
			t.Errorf("sampling own CPU: %+v %+v %v", a, b, c.err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "# HELP process_resident_memory_bytes_other x\nprocess_resident_memory_bytes_other 1\n"+
			"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.2345678e+07\n")
	}))
	defer srv.Close()
	if v, err := metricsRSS(context.Background(), srv.URL); err != nil || v != 12345678 {
		t.Errorf("metrics RSS %d: %v", v, err)
	}
}

func TestSummaryRendering(t *testing.T) {
	s := Summary{Mode: "muclight", Sent: 10, Expected: 40, Delivered: 38,
		StanzaErrors: map[string]int{"message/policy-violation": 2}, SessionFailures: map[string]int{"SASL not-authorized": 1}, SessionsFailed: 1}
	var b bytes.Buffer
	s.WriteText(&b)
	for _, want := range []string{"2 lost, 5.000%", "message/policy-violation ×2", "SASL not-authorized ×1", "errors                   2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	s.WriteJSON(&b)
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["deliveries"] != 38.0 || back["expected_deliveries"] != 40.0 {
		t.Errorf("JSON %s: %v", b.String(), err)
	}
	if s.Lossless() || s.Errors() != 2 {
		t.Errorf("lossless %v errors %d", s.Lossless(), s.Errors())
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/e2e/load"
)

// runLoad starts the whole server, runs the load tool against it with
// users created through the admin socket, shuts the server down and checks
// that neither left a goroutine behind. With interrupt, the run is
// cancelled as Ctrl-C does, as soon as its traffic has started.
func runLoad(t *testing.T, cfg Config, mode string, interrupt bool) load.Summary {
	t.Helper()
	return runLoadWith(t, cfg, mode, interrupt, nil)
}

// runLoadWith is runLoad with a last say over the tool's configuration.
func runLoadWith(t *testing.T, cfg Config, mode string, interrupt bool, adjust func(*load.Config)) load.Summary {
	t.Helper()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())

	lc := load.DefaultConfig()
	lc.URL = "ws://" + a.Addr() + cfg.WebSocket.Path
	lc.Mode = mode
	lc.CreateUsers = true
	lc.AdminSocket = filepath.Join(cfg.Storage.DataDir, AdminSocketName)
	lc.Users, lc.Rooms, lc.RoomSize = 12, 3, 4
	lc.Messages = 200
	lc.Duration = time.Minute // the message cap ends the run long before
	lc.Drain = 30 * time.Second
	lc.Concurrency = 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	progress := &progressLog{}
	if interrupt {
		lc.Messages = 0
		progress.onTraffic = cancel
	}
	if adjust != nil {
		adjust(&lc)
	}
	sum, err := load.Run(ctx, lc, progress)
	if err != nil {
		t.Fatalf("load run: %v\nprogress:\n%s", err, progress.String())
	}
	var text strings.Builder
	sum.WriteText(&text)
	t.Logf("summary:\n%s", text.String())
	checkNotShaped(t, cfg, scrape(t, a))
	return sum
}

// checkNotShaped: with the default [websocket.shaper] this workload (about
// 17 messages per user) stays inside every session's burst, so the shaper
// must not have delayed anything; a workload that needs more per session
// sets cfg.WebSocket.Shaper explicitly.
func checkNotShaped(t *testing.T, cfg Config, metrics string) {
	t.Helper()
	if cfg.WebSocket.Shaper != defaultConfig().WebSocket.Shaper {
		return
	}
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "xmpp_shaper_delays_total{") && !strings.HasSuffix(line, " 0") {
			t.Errorf("the default shaper paced the smoke workload: %s", line)
		}
	}
}

// progressLog keeps the tool's progress lines for failure messages and
// calls onTraffic once the traffic phase has begun.
type progressLog struct {
	mu        sync.Mutex
	b         strings.Builder
	onTraffic func()
}

func (p *progressLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.onTraffic != nil && strings.HasPrefix(string(b), "xmppload: traffic:") {
		p.onTraffic()
		p.onTraffic = nil
	}
	return p.b.Write(b)
}

func (p *progressLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.String()
}

// checkLossless asserts what a clean run of 12 users in 3 rooms of 4 must
// show: every session up and closed with <close/>, every message delivered
// to each of its room's 4 occupants, no error of any kind.
func checkLossless(t *testing.T, sum load.Summary) {
	t.Helper()
	if sum.SessionsEstablished != 12 || sum.SessionsFailed != 0 {
		t.Errorf("sessions: %d established, %d failed %v", sum.SessionsEstablished, sum.SessionsFailed, sum.SessionFailures)
	}
	if sum.RoomsReady != 3 || sum.Occupants != 12 {
		t.Errorf("rooms: %d ready with %d occupants, want 3 with 12 (%v)", sum.RoomsReady, sum.Occupants, sum.RoomFailures)
	}
	if sum.Stopped != "messages" || sum.Sent != 200 {
		t.Errorf("stopped by %s after %d messages, want the cap of 200", sum.Stopped, sum.Sent)
	}
	if sum.Expected != sum.Sent*4 || sum.Delivered != sum.Expected {
		t.Errorf("deliveries %d, expected %d, sent %d × 4 occupants = %d", sum.Delivered, sum.Expected, sum.Sent, sum.Sent*4)
	}
	if sum.Latency.Count != sum.Delivered {
		t.Errorf("latency samples %d, deliveries %d", sum.Latency.Count, sum.Delivered)
	}
	if n := sum.Errors(); n != 0 || len(sum.Warnings) > 0 {
		t.Errorf("errors %d: stanza %v, stream %v, other %v; warnings %v", n, sum.StanzaErrors, sum.StreamErrors, sum.OtherErrors, sum.Warnings)
	}
	if sum.InFlightAtEnd != 0 {
		t.Errorf("%d messages still in flight at the end", sum.InFlightAtEnd)
	}
	if sum.SessionsClosed != 12 {
		t.Errorf("%d sessions closed with <close/>, want 12", sum.SessionsClosed)
	}
}

func TestLoadMucLight(t *testing.T) {
	sum := runLoad(t, testConfig(t), load.ModeMucLight, false)
	checkLossless(t, sum)
	if sum.Service != "muclight.localhost" {
		t.Errorf("service %q, want the discovered muclight.localhost", sum.Service)
	}
	if sum.UsersCreated != 12 {
		t.Errorf("%d users created through the admin socket, want 12", sum.UsersCreated)
	}
}

// TestLoadLegacyMUC runs the XEP-0045 workload against legacy mode; it
// skips for as long as the server refuses legacy_mode at start.
func TestLoadLegacyMUC(t *testing.T) {
	cfg := testConfig(t)
	cfg.Modules.MucLight.LegacyMode = true
	if err := cfg.validate(); err != nil {
		t.Skipf("legacy mode not implemented: %v", err)
	}
	sum := runLoad(t, cfg, load.ModeMUC, false)
	checkLossless(t, sum)
	if sum.Service != "muclight.localhost" {
		t.Errorf("service %q, want the discovered muclight.localhost", sum.Service)
	}
}

// TestLoadMUCBothDialects runs the XEP-0045 workload against the default
// configuration, where both dialects are served on the same rooms: the
// load tool's XEP-0045 clients create rooms by joining and talk, every
// delivery arrives.
func TestLoadMUCBothDialects(t *testing.T) {
	cfg := testConfig(t)
	if cfg.Modules.MucLight.LegacyMode {
		t.Fatal("the test configuration must serve both dialects")
	}
	sum := runLoad(t, cfg, load.ModeMUC, false)
	checkLossless(t, sum)
}

// TestLoadSpreadsOverURLs gives the tool two endpoints, the first of them
// dead: users start round-robin, those whose endpoint is down log in at the
// next one, and the run is lossless.
func TestLoadSpreadsOverURLs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String() + "/xmpp-websocket"
	ln.Close() // nothing listens there now
	sum := runLoadWith(t, testConfig(t), load.ModeMucLight, false, func(lc *load.Config) {
		lc.URL = dead + "," + lc.URL
	})
	checkLossless(t, sum)
}

// TestLoadInterrupted cancels a run (what Ctrl-C does in the command) once
// its traffic has started: the summary still comes back, sending stopped,
// the rooms are destroyed and every session is closed with <close/>.
func TestLoadInterrupted(t *testing.T) {
	sum := runLoad(t, testConfig(t), load.ModeMucLight, true)
	if sum.Stopped != "interrupted" {
		t.Errorf("stopped by %q, want interrupted", sum.Stopped)
	}
	if sum.SessionsClosed != 12 || sum.RoomsReady != 3 {
		t.Errorf("%d sessions closed, %d rooms ready; want 12 and 3", sum.SessionsClosed, sum.RoomsReady)
	}
	if n := sum.Errors(); n != 0 || sum.Delivered > sum.Expected {
		t.Errorf("errors %d (other %v), deliveries %d of %d expected", n, sum.OtherErrors, sum.Delivered, sum.Expected)
	}
}

// TestLoadBurst is the burst workload at small scale: every sender sends its
// quota at once (a window as large as the quota) and every delivery arrives.
func TestLoadBurst(t *testing.T) {
	sum := runLoadWith(t, testConfig(t), load.ModeMucLight, false, func(lc *load.Config) {
		lc.Messages, lc.PerSender, lc.Window = 0, 5, 5
	})
	if sum.Stopped != "per-sender" || sum.Sent != 12*5 {
		t.Errorf("stopped by %s after %d messages, want per-sender after 60", sum.Stopped, sum.Sent)
	}
	if sum.Delivered != sum.Sent*4 || sum.Errors() != 0 {
		t.Errorf("deliveries %d of %d, errors %d (%v %v)", sum.Delivered, sum.Sent*4, sum.Errors(), sum.StanzaErrors, sum.StreamErrors)
	}
}

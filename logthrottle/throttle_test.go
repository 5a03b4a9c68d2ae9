package logthrottle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestThrottleOneLinePerKeyPerInterval: the first event of a key passes,
// the rest of its interval is counted, and the next line carries the count;
// keys do not share an interval.
func TestThrottleOneLinePerKeyPerInterval(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := New(10*time.Second, 0, clk.now)
	steps := []struct {
		advance time.Duration
		key     string
		count   int
		ok      bool
	}{
		{0, "a", 1, true},
		{time.Second, "a", 0, false},
		{time.Second, "a", 0, false},
		{0, "b", 1, true}, // another key is not throttled by a's interval
		{7 * time.Second, "a", 0, false},
		{time.Second, "a", 4, true}, // 10 s after a's line: this event and the three suppressed
		{time.Second, "b", 0, false},
		{20 * time.Second, "b", 2, true},
		{20 * time.Second, "a", 1, true}, // nothing suppressed: a fresh line
	}
	for i, s := range steps {
		clk.advance(s.advance)
		n, ok := th.Allow(s.key)
		if n != s.count || ok != s.ok {
			t.Errorf("step %d (%s): Allow = %d, %v; want %d, %v", i, s.key, n, ok, s.count, s.ok)
		}
	}
}

// TestThrottleBoundedKeys: no more than maxKeys keys are tracked; a new key
// evicts the one logged longest ago, and quiet keys are forgotten.
func TestThrottleBoundedKeys(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := New(time.Minute, 3, clk.now)
	for i := range 10 {
		th.Allow(fmt.Sprint("k", i))
		th.Allow(fmt.Sprint("k", i)) // suppressed, so the key cannot be pruned
		if th.Len() > 3 {
			t.Fatalf("after %d keys: %d tracked, cap 3", i+1, th.Len())
		}
	}
	// k9 is still tracked (throttled); k0 was evicted (logs at once).
	if _, ok := th.Allow("k9"); ok {
		t.Error("k9, tracked, was let through within its interval")
	}
	if n, ok := th.Allow("k0"); !ok || n != 1 {
		t.Errorf("k0, evicted: Allow = %d, %v; want 1, true", n, ok)
	}
	clk.advance(2 * time.Minute)
	for _, k := range []string{"k0", "k7", "k8", "k9"} {
		th.Allow(k) // lines with their counts; then nothing is pending
	}
	clk.advance(2 * time.Minute)
	th.Allow("new")
	if th.Len() != 1 {
		t.Errorf("after a quiet interval %d keys are tracked, want 1 (the new one)", th.Len())
	}
}

// TestThrottleLog: Log writes the message with its attributes and the count,
// and nothing while throttled.
func TestThrottleLog(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := New(10*time.Second, 0, clk.now)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	for range 4 {
		th.Log(log, slog.LevelInfo, "alice", "limited", "user", "alice")
	}
	clk.advance(10 * time.Second)
	th.Log(log, slog.LevelInfo, "alice", "limited", "user", "alice")
	th.Log(log, slog.LevelDebug, "bob", "limited", "user", "bob") // below the handler's level
	var counts []float64
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line["msg"] != "limited" || line["user"] != "alice" {
			t.Errorf("unexpected line %v", line)
		}
		counts = append(counts, line["count"].(float64))
	}
	if fmt.Sprint(counts) != "[1 4]" {
		t.Errorf("counts %v, want [1 4]", counts)
	}
}

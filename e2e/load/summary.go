package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Summary is what a run measured. Counts of messages, deliveries and the
// latency cover the measured period only (after Warmup); the JSON names are
// stable for scripts.
type Summary struct {
	Mode    string `json:"mode"`
	URL     string `json:"url"`
	Service string `json:"service"`
	// Stopped says what ended the sending: "duration", "messages" (the cap),
	// "per-sender" (every sender sent its quota), "interrupted", or "not
	// started" when setup failed.
	Stopped string `json:"stopped"`

	Users         int `json:"users"`
	UsersCreated  int `json:"users_created"`
	UsersExisting int `json:"users_existing"`
	// SessionsEstablished logged in and bound; SessionsFailed did not, for
	// the reasons counted in SessionFailures.
	SessionsEstablished int            `json:"sessions_established"`
	SessionsFailed      int            `json:"sessions_failed"`
	SessionFailures     map[string]int `json:"session_failures,omitempty"`
	// SessionsClosed ended the RFC 7395 way at the end: <close/> answered by
	// the server's <close/> and WebSocket status 1000.
	SessionsClosed int `json:"sessions_closed"`

	// LoginSeconds and RoomSetupSeconds time the setup phases: opening
	// and authenticating every session, and creating (or joining) every room.
	LoginSeconds     float64 `json:"login_seconds"`
	RoomSetupSeconds float64 `json:"room_setup_seconds"`

	Rooms        int            `json:"rooms"`
	RoomsReady   int            `json:"rooms_ready"`
	RoomFailures map[string]int `json:"room_failures,omitempty"`
	// Occupants is the sum over ready rooms of their online occupants.
	Occupants int `json:"occupants"`

	WarmupSeconds   float64 `json:"warmup_seconds"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	WarmupSent      uint64  `json:"warmup_sent"`
	Sent            uint64  `json:"sent"`
	// Expected is, over every measured message, the occupants of the room
	// it was sent to: what a lossless run delivers.
	Expected  uint64 `json:"expected_deliveries"`
	Delivered uint64 `json:"deliveries"`
	// SendRate and DeliveryRate are per second of the measured period (for
	// deliveries, up to the last measured one received).
	SendRate     float64 `json:"send_rate"`
	DeliveryRate float64 `json:"delivery_rate"`
	// InFlightAtEnd were sent but not reflected back to their sender when
	// the drain ended.
	InFlightAtEnd int64 `json:"in_flight_at_end"`

	Latency LatencySummary `json:"latency_ms"`

	// StanzaErrors counts error stanzas received, by "kind/condition";
	// StreamErrors stream errors by condition; OtherErrors the rest (send
	// failures, connections that ended, unparseable frames, cleanup).
	StanzaErrors map[string]int `json:"stanza_errors,omitempty"`
	StreamErrors map[string]int `json:"stream_errors,omitempty"`
	OtherErrors  map[string]int `json:"other_errors,omitempty"`
	// Warnings are setup steps that failed without spoiling the run, such
	// as a MUC service refusing member affiliations for an open room.
	Warnings map[string]int `json:"warnings,omitempty"`

	// Server and tool resources, when available: RSS from /proc/PID/status
	// (VmRSS, and VmHWM as the peak) and from the server's /metrics, CPU as
	// a percentage of one core over the measured period.
	ServerRSSBytes        int64    `json:"server_rss_bytes,omitempty"`
	ServerPeakRSSBytes    int64    `json:"server_peak_rss_bytes,omitempty"`
	ServerMetricsRSSBytes int64    `json:"server_metrics_rss_bytes,omitempty"`
	ServerCPUPercent      float64  `json:"server_cpu_percent,omitempty"`
	ToolCPUPercent        float64  `json:"tool_cpu_percent,omitempty"`
	ResourceNotes         []string `json:"resource_notes,omitempty"`
}

// LatencySummary is the end-to-end latency of measured deliveries, from the
// sender's write to the receiver's parse, in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func latencyOf(h *Histogram) LatencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return LatencySummary{
		Count: h.Count(), Min: ms(h.Min()), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
	}
}

// Errors is the number of errors of every kind: stanza, stream and other.
// A clean run has none.
func (s *Summary) Errors() int {
	n := 0
	for _, m := range []map[string]int{s.StanzaErrors, s.StreamErrors, s.OtherErrors} {
		for _, v := range m {
			n += v
		}
	}
	return n
}

// Lossless reports whether every expected delivery arrived, no more, and
// something was sent.
func (s *Summary) Lossless() bool {
	return s.Sent > 0 && s.Delivered == s.Expected
}

// WriteJSON writes s as one indented JSON object.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes s as an aligned two-column table.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("mode", "%s (service %s)", s.Mode, s.Service)
	row("target", "%s", s.URL)
	row("stopped by", "%s", s.Stopped)
	if s.UsersCreated+s.UsersExisting > 0 {
		row("users created", "%d (%d existed)", s.UsersCreated, s.UsersExisting)
	}
	row("sessions established", "%d of %d%s", s.SessionsEstablished, s.Users, rate(s.SessionsEstablished, s.LoginSeconds, "sessions"))
	row("sessions failed", "%d%s", s.SessionsFailed, tally(s.SessionFailures))
	row("sessions closed cleanly", "%d", s.SessionsClosed)
	row("rooms ready", "%d of %d%s%s", s.RoomsReady, s.Rooms, rate(s.RoomsReady, s.RoomSetupSeconds, "rooms"), tally(s.RoomFailures))
	row("room occupants", "%d", s.Occupants)
	if s.WarmupSeconds > 0 {
		row("warm-up", "%.3f s, %d messages", s.WarmupSeconds, s.WarmupSent)
	}
	row("measured", "%.3f s", s.MeasuredSeconds)
	row("messages sent", "%d (%.0f/s)", s.Sent, s.SendRate)
	row("deliveries expected", "%d", s.Expected)
	lost := ""
	switch {
	case s.Delivered < s.Expected:
		lost = fmt.Sprintf(" (%d lost, %.3f%%)", s.Expected-s.Delivered, 100*float64(s.Expected-s.Delivered)/float64(s.Expected))
	case s.Delivered > s.Expected:
		lost = fmt.Sprintf(" (%d more than expected)", s.Delivered-s.Expected)
	case s.Sent > 0:
		lost = " (lossless)"
	}
	row("deliveries received", "%d%s", s.Delivered, lost)
	row("deliveries/s", "%.0f", s.DeliveryRate)
	row("in flight at end", "%d", s.InFlightAtEnd)
	l := s.Latency
	row("latency ms", "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (min %.3f, mean %.3f, n %d)",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Min, l.Mean, l.Count)
	row("errors", "%d", s.Errors())
	for _, e := range []struct {
		name string
		m    map[string]int
	}{{"  stanza errors", s.StanzaErrors}, {"  stream errors", s.StreamErrors}, {"  other errors", s.OtherErrors}, {"warnings", s.Warnings}} {
		if len(e.m) > 0 {
			row(e.name, "%s", strings.TrimPrefix(tally(e.m), ": "))
		}
	}
	if s.ServerRSSBytes > 0 {
		row("server RSS", "%s (peak %s)", mib(s.ServerRSSBytes), mib(s.ServerPeakRSSBytes))
	}
	if s.ServerMetricsRSSBytes > 0 {
		row("server RSS (/metrics)", "%s", mib(s.ServerMetricsRSSBytes))
	}
	switch {
	case s.ServerCPUPercent > 0:
		row("CPU (% of one core)", "server %.0f%%, load tool %.0f%%", s.ServerCPUPercent, s.ToolCPUPercent)
	case s.ToolCPUPercent > 0:
		row("CPU (% of one core)", "load tool %.0f%% (server: give -server-pid)", s.ToolCPUPercent)
	}
	for _, n := range s.ResourceNotes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// tally renders counts by reason as ": reason ×n, ..." (empty when none),
// most frequent first.
func tally(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return ": " + strings.Join(parts, ", ")
}

// maxReasons bounds the distinct reasons a counter keeps.
const maxReasons = 64

// counter counts occurrences by reason from many goroutines. Reasons are
// short classes (a condition, not a full error text) so the map stays small.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(reason string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	if _, ok := c.m[reason]; !ok && len(c.m) >= maxReasons {
		reason = "(other reasons)"
	}
	c.m[reason]++
	c.mu.Unlock()
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	return maps.Clone(c.m)
}

// rate renders " (in 1.234 s, 81/s rooms)" for a timed setup phase.
func rate(n int, seconds float64, what string) string {
	if seconds <= 0 || n == 0 {
		return ""
	}
	return fmt.Sprintf(" (in %.3f s, %.0f %s/s)", seconds, float64(n)/seconds, what)
}

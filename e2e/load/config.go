package load

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Modes of room setup: MUC Light's #create, or XEP-0045 join-to-create.
const (
	ModeMucLight = "muclight"
	ModeMUC      = "muc"
)

// Config is one load run. DefaultConfig fills every field; Validate checks
// it once before anything is sent.
type Config struct {
	// URL is the RFC 7395 endpoint, ws:// or wss://; several endpoints
	// (the nodes of a cluster) separated by commas spread the users over
	// them round-robin, and a login that fails at its endpoint tries the
	// next ones.
	URL string
	// Domain is the served domain the users live in.
	Domain string
	// Users is the number of sessions; user i (1-based) is
	// UserPrefix + i as four or more digits, e.g. load0001@Domain.
	Users      int
	UserPrefix string
	Password   string
	// CreateUsers adds the users through the running server's admin socket
	// (AdminSocket, <data_dir>/admin.sock) before logging in; an account that
	// already exists is kept as it is.
	CreateUsers bool
	AdminSocket string

	// Rooms rooms of RoomSize occupants each; room r holds users
	// r*RoomSize .. r*RoomSize+RoomSize-1 modulo Users, so users are in
	// several rooms when Rooms*RoomSize > Users.
	Rooms    int
	RoomSize int
	// Mode is ModeMucLight or ModeMUC.
	Mode string
	// Service is the room service's domain; empty: discovered with
	// disco#items and disco#info, falling back to muclight.<Domain> or
	// conference.<Domain>.
	Service string
	// KeepRooms leaves the rooms in place at the end instead of destroying
	// them.
	KeepRooms bool

	// Rate is the total of messages per second over all senders; 0 sends as
	// fast as Window allows.
	Rate float64
	// Window bounds each sender's messages not yet reflected back to it by
	// the room, so at full speed about senders × Window messages are in
	// flight and the latency is mostly queueing (Little's law). It does not
	// bound what waits for a slow receiver: the server paces the senders of
	// a receiver more than three quarters of websocket.max_pending behind,
	// and closes a receiver that stops reading for websocket.write_timeout
	// or falls max_pending behind.
	Window int
	// Messages caps the measured messages (0: no cap); Duration always does.
	Messages int
	// PerSender caps each sender's measured messages (0: no cap); with a
	// Window at least as large, every sender sends them all at once: the
	// burst workload ("1,000 users, 5 messages each, at once").
	PerSender int
	// Warmup is sent before the measured Duration and left out of every
	// figure but the warm-up count.
	Warmup   time.Duration
	Duration time.Duration
	// Drain is how long to wait after the last send for deliveries still on
	// their way; the wait also ends when none has arrived for 5 s.
	Drain time.Duration
	// BodySize pads each body to at least this many bytes.
	BodySize int
	// Concurrency bounds logins, user creations and room setups in flight.
	Concurrency int

	// ServerPID, when set, is read for its RSS and CPU time (Linux /proc).
	ServerPID int
	// MetricsURL, when set, is scraped for process_resident_memory_bytes.
	MetricsURL string

	// AllowRemote permits a URL (and MetricsURL) whose host is not a
	// loopback address or localhost.
	AllowRemote bool
}

// MaxUsers bounds Users so a typo cannot open a million connections.
const MaxUsers = 100_000

// DefaultConfig is the configuration the command starts from.
func DefaultConfig() Config {
	return Config{
		URL:         "ws://127.0.0.1:5280/xmpp-websocket",
		Domain:      "localhost",
		Users:       100,
		UserPrefix:  "load",
		Password:    "load",
		Rooms:       10,
		RoomSize:    10,
		Mode:        ModeMucLight,
		Window:      10,
		Duration:    30 * time.Second,
		Drain:       10 * time.Second,
		Concurrency: 64,
	}
}

// URLs are the endpoints of URL, in order.
func (c *Config) URLs() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// ErrRemote is returned by Validate for a non-loopback target without
// AllowRemote.
var ErrRemote = errors.New("load: refusing a non-loopback target (use -allow-remote only against a server you are allowed to load)")

// Validate checks c and names the offending setting.
func (c *Config) Validate() error {
	if len(c.URLs()) == 0 {
		return errors.New("load: url: at least one endpoint")
	}
	for _, u := range c.URLs() {
		if err := checkTarget("url", u, c.AllowRemote, "ws", "wss"); err != nil {
			return err
		}
	}
	if c.MetricsURL != "" {
		if err := checkTarget("metrics-url", c.MetricsURL, c.AllowRemote, "http", "https"); err != nil {
			return err
		}
	}
	switch {
	case c.Domain == "" || strings.ContainsAny(c.Domain, "@/ "):
		return fmt.Errorf("load: domain %q is not a domain name", c.Domain)
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("load: users must be 1..%d", MaxUsers)
	case c.UserPrefix == "" || strings.ContainsAny(c.UserPrefix, "@/ \"&'<>:"):
		return fmt.Errorf("load: user-prefix %q cannot start a JID localpart", c.UserPrefix)
	case c.Password == "":
		return errors.New("load: password must not be empty")
	case c.CreateUsers && c.AdminSocket == "":
		return errors.New("load: create-users needs admin-socket (<data_dir>/admin.sock of the running server)")
	case c.Rooms < 1:
		return errors.New("load: rooms must be at least 1")
	case c.RoomSize < 1 || c.RoomSize > c.Users:
		return fmt.Errorf("load: room-size must be 1..users (%d)", c.Users)
	case c.Mode != ModeMucLight && c.Mode != ModeMUC:
		return fmt.Errorf("load: mode %q is not %q or %q", c.Mode, ModeMucLight, ModeMUC)
	case strings.ContainsAny(c.Service, "@/ "):
		return fmt.Errorf("load: service %q is not a domain name", c.Service)
	case c.Rate < 0:
		return errors.New("load: rate must not be negative")
	case c.Window < 1:
		return errors.New("load: window must be at least 1")
	case c.Messages < 0:
		return errors.New("load: messages must not be negative")
	case c.PerSender < 0:
		return errors.New("load: per-sender must not be negative")
	case c.Duration <= 0:
		return errors.New("load: duration must be positive (the run is always bounded in time)")
	case c.Warmup < 0 || c.Drain < 0:
		return errors.New("load: warmup and drain must not be negative")
	case c.BodySize < 0 || c.BodySize > 60_000:
		return errors.New("load: body-size must be 0..60000")
	case c.Concurrency < 1:
		return errors.New("load: concurrency must be at least 1")
	case c.ServerPID < 0:
		return errors.New("load: server-pid must not be negative")
	}
	return nil
}

// checkTarget refuses a URL of another scheme, and one whose host is not
// loopback unless remote is allowed: this tool is meant for the developer's
// own machine, and load against anything else needs its owner's consent.
func checkTarget(name, raw string, remote bool, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("load: %s: %w", name, err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok || u.Host == "" {
		return fmt.Errorf("load: %s %q: want %s://host[:port]/path", name, raw, strings.Join(schemes, " or "))
	}
	if !remote && !IsLoopback(u.Hostname()) {
		return fmt.Errorf("%w: %s host %q", ErrRemote, name, u.Hostname())
	}
	return nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP address
// (127.0.0.0/8, ::1). Names are not resolved: a name that happens to point
// at 127.0.0.1 today may not tomorrow.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// userLocal is user i's localpart, i from 0.
func (c *Config) userLocal(i int) string {
	return fmt.Sprintf("%s%04d", c.UserPrefix, i+1)
}

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// Config is the whole server configuration, decoded from one TOML file.
// Defaults live in defaultConfig and nowhere else; validate runs once at
// start and names the offending key in every error.
type Config struct {
	General   GeneralConfig   `toml:"general"`
	HTTP      HTTPConfig      `toml:"http"`
	WebSocket WebSocketConfig `toml:"websocket"`
	Storage   StorageConfig   `toml:"storage"`
	Modules   ModulesConfig   `toml:"modules"`
	Cluster   ClusterConfig   `toml:"cluster"`
	API       APIConfig       `toml:"api"`
	Auth      AuthConfig      `toml:"auth"`
	Push      PushConfig      `toml:"push"`

	// rooms and limits are the modules' sections converted by validate.
	rooms  rooms.Options
	limits rooms.Limits
	// tokens is [auth.jwt] as the endpoint uses it (apiconfig.go).
	tokens ws.TokenAuth
}

// GeneralConfig holds the served domains and process-wide settings.
type GeneralConfig struct {
	Hosts    []string `toml:"hosts"`
	LogLevel string   `toml:"log_level"`
	// LogFormat is "text" (slog's key=value) or "json" (one object a line).
	LogFormat string `toml:"log_format"`
	// ShutdownTimeout bounds a graceful stop: sessions that have not
	// closed by then are cut.
	ShutdownTimeout duration `toml:"shutdown_timeout"`
}

// HTTPConfig is the one HTTP listener (WebSocket, host-meta, web UI, metrics).
type HTTPConfig struct {
	Address string `toml:"address"`
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// MetricsAddress moves /metrics to a listener of its own when set.
	MetricsAddress string `toml:"metrics_address"`
	// PublicURL is the WebSocket URL that host-meta announces; empty derives
	// it from the request.
	PublicURL string `toml:"public_url"`
	// AlternateURLs are the other nodes' WebSocket URLs, announced by
	// host-meta after this node's own, so that the web client can fail over
	// when there is no load balancer to do it.
	AlternateURLs []string `toml:"alternate_urls"`
	// Pprof serves net/http/pprof under /debug/pprof/ next to /metrics, for
	// profiling a running server; keep it on a private metrics_address.
	Pprof bool `toml:"pprof"`
	// ReadHeaderTimeout, ReadTimeout, IdleTimeout and MaxHeaderBytes bound
	// what a connection may hold before it is a WebSocket session (headers
	// trickled in, a keep-alive connection left open), so that sockets that
	// never send a request cannot pile up; see net/http.Server.
	ReadHeaderTimeout duration `toml:"read_header_timeout"`
	ReadTimeout       duration `toml:"read_timeout"`
	IdleTimeout       duration `toml:"idle_timeout"`
	MaxHeaderBytes    int      `toml:"max_header_bytes"`
}

// WebSocketConfig tunes the RFC 7395 endpoint.
type WebSocketConfig struct {
	Path                 string   `toml:"path"`
	MaxStanzaSize        int      `toml:"max_stanza_size"`
	AuthTimeout          duration `toml:"auth_timeout"`
	IdleTimeout          duration `toml:"idle_timeout"`
	PingTimeout          duration `toml:"ping_timeout"`
	WriteTimeout         duration `toml:"write_timeout"`
	MaxPending           int      `toml:"max_pending"`
	StallTimeout         duration `toml:"stall_timeout"`
	MaxAuthFailures      int      `toml:"max_auth_failures"`
	AllowPlainWithoutTLS bool     `toml:"allow_plain_without_tls"`
	AllowedOrigins       []string `toml:"allowed_origins"`
	// The caps and the shaper; ws.Config says what each one does.
	MaxUnauthenticated           int          `toml:"max_unauthenticated"`
	MaxUnauthenticatedPerAddress int          `toml:"max_unauthenticated_per_address"`
	MaxSessionsPerAccount        int          `toml:"max_sessions_per_account"`
	Shaper                       ShaperConfig `toml:"shaper"`
	// FAST token logins (XEP-0484) inside SASL2; ws.Config.FAST says more.
	FAST          bool     `toml:"fast"`
	FASTTokenTTL  duration `toml:"fast_token_ttl"`
	FASTMaxTokens int      `toml:"fast_max_tokens"`
	// XEP-0198 stream management; ws.Config says what each one does.
	SMAckEvery      int      `toml:"sm_ack_every"`
	SMAckInterval   duration `toml:"sm_ack_interval"`
	SMMaxUnacked    int      `toml:"sm_max_unacked"`
	SMResumeTimeout duration `toml:"sm_resume_timeout"`
}

// ShaperConfig is [websocket.shaper], the per-session ingress shaper.
type ShaperConfig struct {
	StanzaRate  float64 `toml:"stanza_rate"`
	StanzaBurst int     `toml:"stanza_burst"`
	ByteRate    float64 `toml:"byte_rate"`
	ByteBurst   int     `toml:"byte_burst"`
}

// StorageConfig chooses where accounts live (and rooms, unless
// mod_muc_light.backend says otherwise) and how to reach MongoDB.
type StorageConfig struct {
	Backend string        `toml:"backend"`
	DataDir string        `toml:"data_dir"`
	MongoDB MongoDBConfig `toml:"mongodb"`
}

// MongoDBConfig is [storage.mongodb].
type MongoDBConfig struct {
	URI            string   `toml:"uri"`
	Database       string   `toml:"database"`
	PoolSize       int      `toml:"pool_size"`
	ConnectTimeout duration `toml:"connect_timeout"`
	OpTimeout      duration `toml:"op_timeout"`
}

// ClusterConfig is [cluster]: several nodes sharing MongoDB and NATS
// (docs/08_cluster.md). An empty NATSURL is one node with no NATS.
type ClusterConfig struct {
	NATSURL string `toml:"nats_url"`
	// Node names this node in NATS subjects and keys; empty: the hostname,
	// with every character NATS subjects cannot carry made a '-'.
	Node string `toml:"node"`
	// Heartbeat is how often the node renews its membership; NodeTTL how
	// long a node that stopped renewing still counts as alive, which is
	// also how long its rooms are unavailable after it crashed.
	Heartbeat duration `toml:"heartbeat"`
	NodeTTL   duration `toml:"node_ttl"`
}

// duration decodes TOML strings such as "30s" or "5m".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func defaultConfig() Config {
	return Config{
		General: GeneralConfig{Hosts: []string{"localhost"}, LogLevel: "info", LogFormat: logFormatText, ShutdownTimeout: duration{10 * time.Second}},
		HTTP: HTTPConfig{
			Address:           "127.0.0.1:5280",
			ReadHeaderTimeout: duration{10 * time.Second},
			ReadTimeout:       duration{30 * time.Second},
			IdleTimeout:       duration{120 * time.Second},
			MaxHeaderBytes:    32 << 10,
		},
		WebSocket: WebSocketConfig{
			Path:            "/xmpp-websocket",
			MaxStanzaSize:   64 << 10,
			AuthTimeout:     duration{30 * time.Second},
			IdleTimeout:     duration{90 * time.Second},
			PingTimeout:     duration{30 * time.Second},
			WriteTimeout:    duration{15 * time.Second},
			MaxPending:      16 << 20,
			StallTimeout:    duration{time.Second},
			MaxAuthFailures: 3,
			// Why these values: README, "Flow control".
			MaxUnauthenticated:           4096,
			MaxUnauthenticatedPerAddress: 128,
			MaxSessionsPerAccount:        10,
			Shaper:                       ShaperConfig{StanzaRate: 10, StanzaBurst: 100, ByteRate: 64 << 10, ByteBurst: 512 << 10},
			FAST:                         true,
			FASTTokenTTL:                 duration{14 * 24 * time.Hour},
			FASTMaxTokens:                16,
			// Why these values: README, "Stream management".
			SMAckEvery:      5,
			SMAckInterval:   duration{5 * time.Second},
			SMMaxUnacked:    0, // max_pending's
			SMResumeTimeout: duration{5 * time.Minute},
		},
		Storage: StorageConfig{Backend: "embedded", DataDir: "data", MongoDB: MongoDBConfig{
			URI:            "mongodb://127.0.0.1:27017",
			Database:       "xmppws",
			PoolSize:       100,
			ConnectTimeout: duration{10 * time.Second},
			OpTimeout:      duration{5 * time.Second},
		}},
		Modules: ModulesConfig{MucLight: defaultMucLight(), MucLimits: defaultMucLimits(), MAM: defaultMAM()},
		Cluster: ClusterConfig{Heartbeat: duration{time.Second}, NodeTTL: duration{5 * time.Second}},
		API:     defaultAPI(),
		Auth:    defaultAuth(),
		Push:    defaultPush(),
	}
}

// loadConfig reads path over the defaults; an empty path means defaults only.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := decodeConfig(string(data), &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func decodeConfig(data string, cfg *Config) error {
	md, err := toml.Decode(data, cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return errors.New(pe.ErrorWithPosition())
		}
		return err
	}
	cfg.Modules.MucLimits.present = md.IsDefined("modules", "mod_muc_limits")
	if md.IsDefined("websocket", "send_queue_len") {
		// Refused rather than ignored: it counted stanzas, its replacement
		// counts bytes, and a tuned value cannot be carried over silently.
		return errors.New("websocket.send_queue_len was removed: the send queue is bounded in bytes by websocket.max_pending (default 16777216)")
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return nil
}

func (c *Config) validate() error {
	if len(c.General.Hosts) == 0 {
		return errors.New("general.hosts: at least one domain is required")
	}
	seen := map[string]bool{}
	for i, h := range c.General.Hosts {
		j, err := xmpp.ParseJID(h)
		if err != nil || j.Local != "" || j.Resource != "" {
			return fmt.Errorf("general.hosts: %q is not a domain name", h)
		}
		if seen[j.Domain] {
			return fmt.Errorf("general.hosts: %q is listed twice", h)
		}
		seen[j.Domain] = true
		c.General.Hosts[i] = j.Domain
	}
	if _, err := parseLevel(c.General.LogLevel); err != nil {
		return fmt.Errorf("general.log_level: %w", err)
	}
	if err := validLogFormat(c.General.LogFormat); err != nil {
		return fmt.Errorf("general.log_format: %w", err)
	}
	if c.General.ShutdownTimeout.Duration <= 0 {
		return errors.New("general.shutdown_timeout: must be positive")
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Address); err != nil {
		return fmt.Errorf("http.address: %w", err)
	}
	if c.HTTP.MetricsAddress != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.MetricsAddress); err != nil {
			return fmt.Errorf("http.metrics_address: %w", err)
		}
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return errors.New("http.tls_cert and http.tls_key: set both or neither")
	}
	if err := validateAlternateURLs(c.HTTP.AlternateURLs); err != nil {
		return err
	}
	switch h := c.HTTP; {
	case h.ReadHeaderTimeout.Duration <= 0:
		return errors.New("http.read_header_timeout: must be positive")
	case h.ReadTimeout.Duration <= 0:
		return errors.New("http.read_timeout: must be positive")
	case h.IdleTimeout.Duration <= 0:
		return errors.New("http.idle_timeout: must be positive")
	case h.MaxHeaderBytes < 4096:
		return errors.New("http.max_header_bytes: must be at least 4096")
	}
	w := &c.WebSocket
	if err := w.validateCaps(); err != nil {
		return err
	}
	switch {
	case !strings.HasPrefix(w.Path, "/"):
		return errors.New("websocket.path: must start with /")
	case w.MaxStanzaSize < 1024:
		return errors.New("websocket.max_stanza_size: must be at least 1024 bytes")
	case w.AuthTimeout.Duration <= 0:
		return errors.New("websocket.auth_timeout: must be positive")
	case w.IdleTimeout.Duration <= 0:
		return errors.New("websocket.idle_timeout: must be positive")
	case w.PingTimeout.Duration <= 0:
		return errors.New("websocket.ping_timeout: must be positive")
	case w.WriteTimeout.Duration <= 0:
		return errors.New("websocket.write_timeout: must be positive")
	case w.MaxPending < 4*w.MaxStanzaSize:
		// Pacing starts at three quarters: the last quarter must hold a
		// largest stanza, or a paced sender could still close its reader.
		return errors.New("websocket.max_pending: must be at least 4 × websocket.max_stanza_size")
	case w.StallTimeout.Duration <= 0 || w.StallTimeout.Duration > w.WriteTimeout.Duration:
		return errors.New("websocket.stall_timeout: must be positive and at most websocket.write_timeout")
	case w.MaxAuthFailures < 1:
		return errors.New("websocket.max_auth_failures: must be at least 1")
	case w.FASTTokenTTL.Duration < time.Minute:
		return errors.New("websocket.fast_token_ttl: must be at least 1m")
	case w.FASTMaxTokens < 1 || w.FASTMaxTokens > 1000:
		return errors.New("websocket.fast_max_tokens: must be between 1 and 1000")
	case w.SMAckEvery < 0 || w.SMAckInterval.Duration < 0 || (w.SMAckEvery == 0 && w.SMAckInterval.Duration == 0):
		return errors.New("websocket.sm_ack_every, websocket.sm_ack_interval: not negative, and at least one positive (or the server never asks for an ack)")
	case w.SMMaxUnacked != 0 && (w.SMMaxUnacked < w.MaxStanzaSize || w.SMMaxUnacked > w.MaxPending):
		// Everything in the send queue is in the unacknowledged queue too, and
		// a resume queues all of it at once.
		return errors.New("websocket.sm_max_unacked: must be 0 (websocket.max_pending) or between websocket.max_stanza_size and websocket.max_pending")
	case w.SMResumeTimeout.Duration < 0 || w.SMResumeTimeout.Duration > 24*time.Hour:
		return errors.New("websocket.sm_resume_timeout: must be between 0 (no resumption) and 24h")
	}
	for _, o := range w.AllowedOrigins {
		if _, err := filepath.Match(o, ""); err != nil || o == "" {
			return fmt.Errorf("websocket.allowed_origins: bad pattern %q", o)
		}
	}
	if !validBackend(c.Storage.Backend) {
		return fmt.Errorf("storage.backend: %q is not supported (use \"embedded\" or \"mongodb\")", c.Storage.Backend)
	}
	if c.Storage.DataDir == "" {
		return errors.New("storage.data_dir: must not be empty")
	}
	if ml := &c.Modules.MucLight; ml.Backend == "" {
		ml.Backend = c.Storage.Backend
	}
	if err := c.Modules.MAM.validate(c.Modules.MucLight.Backend); err != nil {
		return err
	}
	if c.usesBackend("mongodb") {
		m := c.Storage.MongoDB
		switch {
		case !strings.HasPrefix(m.URI, "mongodb://") && !strings.HasPrefix(m.URI, "mongodb+srv://"):
			return errors.New("storage.mongodb.uri: must be a mongodb:// or mongodb+srv:// URI")
		case m.Database == "" || strings.ContainsAny(m.Database, "/\\. \"$"):
			return errors.New("storage.mongodb.database: must be a valid database name")
		case m.PoolSize < 1:
			return errors.New("storage.mongodb.pool_size: must be at least 1")
		case m.ConnectTimeout.Duration <= 0:
			return errors.New("storage.mongodb.connect_timeout: must be positive")
		case m.OpTimeout.Duration <= 0:
			return errors.New("storage.mongodb.op_timeout: must be positive")
		}
	}
	if err := c.API.validate(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.Push.validate(); err != nil {
		return err
	}
	var err error
	if c.rooms, err = c.Modules.MucLight.roomOptions(); err != nil {
		return err
	}
	c.limits, err = c.Modules.MucLimits.limits()
	return err
}

// validateAlternateURLs accepts absolute ws:// and wss:// URLs, each once:
// a browser given anything else would fail only when it needs the fallback.
func validateAlternateURLs(urls []string) error {
	seen := map[string]bool{}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.Opaque != "" || u.Fragment != "" {
			return fmt.Errorf("http.alternate_urls: %q is not an absolute ws:// or wss:// URL", s)
		}
		if seen[s] {
			return fmt.Errorf("http.alternate_urls: %q is listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

// validateCaps checks the connection caps and the shaper.
func (w *WebSocketConfig) validateCaps() error {
	sh := w.Shaper
	switch {
	case w.MaxUnauthenticated < 0:
		return errors.New("websocket.max_unauthenticated: must be 0 (no cap) or more")
	case w.MaxUnauthenticatedPerAddress < 0:
		return errors.New("websocket.max_unauthenticated_per_address: must be 0 (no cap) or more")
	case w.MaxUnauthenticated > 0 && w.MaxUnauthenticatedPerAddress > w.MaxUnauthenticated:
		return errors.New("websocket.max_unauthenticated_per_address: must not exceed websocket.max_unauthenticated")
	case w.MaxSessionsPerAccount < 0:
		return errors.New("websocket.max_sessions_per_account: must be 0 (unlimited) or more")
	case sh.StanzaRate < 0 || math.IsNaN(sh.StanzaRate) || math.IsInf(sh.StanzaRate, 0):
		return errors.New("websocket.shaper.stanza_rate: must be 0 (off) or a positive number")
	case sh.StanzaRate > 0 && sh.StanzaBurst < 1:
		return errors.New("websocket.shaper.stanza_burst: must be at least 1")
	case sh.ByteRate < 0 || math.IsNaN(sh.ByteRate) || math.IsInf(sh.ByteRate, 0):
		return errors.New("websocket.shaper.byte_rate: must be 0 (off) or a positive number")
	case sh.ByteRate > 0 && sh.ByteBurst < w.MaxStanzaSize:
		return errors.New("websocket.shaper.byte_burst: must be at least websocket.max_stanza_size, or the largest stanza could never pass")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func validBackend(b string) bool { return b == "embedded" || b == "mongodb" }

// usesBackend reports whether accounts, rooms or history live in backend b.
func (c *Config) usesBackend(b string) bool {
	return c.Storage.Backend == b || c.Modules.MucLight.Backend == b || (c.Modules.MAM.MucLight && c.Modules.MAM.Backend == b)
}

// validateCluster checks [cluster] and names the node. Cluster mode needs
// every store shared by the nodes: the embedded store is one process's
// file, so nodes on it would each see their own rooms and accounts.
func (c *Config) validateCluster() error {
	cl := &c.Cluster
	if cl.NATSURL == "" {
		return nil
	}
	if c.usesBackend("embedded") {
		return errors.New("cluster.nats_url: cluster mode needs a store every node shares; set storage.backend, " +
			"modules.mod_muc_light.backend and modules.mod_mam.backend to \"mongodb\" (the embedded store is one process's file)")
	}
	if cl.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("cluster.node: empty and the hostname is unknown: %w", err)
		}
		cl.Node = nodeName(h)
	}
	if !validNodeName(cl.Node) {
		return fmt.Errorf("cluster.node: %q: use letters, digits, '-' and '_' (it names NATS subjects)", cl.Node)
	}
	if cl.Heartbeat.Duration <= 0 || cl.NodeTTL.Duration < 2*cl.Heartbeat.Duration {
		return errors.New("cluster.node_ttl: must be at least twice cluster.heartbeat, which must be positive")
	}
	return nil
}

// nodeName makes a hostname usable as a node name.
func nodeName(host string) string {
	b := []byte(host)
	for i, ch := range b {
		if !nodeChar(ch) {
			b[i] = '-'
		}
	}
	return string(b)
}

func validNodeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nodeChar(s[i]) {
			return false
		}
	}
	return true
}

func nodeChar(ch byte) bool {
	return ch == '-' || ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
}

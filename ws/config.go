package ws

import (
	"time"
)

// Config is what the endpoint needs from the server's configuration. The
// server package fills it from TOML and owns the defaults; Defaults exists
// for tests and embedders.
type Config struct {
	// Hosts are the served domains; the first is the default for an <open/>
	// without 'to' when only one is served.
	Hosts []string
	// Path is the WebSocket endpoint's URL path.
	Path string
	// MaxStanzaSize is the largest WebSocket message accepted, in bytes;
	// larger ones end the stream with policy-violation.
	MaxStanzaSize int
	// AuthTimeout bounds the time from connection to a bound resource.
	AuthTimeout time.Duration
	// IdleTimeout is the quiet time after which the server pings the client;
	// PingTimeout is how long the pong may take before the session is closed.
	IdleTimeout time.Duration
	PingTimeout time.Duration
	// WriteTimeout is how long a write on the connection may go without the
	// kernel accepting a byte; a client that stops reading is closed when it
	// expires, one that reads slowly is not.
	WriteTimeout time.Duration
	// MaxPending bounds, in encoded bytes, what waits for one session's
	// writer; a delivery that would pass it closes the session with
	// policy-violation. Above three quarters of it the session's producers
	// are paced (see StallTimeout). It must hold several of the largest
	// stanzas.
	MaxPending int
	// StallTimeout is the longest a session's reader waits, before its next
	// stanza, for a recipient it fed above the high-water mark to drain; 0
	// never waits.
	StallTimeout time.Duration
	// MaxAuthFailures is how many SASL failures one connection may have
	// before it is closed (RFC 6120 §6.4.5 suggests 2 to 5).
	MaxAuthFailures int
	// AllowPlainWithoutTLS offers SASL PLAIN on connections that are neither
	// TLS nor from a loopback address.
	AllowPlainWithoutTLS bool
	// AllowedOrigins restricts browser Origins (host patterns as in
	// path.Match, e.g. "chat.example.com" or "*.example.com"); empty accepts
	// any, which is safe because XMPP authenticates in-band, not by cookie.
	AllowedOrigins []string
	// PublicURL is the WebSocket URL announced by XEP-0156 host-meta; empty
	// derives it from each request's Host header.
	PublicURL string
	// AlternateURLs are further WebSocket URLs (other nodes of the same
	// service) that host-meta lists after the main one, so that a client
	// without a load balancer in front knows where to go when its node
	// dies. An entry equal to the main URL is left out, so every node may
	// carry the same list.
	AlternateURLs []string
	// Shaper paces what each session reads; see ShaperConfig.
	Shaper ShaperConfig
	// MaxUnauthenticated and MaxUnauthenticatedPerAddress cap the
	// connections that have not bound a resource yet, in total and per
	// remote IP address, so one host cannot hold every file descriptor with
	// connections that never log in. They are counted from TCP accept when
	// Server.ConnState is installed as the http.Server's ConnState hook
	// (otherwise from the WebSocket upgrade); a connection over a cap is
	// closed at once. Zero disables a cap.
	MaxUnauthenticated           int
	MaxUnauthenticatedPerAddress int
	// MaxSessionsPerAccount is the most bound resources one account may
	// have at once; a bind over it is refused with resource-constraint.
	// Zero is unlimited.
	MaxSessionsPerAccount int
	// FAST offers XEP-0484 token logins (HT-SHA-256-NONE) inside SASL2, on
	// the connections that may use PLAIN (TLS, loopback, or
	// AllowPlainWithoutTLS): a token is as good as a password to whoever
	// reads it. FASTTokenTTL is a token's lifetime from its issue; a login
	// with one that has less than half of it left gets a new one.
	// MaxFASTTokens caps the tokens one account holds (one per client,
	// two while a rotation is in flight); the oldest is dropped beyond it.
	FAST          bool
	FASTTokenTTL  time.Duration
	MaxFASTTokens int

	// Stream management (XEP-0198, sm.go), always offered. SMAckEvery is
	// how many stanzas the server sends before it asks for an ack (<r/>);
	// SMAckInterval is the longest a stanza waits for that request when
	// fewer follow it (0: only by count). SMMaxUnacked bounds, in encoded
	// bytes, what one session keeps unacknowledged (sent or waiting to be,
	// and everything delivered while detached); passing it closes the
	// session with policy-violation. At most MaxPending; 0 is MaxPending.
	// SMResumeTimeout is how long a session whose connection dropped waits,
	// detached, for a resume (a client may ask for less); 0 disables
	// resumption.
	SMAckEvery      int
	SMAckInterval   time.Duration
	SMMaxUnacked    int
	SMResumeTimeout time.Duration
}

// ShaperConfig is the per-session ingress shaper: two token buckets, one
// counting WebSocket messages (stanzas, and the frames before binding too)
// and one counting their bytes. A session over either rate is not refused
// or closed: its reader waits until the buckets allow the next frame, so
// TCP slows that sender alone. A zero rate disables that bucket.
type ShaperConfig struct {
	StanzaRate  float64 // stanzas per second
	StanzaBurst int     // stanzas a session may send at once after a quiet spell
	ByteRate    float64 // bytes per second
	ByteBurst   int     // bytes likewise; at least MaxStanzaSize
}

// Defaults returns the configuration `go run ./server` starts with.
func Defaults() Config {
	return Config{
		Hosts:           []string{"localhost"},
		Path:            "/xmpp-websocket",
		MaxStanzaSize:   64 << 10,
		AuthTimeout:     30 * time.Second,
		IdleTimeout:     90 * time.Second,
		PingTimeout:     30 * time.Second,
		WriteTimeout:    15 * time.Second,
		MaxPending:      16 << 20,
		StallTimeout:    time.Second,
		MaxAuthFailures: 3,
		Shaper: ShaperConfig{
			StanzaRate:  10,
			StanzaBurst: 100,
			ByteRate:    64 << 10,
			ByteBurst:   512 << 10,
		},
		MaxUnauthenticated:           4096,
		MaxUnauthenticatedPerAddress: 128,
		MaxSessionsPerAccount:        10,
		FAST:                         true,
		FASTTokenTTL:                 14 * 24 * time.Hour,
		MaxFASTTokens:                16,
		SMAckEvery:                   5,
		SMAckInterval:                5 * time.Second,
		SMMaxUnacked:                 0, // MaxPending
		SMResumeTimeout:              5 * time.Minute,
	}
}

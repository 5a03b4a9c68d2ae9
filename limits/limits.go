package limits

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// Limits are the per-room flood limits, with the semantics and option
// names of Prosody's mod_muc_limits ([modules.mod_muc_limits]).
type Limits struct {
	// Enabled turns the limiter on (the section's presence in the config).
	Enabled bool
	// EventRate is the events per second a room accepts on average;
	// BurstFactor times it is the bucket's capacity.
	EventRate   float64
	BurstFactor float64
	// MaxNickLength bounds a legacy-mode nick, in bytes.
	MaxNickLength int
	// MaxCharCount bounds a message body in bytes; MaxLineCount its newlines.
	MaxCharCount int
	MaxLineCount int
	// BaseCost is what one event costs; each newline of the body adds
	// LineCountMultiplier.
	BaseCost            float64
	LineCountMultiplier float64
	// ExemptAffiliations lists the affiliations the limiter ignores.
	ExemptAffiliations []roomstore.Affiliation
	// Rooms overrides rate and burst for single rooms (bare room JID); only
	// the operator sets them.
	Rooms map[string]RateOverride
}

// RateOverride is an operator's per-room rate and burst.
type RateOverride struct {
	EventRate   float64
	BurstFactor float64
}

// DefaultLimits are Prosody's defaults, enabled.
func DefaultLimits() Limits {
	return Limits{
		Enabled:             true,
		EventRate:           0.5,
		BurstFactor:         6,
		MaxNickLength:       23,
		MaxCharCount:        5664,
		MaxLineCount:        23,
		BaseCost:            1,
		LineCountMultiplier: 0.1,
	}
}

// Validate checks what the decoder cannot, naming the option. Values out of
// Prosody's clamping range are errors here rather than silently clamped.
func (l Limits) Validate() error {
	switch {
	case l.EventRate < 0:
		return errors.New("muc_event_rate: must not be negative")
	case l.BurstFactor < 1:
		return errors.New("muc_burst_factor: must be at least 1")
	case l.MaxNickLength < 1:
		return errors.New("muc_max_nick_length: must be positive")
	case l.MaxCharCount < 1:
		return errors.New("muc_max_char_count: must be positive")
	case l.MaxLineCount < 0:
		return errors.New("muc_max_line_count: must not be negative")
	case l.BaseCost < 0:
		return errors.New("muc_limit_base_cost: must not be negative")
	case l.LineCountMultiplier < 0:
		return errors.New("muc_line_count_multiplier: must not be negative")
	}
	for _, a := range l.ExemptAffiliations {
		if a != roomstore.Owner && a != roomstore.Member {
			return fmt.Errorf("exempt_affiliations: %q is not owner or member", a)
		}
	}
	for room, o := range l.Rooms {
		if j, err := xmpp.ParseJID(room); err != nil || j.Local == "" || !j.IsBare() {
			return fmt.Errorf("rooms: %q is not a room JID", room)
		}
		if o.EventRate < 0 || o.BurstFactor < 1 {
			return fmt.Errorf("rooms.%q: event rate must not be negative and burst factor at least 1", room)
		}
	}
	return nil
}

// Refusal reasons, as the limiter metrics label them.
const (
	ReasonRate         = "rate"
	ReasonTooLong      = "too_long"
	ReasonTooManyLines = "too_many_lines"
	ReasonNickTooLong  = "nick_too_long"
)

// Refusal is a limiter's no: the metric label, and the stanza error a
// room answers with (condition, text, and whether waiting helps), as data.
type Refusal struct {
	Reason    string
	Condition string
	Text      string
	Wait      bool
}

// Error implements error, so a refusal travels as one.
func (r *Refusal) Error() string { return r.Condition + ": " + r.Text }

// Limiter refusals, worded as Prosody words them.
var (
	refusalTooLong    = Refusal{Reason: ReasonTooLong, Condition: "policy-violation", Text: "Your message is too long, please write a shorter one"}
	refusalLines      = Refusal{Reason: ReasonTooManyLines, Condition: "policy-violation", Text: "Your message is too long, please write a shorter one"}
	refusalNick       = Refusal{Reason: ReasonNickTooLong, Condition: "policy-violation", Text: "Your nick name is too long, please use a shorter one"}
	refusalOveractive = Refusal{Reason: ReasonRate, Condition: "policy-violation", Text: "The room is currently overactive, please try again later", Wait: true}
)

// Bucket is a token bucket: capacity rate×burst, refilled continuously at
// rate tokens per second, full when made. The time is passed in, so tests
// need no clock. The zero value holds nothing and refills nothing.
type Bucket struct {
	rate, capacity, tokens float64
	last                   time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate, burst float64, now time.Time) Bucket {
	c := rate * burst
	return Bucket{rate: rate, capacity: c, tokens: c, last: now}
}

// Take removes cost tokens if the bucket holds that many (after refilling
// for the time since the last call) and reports whether it did. A refused
// take removes nothing.
func (b *Bucket) Take(cost float64, now time.Time) bool {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.capacity, b.tokens+dt*b.rate)
		b.last = now
	}
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// RoomLimiter applies Limits to one room; the room's actor owns it, so it
// needs no lock. It is dropped with the actor and recreated full.
type RoomLimiter struct {
	limits *Limits
	bucket Bucket
}

// NewRoomLimiter is the limiter of one room; nil when limits are off.
func NewRoomLimiter(l *Limits, room xmpp.JID, now time.Time) *RoomLimiter {
	if !l.Enabled {
		return nil
	}
	rate, burst := l.EventRate, l.BurstFactor
	if o, ok := l.Rooms[room.String()]; ok {
		rate, burst = o.EventRate, o.BurstFactor
	}
	return &RoomLimiter{limits: l, bucket: NewBucket(rate, burst, now)}
}

// exempt reports whether the sender's affiliation escapes the limiter.
func (rl *RoomLimiter) exempt(aff roomstore.Affiliation) bool {
	for _, a := range rl.limits.ExemptAffiliations {
		if a == aff {
			return true
		}
	}
	return false
}

// Check decides on one event with the given body ("" for events without
// one): the size limits first (they cost nothing), then the bucket. It
// returns the refusal and its reason, or nil.
func (rl *RoomLimiter) Check(aff roomstore.Affiliation, body string, now time.Time) *Refusal {
	if rl == nil || rl.exempt(aff) {
		return nil
	}
	l := rl.limits
	lines := strings.Count(body, "\n")
	if len(body) > l.MaxCharCount {
		return &refusalTooLong
	}
	if lines > l.MaxLineCount {
		return &refusalLines
	}
	if !rl.bucket.Take(l.BaseCost+float64(lines)*l.LineCountMultiplier, now) {
		return &refusalOveractive
	}
	return nil
}

// CheckNick applies the nick length limit of a legacy-mode join.
func (rl *RoomLimiter) CheckNick(aff roomstore.Affiliation, nick string) *Refusal {
	if rl == nil || rl.exempt(aff) || len(nick) <= rl.limits.MaxNickLength {
		return nil
	}
	return &refusalNick
}

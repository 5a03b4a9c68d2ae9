package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// Message is one entry of a room's archive (XEP-0313): a groupchat
// message or an affiliation-change notification, as it was delivered.
type Message struct {
	Room xmpp.JID // bare room JID
	// ID is the archive id: unique, ordered by time, stable across restarts
	// (see NewArchiveID). It is also the XEP-0359 stanza-id.
	ID   string
	Time time.Time
	// Sender is the occupant's bare JID, zero for the room's own
	// notifications (affiliation changes).
	Sender xmpp.JID
	// Stanza is the serialised message without its 'to' attribute; nil
	// once the message is a tombstone.
	Stanza []byte
	// MsgID is the message's own id attribute, which a XEP-0308
	// correction names.
	MsgID string
	// Target is the archive id of the message this one fastens to (a
	// correction, retraction, moderation or reactions); "" for a message
	// of its own. Summary queries leave such messages out.
	Target string

	// Folded state, kept on a message of its own as its fastenings are
	// archived (Update), so a summary page needs no second read.

	// Tomb, once set, replaces the message: its Stanza, Edit and
	// Reactions are gone from the store for ever.
	Tomb *Tombstone
	// Edit is the latest correction.
	Edit *Edit
	// Edits are the archive ids of every correction, oldest first, at
	// most MaxEdits: a retraction tombstones them with the original.
	Edits []string
	// Reactions are each user's current set, at most one entry per user.
	Reactions []Reaction
}

// MaxEdits bounds a message's corrections: the list lives in its record.
const MaxEdits = 50

// Tombstone says who removed a message, when and why.
type Tombstone struct {
	// By is the moderator's bare JID; zero when the author retracted.
	By xmpp.JID
	// ByOccupant is the moderator's occupant id (XEP-0421).
	ByOccupant string
	At         time.Time
	Reason     string
}

// Edit is a message's latest correction (XEP-0308).
type Edit struct {
	ID   string // the correction's archive id
	Time time.Time
	Body string
}

// Reaction is one user's set of reactions to a message (XEP-0444).
type Reaction struct {
	User       xmpp.JID // bare
	OccupantID string
	Emojis     []string
}

// Query selects and pages a room's archive. Filters combine with AND.
type Query struct {
	Room       xmpp.JID
	Start, End time.Time // zero: unbounded; inclusive
	With       xmpp.JID  // zero: any sender; else that occupant's messages
	AfterID    string    // exclusive lower id bound ("after-id" filter)
	BeforeID   string    // exclusive upper id bound ("before-id" filter)
	IDs        []string  // non-empty: only these ids
	// Summary leaves out the fastenings (messages with a Target).
	Summary bool
	// Posts leaves out the room's own notices (no Sender).
	Posts bool
	// NotWith leaves out one sender's messages (zero: none).
	NotWith xmpp.JID
	// MsgID non-empty: only messages with that MsgID.
	MsgID string
	// CountMax > 0 stops counting at that many matches: Count is then at
	// most CountMax (unread counts stay cheap in a busy room).
	CountMax int
	// Paging (XEP-0059): Max items; After / Before an id; Last asks for the
	// last page (an empty <before/>). Before and After are not combined.
	Max    int
	After  string
	Before string
	Last   bool
}

// Page is one page of a query's result, oldest first.
type Page struct {
	Messages []Message
	// Count is the number of messages the filters match (all pages).
	Count int
	// FirstIndex is the position of Messages[0] in the whole result.
	FirstIndex int
	// Complete is true when the page reaches the end of the result in the
	// direction of paging (the newest match when paging forward, the
	// oldest when paging backward).
	Complete bool
}

// Archive stores room history. Both backends implement it and pass the
// same contract suite (roomstoretest.RunArchive).
type Archive interface {
	// Append stores messages, all or none; it returns once they are durable.
	Append(ctx context.Context, msgs []Message) error
	// Query returns one page of a room's archive.
	Query(ctx context.Context, q Query) (Page, error)
	// RemoveRoom deletes a room's archive.
	RemoveRoom(ctx context.Context, room xmpp.JID) error
	// RemoveDomain deletes the archives of every room of a service domain.
	RemoveDomain(ctx context.Context, service string) error
	// RemoveBefore deletes entries older than t (retention), in every room.
	RemoveBefore(ctx context.Context, t time.Time) (int, error)
	// Update replaces the folded state (Tomb, Edit, Edits, Reactions) of
	// stored messages, found by Room and ID; the other fields are ignored
	// and ids not stored are skipped. A message given a Tomb loses its
	// Stanza, Edit and Reactions.
	Update(ctx context.Context, msgs []Message) error
	// SetRead records id as user's last-read message in room if it is
	// greater than the one stored (XEP-0333 displayed markers).
	SetRead(ctx context.Context, room, user xmpp.JID, id string) error
	// Reads returns user's last-read id in each of rooms that has one,
	// keyed by the room's bare JID text.
	Reads(ctx context.Context, user xmpp.JID, rooms []xmpp.JID) (map[string]string, error)
}

// ErrBusy is returned when the archive queue is full: the message is
// refused (the sender is told to wait) rather than delivered unarchived.
var ErrBusy = errors.New("archive: queue full")

// IDClock makes archive ids: 16 hex digits of microseconds since the epoch,
// kept strictly increasing within the process, then 4 of a per-process
// random suffix so that ids from two processes (or a restart within the
// same microsecond) do not collide. Lexical order is time order.
type IDClock struct {
	mu     sync.Mutex
	last   int64
	suffix string
}

// NewIDClock starts a clock with a fresh random suffix.
func NewIDClock() *IDClock { return &IDClock{suffix: randomHex(2)} }

// Next returns a new id for a message at now, and the time the id encodes.
func (c *IDClock) Next(now time.Time) (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	us := now.UnixMicro()
	if us <= c.last {
		us = c.last + 1
	}
	c.last = us
	return fmt.Sprintf("%016x%s", us, c.suffix), time.UnixMicro(us).UTC()
}

// IDTime is the time an archive id encodes; false for a malformed id.
func IDTime(id string) (time.Time, bool) {
	if len(id) != 20 {
		return time.Time{}, false
	}
	var us int64
	if _, err := fmt.Sscanf(id[:16], "%016x", &us); err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us).UTC(), true
}

// IDAt is the smallest id at time t, for turning a time filter into
// an id bound.
func IDAt(t time.Time) string { return fmt.Sprintf("%016x", t.UnixMicro()) }

// ValidID reports whether id has the form of the archive ids this
// package makes: 20 lowercase hex digits, whose byte order is their time
// order. A store refuses any other id, since its order depends on it.
func ValidID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// IDFrom is the smallest id whose time is at or after t, which may
// have a sub-microsecond remainder.
func IDFrom(t time.Time) string { return IDAt(ceilMicro(t)) }

// IDRange is the window of ids an archive query allows: from Lo
// (exclusive when LoOpen; "" is unbounded) up to Hi, exclusive ("" is
// unbounded).
type IDRange struct {
	Lo     string
	LoOpen bool
	Hi     string
}

// QueryIDRange turns q's time and id filters (Start, End, AfterID,
// BeforeID) into one id window. The time bounds are inclusive, at the
// microsecond precision the ids carry.
func QueryIDRange(q Query) IDRange {
	var r IDRange
	if !q.Start.IsZero() {
		r.Lo = IDFrom(q.Start)
	}
	if q.AfterID != "" {
		r = r.Above(q.AfterID)
	}
	if !q.End.IsZero() {
		r.Hi = IDAt(q.End.Truncate(time.Microsecond).Add(time.Microsecond))
	}
	if q.BeforeID != "" {
		r = r.Below(q.BeforeID)
	}
	return r
}

// Above narrows r to ids greater than x.
func (r IDRange) Above(x string) IDRange {
	if x >= r.Lo {
		r.Lo, r.LoOpen = x, true
	}
	return r
}

// Below narrows r to ids less than x.
func (r IDRange) Below(x string) IDRange {
	if r.Hi == "" || x < r.Hi {
		r.Hi = x
	}
	return r
}

// Empty reports whether r is empty for certain: Lo is at or past Hi.
func (r IDRange) Empty() bool { return r.Hi != "" && r.Lo >= r.Hi }

// ceilMicro rounds t up to a whole microsecond: an id's time is at or
// after t exactly when it is at or after ceilMicro(t).
func ceilMicro(t time.Time) time.Time {
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

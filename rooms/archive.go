package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wschat/xmppws/xmpp"
)

// ArchivedMessage is one entry of a room's archive (XEP-0313): a groupchat
// message or an affiliation-change notification, as it was delivered.
type ArchivedMessage struct {
	Room xmpp.JID // bare room JID
	// ID is the archive id: unique, ordered by time, stable across restarts
	// (see NewArchiveID). It is also the XEP-0359 stanza-id.
	ID   string
	Time time.Time
	// Sender is the occupant's bare JID, zero for the room's own
	// notifications (affiliation changes).
	Sender xmpp.JID
	// Stanza is the serialised message without its 'to' attribute.
	Stanza []byte
}

// ArchiveQuery selects and pages a room's archive. Filters combine with AND.
type ArchiveQuery struct {
	Room       xmpp.JID
	Start, End time.Time // zero: unbounded; inclusive
	With       xmpp.JID  // zero: any sender; else that occupant's messages
	AfterID    string    // exclusive lower id bound ("after-id" filter)
	BeforeID   string    // exclusive upper id bound ("before-id" filter)
	IDs        []string  // non-empty: only these ids
	// Paging (XEP-0059): Max items; After / Before an id; Last asks for the
	// last page (an empty <before/>). Before and After are not combined.
	Max    int
	After  string
	Before string
	Last   bool
}

// ArchivePage is one page of a query's result, oldest first.
type ArchivePage struct {
	Messages []ArchivedMessage
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
// same contract suite (roomstest.RunArchive).
type Archive interface {
	// Append stores messages, all or none; it returns once they are durable.
	Append(ctx context.Context, msgs []ArchivedMessage) error
	// Query returns one page of a room's archive.
	Query(ctx context.Context, q ArchiveQuery) (ArchivePage, error)
	// RemoveRoom deletes a room's archive.
	RemoveRoom(ctx context.Context, room xmpp.JID) error
	// RemoveDomain deletes the archives of every room of a service domain.
	RemoveDomain(ctx context.Context, service string) error
	// RemoveBefore deletes entries older than t (retention), in every room.
	RemoveBefore(ctx context.Context, t time.Time) (int, error)
}

// ErrArchiveBusy is returned when the archive queue is full: the message is
// refused (the sender is told to wait) rather than delivered unarchived.
var ErrArchiveBusy = errors.New("rooms: archive queue full")

// idClock makes archive ids: 16 hex digits of microseconds since the epoch,
// kept strictly increasing within the process, then 4 of a per-process
// random suffix so that ids from two processes (or a restart within the
// same microsecond) do not collide. Lexical order is time order.
type idClock struct {
	mu     sync.Mutex
	last   int64
	suffix string
}

func newIDClock() *idClock { return &idClock{suffix: randomHex(2)} }

// next returns a new id for a message at now, and the time the id encodes.
func (c *idClock) next(now time.Time) (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	us := now.UnixMicro()
	if us <= c.last {
		us = c.last + 1
	}
	c.last = us
	return fmt.Sprintf("%016x%s", us, c.suffix), time.UnixMicro(us).UTC()
}

// ArchiveIDTime is the time an archive id encodes; false for a malformed id.
func ArchiveIDTime(id string) (time.Time, bool) {
	if len(id) != 20 {
		return time.Time{}, false
	}
	var us int64
	if _, err := fmt.Sscanf(id[:16], "%016x", &us); err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us).UTC(), true
}

// ArchiveIDAt is the smallest id at time t, for turning a time filter into
// an id bound.
func ArchiveIDAt(t time.Time) string { return fmt.Sprintf("%016x", t.UnixMicro()) }

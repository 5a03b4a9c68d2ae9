package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// The archive bucket holds every room's history (XEP-0313), one entry per
// message keyed room + "\x00" + archive id: a room's entries are contiguous
// and, since ids sort by time, in time order, so a query walks one key
// range. The value is JSON {t (unix microseconds), sender, stanza}.
var bucketArchive = []byte("archive")

// errInvalidArchive refuses an entry the archive's order depends on (a
// malformed id, no room) or that would overwrite a stored one; it is a bug
// in the caller.
var errInvalidArchive = errors.New("boltstore: invalid archive entry")

var _ archive.Archive = (*Archive)(nil)

// Archive is the store's room history, a archive.Archive. It is a view of the
// Store rather than the Store itself because roomstore.Store and archive.Archive
// both name a RemoveDomain, with different arguments.
type Archive struct{ s *Store }

// Archive returns the store's room history; it shares the store's file and
// is closed with it.
func (s *Store) Archive() *Archive { return &Archive{s: s} }

// bucketReads holds each member's last-read id per room, keyed user +
// "\x00" + room, so one user's rooms are contiguous.
var bucketReads = []byte("reads")

// archiveEntry is the stored form of a message; the room and id are in the
// key. The fields after Stanza are the fastening link and folded state.
type archiveEntry struct {
	T         int64              `json:"t"`
	Sender    string             `json:"sender"`
	Stanza    []byte             `json:"stanza"`
	MsgID     string             `json:"msgid,omitempty"`
	Target    string             `json:"target,omitempty"`
	Tomb      *archive.Tombstone `json:"tomb,omitempty"`
	Edit      *archive.Edit      `json:"edit,omitempty"`
	Edits     []string           `json:"edits,omitempty"`
	Reactions []storedReaction   `json:"reactions,omitempty"`
}

// storedReaction is archive.Reaction with the JID as text.
type storedReaction struct {
	User       string   `json:"user"`
	OccupantID string   `json:"occ,omitempty"`
	Emojis     []string `json:"emojis"`
}

// entryOf is the stored form of m.
func entryOf(m archive.Message) archiveEntry {
	e := archiveEntry{T: m.Time.UnixMicro(), Sender: m.Sender.Bare().String(), Stanza: m.Stanza, MsgID: m.MsgID, Target: m.Target}
	fold(&e, m)
	return e
}

// fold copies m's folded state into e; a tombstone drops the content,
// and a tombstone is final.
func fold(e *archiveEntry, m archive.Message) {
	if e.Tomb != nil {
		return
	}
	e.Tomb, e.Edit, e.Edits, e.Reactions = m.Tomb, m.Edit, m.Edits, nil
	for _, r := range m.Reactions {
		e.Reactions = append(e.Reactions, storedReaction{User: r.User.Bare().String(), OccupantID: r.OccupantID, Emojis: r.Emojis})
	}
	if e.Tomb != nil {
		e.Stanza, e.Edit, e.Reactions = nil, nil, nil
	}
}

// Append implements archive.Archive in one transaction: the caller batches so
// that one fsync covers many messages. An id already stored in the room
// (or twice in the batch) rolls the whole batch back.
func (a *Archive) Append(ctx context.Context, msgs []archive.Message) error {
	if len(msgs) == 0 {
		return ctx.Err()
	}
	keys := make([][]byte, len(msgs))
	vals := make([][]byte, len(msgs))
	for i, m := range msgs {
		if m.Room.IsZero() || !archive.ValidID(m.ID) {
			return fmt.Errorf("boltstore: archive message %q of room %q: %w", m.ID, m.Room, errInvalidArchive)
		}
		keys[i] = archiveKey(m.Room, m.ID)
		v, err := json.Marshal(entryOf(m))
		if err != nil {
			return fmt.Errorf("boltstore: encode archive message %s: %w", m.ID, err)
		}
		vals[i] = v
	}
	return a.s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketArchive)
		for i, k := range keys {
			if b.Get(k) != nil {
				return fmt.Errorf("boltstore: archive message %s of %s already stored: %w", msgs[i].ID, msgs[i].Room.Bare(), errInvalidArchive)
			}
			if err := b.Put(k, vals[i]); err != nil {
				return fmt.Errorf("boltstore: write archive message %s: %w", msgs[i].ID, err)
			}
		}
		return nil
	})
}

// Query implements archive.Archive. It walks the filters' key range once,
// counting every match (Count, FirstIndex and Complete need them all) and
// decoding only the page's; the With filter reads each candidate's sender.
func (a *Archive) Query(ctx context.Context, q archive.Query) (archive.Page, error) {
	var page archive.Page
	err := a.s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		page, err = queryArchive(tx.Bucket(bucketArchive), q)
		return err
	})
	return page, err
}

func queryArchive(b *bolt.Bucket, q archive.Query) (archive.Page, error) {
	room := q.Room.Bare()
	prefix := archiveKey(room, "")
	lo, hi := rangeKeys(archive.QueryIDRange(q), prefix)
	var with, notWith string
	if !q.With.IsZero() {
		with = q.With.Bare().String()
	}
	if !q.NotWith.IsZero() {
		notWith = q.NotWith.Bare().String()
	}
	filtered := with != "" || notWith != "" || q.Summary || q.Posts || q.MsgID != ""
	backward := q.Before != "" || q.Last

	// before and after count the matches older and newer than the page.
	var (
		page          archive.Page
		before, after int
	)
	for k, v := range archiveRange(b, prefix, lo, hi, q.IDs, backward) {
		id := k[len(prefix):]
		if q.CountMax > 0 && before+len(page.Messages)+after >= q.CountMax {
			break
		}
		if filtered {
			var e struct {
				Sender string `json:"sender"`
				Target string `json:"target"`
				MsgID  string `json:"msgid"`
			}
			if err := json.Unmarshal(v, &e); err != nil {
				return archive.Page{}, fmt.Errorf("boltstore: decode archive message %s of %s: %w", id, room, err)
			}
			if with != "" && e.Sender != with || notWith != "" && e.Sender == notWith ||
				q.Summary && e.Target != "" || q.Posts && e.Sender == "" || q.MsgID != "" && e.MsgID != q.MsgID {
				continue
			}
		}
		switch {
		case !backward && q.After != "" && string(id) <= q.After:
			before++
		case backward && q.Before != "" && string(id) >= q.Before:
			after++
		case len(page.Messages) < q.Max:
			m, err := decodeArchived(room, id, v)
			if err != nil {
				return archive.Page{}, err
			}
			page.Messages = append(page.Messages, m)
		case backward:
			before++
		default:
			after++
		}
	}
	if backward {
		slices.Reverse(page.Messages)
		page.Complete = before == 0
	} else {
		page.Complete = after == 0
	}
	page.Count = before + len(page.Messages) + after
	page.FirstIndex = before
	return page, nil
}

// archiveRange yields a room's entries with keys in [lo, hi), oldest first
// or, backward, newest first. With ids, only those entries are looked up.
func archiveRange(b *bolt.Bucket, prefix, lo, hi []byte, ids []string, backward bool) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		if len(ids) > 0 {
			var keys [][]byte
			for _, id := range ids {
				k := append(slices.Clip(prefix), id...)
				if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
					keys = append(keys, k)
				}
			}
			slices.SortFunc(keys, bytes.Compare)
			keys = slices.CompactFunc(keys, bytes.Equal)
			if backward {
				slices.Reverse(keys)
			}
			for _, k := range keys {
				if v := b.Get(k); v != nil && !yield(k, v) {
					return
				}
			}
			return
		}
		c := b.Cursor()
		if !backward {
			for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		k, v := c.Seek(hi)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.Compare(k, lo) >= 0; k, v = c.Prev() {
			if !yield(k, v) {
				return
			}
		}
	}
}

func decodeArchived(room xmpp.JID, id, v []byte) (archive.Message, error) {
	var e archiveEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return archive.Message{}, fmt.Errorf("boltstore: decode archive message %s of %s: %w", id, room, err)
	}
	m := archive.Message{Room: room, ID: string(id), Time: time.UnixMicro(e.T).UTC(), Stanza: e.Stanza,
		MsgID: e.MsgID, Target: e.Target, Tomb: e.Tomb, Edit: e.Edit, Edits: e.Edits}
	if e.Sender != "" {
		m.Sender = bareJID(e.Sender)
	}
	for _, r := range e.Reactions {
		m.Reactions = append(m.Reactions, archive.Reaction{User: bareJID(r.User), OccupantID: r.OccupantID, Emojis: r.Emojis})
	}
	return m, nil
}

// Update implements archive.Archive in one transaction.
func (a *Archive) Update(ctx context.Context, msgs []archive.Message) error {
	return a.s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketArchive)
		for _, m := range msgs {
			k := archiveKey(m.Room, m.ID)
			v := b.Get(k)
			if v == nil {
				continue
			}
			var e archiveEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("boltstore: decode archive message %s of %s: %w", m.ID, m.Room.Bare(), err)
			}
			fold(&e, m)
			nv, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("boltstore: encode archive message %s: %w", m.ID, err)
			}
			if err := b.Put(k, nv); err != nil {
				return fmt.Errorf("boltstore: update archive message %s: %w", m.ID, err)
			}
		}
		return nil
	})
}

// readKey is user + "\x00" + room.
func readKey(room, user xmpp.JID) []byte {
	return append(append([]byte(user.Bare().String()), 0), room.Bare().String()...)
}

// SetRead implements archive.Archive.
func (a *Archive) SetRead(ctx context.Context, room, user xmpp.JID, id string) error {
	if !archive.ValidID(id) {
		return fmt.Errorf("boltstore: last-read id %q: %w", id, errInvalidArchive)
	}
	return a.s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReads)
		k := readKey(room, user)
		if old := b.Get(k); old != nil && string(old) >= id {
			return nil
		}
		return b.Put(k, []byte(id))
	})
}

// Reads implements archive.Archive.
func (a *Archive) Reads(ctx context.Context, user xmpp.JID, rooms []xmpp.JID) (map[string]string, error) {
	out := make(map[string]string)
	err := a.s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketReads)
		for _, r := range rooms {
			if v := b.Get(readKey(r, user)); v != nil {
				out[r.Bare().String()] = string(v)
			}
		}
		return nil
	})
	return out, err
}

// RemoveRoom implements archive.Archive in one transaction.
func (a *Archive) RemoveRoom(ctx context.Context, room xmpp.JID) error {
	prefix := archiveKey(room.Bare(), "")
	target := prefix[:len(prefix)-1]
	return a.s.update(ctx, func(tx *bolt.Tx) error {
		_, err := sweepArchive(tx.Bucket(bucketArchive), prefix, func(r, _ []byte) sweep {
			if !bytes.Equal(r, target) {
				return sweepStop
			}
			return sweepDelete
		})
		if err != nil {
			return err
		}
		return removeReads(tx, func(r string) bool { return r == string(target) })
	})
}

// removeReads deletes the last-read markers of the rooms match accepts, so
// that a destroyed room's read state goes with its history. The bucket is
// keyed by user first, so it visits every marker: destroying a room is rare
// and the markers are few beside the messages.
func removeReads(tx *bolt.Tx, match func(room string) bool) error {
	b := tx.Bucket(bucketReads)
	var doomed [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && match(string(k[i+1:])) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RemoveDomain implements archive.Archive in one transaction. A service's
// rooms are not contiguous (keys start with the room's local part), so it
// visits every room, skipping over those of other services.
func (a *Archive) RemoveDomain(ctx context.Context, service string) error {
	return a.s.update(ctx, func(tx *bolt.Tx) error {
		_, err := sweepArchive(tx.Bucket(bucketArchive), nil, func(r, _ []byte) sweep {
			if domainOf(string(r)) != service {
				return sweepNextRoom
			}
			return sweepDelete
		})
		if err != nil {
			return err
		}
		return removeReads(tx, func(r string) bool { return domainOf(r) == service })
	})
}

// RemoveBefore implements archive.Archive in one transaction. Within a room
// entries are in time order, so it stops at a room's first entry to keep.
func (a *Archive) RemoveBefore(ctx context.Context, t time.Time) (int, error) {
	cut := []byte(archive.IDFrom(t))
	var n int
	err := a.s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = sweepArchive(tx.Bucket(bucketArchive), nil, func(_, id []byte) sweep {
			if bytes.Compare(id, cut) >= 0 {
				return sweepNextRoom
			}
			return sweepDelete
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// sweep says what sweepArchive does with an entry.
type sweep int

const (
	sweepDelete   sweep = iota
	sweepNextRoom       // keep it and skip the rest of its room
	sweepStop
)

// sweepArchive walks the archive from start (the first key when nil),
// asking decide about each entry, and returns how many it deleted.
func sweepArchive(b *bolt.Bucket, start []byte, decide func(room, id []byte) sweep) (int, error) {
	c := b.Cursor()
	var k []byte
	if start == nil {
		k, _ = c.First()
	} else {
		k, _ = c.Seek(start)
	}
	n := 0
	for k != nil {
		room, id, ok := bytes.Cut(k, []byte{0})
		if !ok {
			k, _ = c.Next() // not an archive key; never written
			continue
		}
		switch decide(room, id) {
		case sweepStop:
			return n, nil
		case sweepNextRoom:
			k, _ = c.Seek(append(slices.Clone(room), 1))
		case sweepDelete:
			key := slices.Clone(k)
			if err := c.Delete(); err != nil {
				return n, fmt.Errorf("boltstore: delete archive entry %q: %w", key, err)
			}
			n++
			// Seeking the deleted key lands on its successor, which a Next
			// after Delete does not reliably do.
			k, _ = c.Seek(key)
		}
	}
	return n, nil
}

// archiveKey is room + "\x00" + id; a NUL cannot occur in a JID, so one
// room's prefix never matches another's.
func archiveKey(room xmpp.JID, id string) []byte {
	r := room.Bare().String()
	k := make([]byte, 0, len(r)+1+len(id))
	k = append(k, r...)
	k = append(k, 0)
	return append(k, id...)
}

// rangeKeys turns an id window into a key range [lo, hi) of the room whose
// keys start with prefix (room + "\x00").
func rangeKeys(r archive.IDRange, prefix []byte) (lo, hi []byte) {
	lo = append(slices.Clip(prefix), r.Lo...)
	if r.LoOpen {
		lo = append(lo, 0) // the smallest key above r.Lo
	}
	if r.Hi != "" {
		hi = append(slices.Clip(prefix), r.Hi...)
	} else {
		hi = append(slices.Clip(prefix[:len(prefix)-1]), 1) // past every id
	}
	return lo, hi
}

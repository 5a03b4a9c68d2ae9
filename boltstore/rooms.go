package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// The room buckets. rooms holds one JSON document per room, keyed by the
// room's bare JID. user_rooms is the index behind GetUserRooms: one empty
// value per occupancy, keyed user + "\x00" + room, so a prefix scan lists a
// user's rooms already sorted by room JID; it is written in the same
// transaction as the room it mirrors. blocking holds one JSON list per user.
var (
	bucketRooms     = []byte("rooms")
	bucketUserRooms = []byte("user_rooms")
	bucketBlocking  = []byte("blocking")
)

// errInvalidAffs refuses a stored list that would break the store's
// invariants (a duplicate user, an affiliation other than owner or member, an
// empty list at creation); it is a bug in the caller, not a protocol answer.
var errInvalidAffs = errors.New("boltstore: invalid affiliation list")

var _ roomstore.Store = (*Store)(nil)

// roomDoc is the stored form of a room; affs are kept sorted by user JID.
// A blocking list is stored as a JSON list of roomstore.BlockRecord.
type roomDoc struct {
	Config  roomstore.Config      `json:"config"`
	Affs    []roomstore.AffRecord `json:"affs"`
	Version string                `json:"version"`
}

// CreateRoom implements roomstore.Store; the occupants' room counts are read in
// the write transaction, so no other write can pass the cap in between.
func (s *Store) CreateRoom(ctx context.Context, room xmpp.JID, cfg roomstore.Config, affs []roomstore.Aff, version string, caps roomstore.Caps) error {
	key := roomKey(room)
	sorted := roomstore.SortAffs(affs)
	if len(sorted) == 0 {
		return fmt.Errorf("boltstore: create room %s with no occupants: %w", room, errInvalidAffs)
	}
	if err := roomstore.CheckAffs(sorted, errInvalidAffs); err != nil {
		return fmt.Errorf("boltstore: create room %s: %w", room, err)
	}
	doc := roomDoc{Config: maps.Clone(cfg), Affs: roomstore.AffRecords(sorted), Version: version}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRooms)
		if b.Get(key) != nil {
			return fmt.Errorf("boltstore: create room %s: %w", key, roomstore.ErrRoomExists)
		}
		if err := checkRoomCap(tx, room.Domain, nil, sorted, caps); err != nil {
			return err
		}
		if err := putJSON(b, key, doc); err != nil {
			return fmt.Errorf("boltstore: write room %s: %w", key, err)
		}
		return indexOccupants(tx, key, nil, doc.Affs)
	})
}

// DestroyRoom implements roomstore.Store.
func (s *Store) DestroyRoom(ctx context.Context, room xmpp.JID, _ roomstore.Caps) error {
	key := roomKey(room)
	return s.update(ctx, func(tx *bolt.Tx) error {
		doc, err := loadRoom(tx, key)
		if err != nil {
			return err
		}
		return deleteRoom(tx, key, doc)
	})
}

// RoomExists implements roomstore.Store.
func (s *Store) RoomExists(ctx context.Context, room xmpp.JID) (bool, error) {
	key := roomKey(room)
	var ok bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketRooms).Get(key) != nil
		return nil
	})
	return ok, err
}

// GetUserRooms implements roomstore.Store. The index's key order is already the
// order by room JID. An index entry whose room is missing (which the
// transactions never leave behind) is skipped rather than failing the list.
func (s *Store) GetUserRooms(ctx context.Context, user xmpp.JID, service string) ([]roomstore.RoomInfo, error) {
	var out []roomstore.RoomInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		for _, r := range userRooms(tx, user, service) {
			doc, err := loadRoom(tx, []byte(r))
			if errors.Is(err, roomstore.ErrRoomNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, roomstore.RoomInfo{Room: bareJID(r), Config: doc.config(), Version: doc.Version})
		}
		return nil
	})
	return out, err
}

// GetUserRoomsCount implements roomstore.Store; it reads only the index.
func (s *Store) GetUserRoomsCount(ctx context.Context, user xmpp.JID, service string) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n = len(userRooms(tx, user, service))
		return nil
	})
	return n, err
}

// RemoveUser implements roomstore.Store, one transaction per room. Rooms the
// user has already left (or that vanished) by the time their transaction
// runs are not reported. A failure in one room does not stop the others;
// the failures are joined, and the blocking list is deleted regardless,
// unless ctx ended.
func (s *Store) RemoveUser(ctx context.Context, user xmpp.JID, service string, leave func(xmpp.JID) roomstore.AffChange, version func() string, _ roomstore.Caps) ([]roomstore.UserRemoval, error) {
	user = user.Bare()
	var list []xmpp.JID
	err := s.view(ctx, func(tx *bolt.Tx) error {
		for _, r := range userRooms(tx, user, service) {
			list = append(list, bareJID(r))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, errs, stopped := roomstore.LeaveRooms(ctx, "boltstore", user, list, leave, version, s.leaveRoom)
	if stopped {
		return out, errors.Join(errs...)
	}
	key := []byte(user.String())
	err = s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlocking).Delete(key)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("boltstore: delete blocking list of %s: %w", user, err))
	}
	return out, errors.Join(errs...)
}

// RemoveDomain implements roomstore.Store in a single transaction.
func (s *Store) RemoveDomain(ctx context.Context, domain, service string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		// bbolt forbids changing a bucket while ForEach walks it, so collect
		// first and delete after.
		var doomed [][]byte
		err := tx.Bucket(bucketRooms).ForEach(func(k, _ []byte) error {
			if domainOf(string(k)) == service {
				doomed = append(doomed, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			doc, err := loadRoom(tx, k)
			if err != nil {
				return err
			}
			if err := deleteRoom(tx, k, doc); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketBlocking)
		doomed = doomed[:0]
		err = b.ForEach(func(k, _ []byte) error {
			if domainOf(string(k)) == domain {
				doomed = append(doomed, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("boltstore: delete blocking list of %s: %w", k, err)
			}
		}
		return nil
	})
}

// readRoom loads one room document in a read transaction.
func (s *Store) readRoom(ctx context.Context, room xmpp.JID) (roomDoc, error) {
	var doc roomDoc
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		doc, err = loadRoom(tx, roomKey(room))
		return err
	})
	return doc, err
}

// GetConfig implements roomstore.Store.
func (s *Store) GetConfig(ctx context.Context, room xmpp.JID) (roomstore.Config, string, error) {
	doc, err := s.readRoom(ctx, room)
	if err != nil {
		return nil, "", err
	}
	return doc.config(), doc.Version, nil
}

// SetConfig implements roomstore.Store.
func (s *Store) SetConfig(ctx context.Context, room xmpp.JID, changes roomstore.Config, version string) (string, error) {
	key := roomKey(room)
	var prev string
	err := s.update(ctx, func(tx *bolt.Tx) error {
		doc, err := loadRoom(tx, key)
		if err != nil {
			return err
		}
		prev = doc.Version
		doc.Config = doc.config()
		maps.Copy(doc.Config, changes)
		doc.Version = version
		if err := putJSON(tx.Bucket(bucketRooms), key, doc); err != nil {
			return fmt.Errorf("boltstore: write room %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return prev, nil
}

// GetBlocking implements roomstore.Store; items come sorted by kind, then JID.
func (s *Store) GetBlocking(ctx context.Context, user xmpp.JID) ([]roomstore.BlockItem, error) {
	var items []roomstore.BlockRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		items, err = loadBlocking(tx, []byte(user.Bare().String()))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []roomstore.BlockItem
	for _, it := range items {
		out = append(out, roomstore.BlockItem{Kind: it.Kind, JID: bareJID(it.JID)})
	}
	return out, nil
}

// SetBlocking implements roomstore.Store. deny is applied before allow, so an
// item named in both ends up allowed; an emptied list is deleted.
func (s *Store) SetBlocking(ctx context.Context, user xmpp.JID, deny, allow []roomstore.BlockItem) error {
	key := []byte(user.Bare().String())
	return s.update(ctx, func(tx *bolt.Tx) error {
		items, err := loadBlocking(tx, key)
		if err != nil {
			return err
		}
		next := roomstore.ApplyBlocking(items, deny, allow)
		b := tx.Bucket(bucketBlocking)
		if len(next) == 0 {
			return b.Delete(key)
		}
		if err := putJSON(b, key, next); err != nil {
			return fmt.Errorf("boltstore: write blocking list of %s: %w", key, err)
		}
		return nil
	})
}

// GetAffUsers implements roomstore.Store; occupants come sorted by user JID.
func (s *Store) GetAffUsers(ctx context.Context, room xmpp.JID) ([]roomstore.Aff, string, error) {
	doc, err := s.readRoom(ctx, room)
	if err != nil {
		return nil, "", err
	}
	return doc.affs(), doc.Version, nil
}

// ModifyAffUsers implements roomstore.Store. bbolt runs one writer at a time, so
// reading, calling change, counting the rooms of the users it adds and
// writing in one transaction cannot lose a concurrent update nor pass the
// cap, and change is called exactly once per call.
func (s *Store) ModifyAffUsers(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string, caps roomstore.Caps) (roomstore.AffResult, error) {
	res, _, err := s.modifyAffs(ctx, room, change, version, caps)
	return res, err
}

// modifyAffs is ModifyAffUsers that also says whether anything was written,
// which RemoveUser needs to leave out rooms the user had already left. An
// error from change is returned as it is.
func (s *Store) modifyAffs(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string, caps roomstore.Caps) (roomstore.AffResult, bool, error) {
	key := roomKey(room)
	var (
		res     roomstore.AffResult
		changed bool
	)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		doc, err := loadRoom(tx, key)
		if err != nil {
			return err
		}
		cur := doc.affs()
		next, err := change(doc.affs())
		if err != nil {
			return err
		}
		next = roomstore.SortAffs(next)
		if err := roomstore.CheckAffs(next, errInvalidAffs); err != nil {
			return fmt.Errorf("boltstore: modify affiliations of %s: %w", key, err)
		}
		if roomstore.SameAffs(cur, next) {
			res = roomstore.UnchangedAffs(cur, doc.Version)
			return nil
		}
		if err := checkRoomCap(tx, room.Domain, cur, next, caps); err != nil {
			return err
		}
		res = roomstore.AffResult{Old: cur, New: next, OldVersion: doc.Version, NewVersion: version}
		changed = true
		if len(next) == 0 {
			res.New = nil
			return deleteRoom(tx, key, doc)
		}
		prev := doc.Affs
		doc.Affs = roomstore.AffRecords(next)
		doc.Version = version
		if err := putJSON(tx.Bucket(bucketRooms), key, doc); err != nil {
			return fmt.Errorf("boltstore: write room %s: %w", key, err)
		}
		return indexOccupants(tx, key, prev, doc.Affs)
	})
	if err != nil {
		return roomstore.AffResult{}, false, err
	}
	return res, changed, nil
}

// leaveRoom is modifyAffs for a change that only takes users out, which no
// cap limits.
func (s *Store) leaveRoom(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string) (roomstore.AffResult, bool, error) {
	return s.modifyAffs(ctx, room, change, version, roomstore.Caps{})
}

// checkRoomCap refuses, with *roomstore.RoomCapError, the users of next not in
// cur who already occupy caps.RoomsPerUser rooms of service. It runs in the
// transaction of the write, so the count it reads is the one written.
func checkRoomCap(tx *bolt.Tx, service string, cur, next []roomstore.Aff, caps roomstore.Caps) error {
	if caps.RoomsPerUser <= 0 {
		return nil
	}
	var full []xmpp.JID
	for _, u := range roomstore.Joined(cur, next) {
		if len(userRooms(tx, u, service)) >= caps.RoomsPerUser {
			full = append(full, u)
		}
	}
	if len(full) > 0 {
		return &roomstore.RoomCapError{Users: full}
	}
	return nil
}

// loadRoom reads a room document, or fails with roomstore.ErrRoomNotFound.
func loadRoom(tx *bolt.Tx, key []byte) (roomDoc, error) {
	var doc roomDoc
	v := tx.Bucket(bucketRooms).Get(key)
	if v == nil {
		return doc, fmt.Errorf("boltstore: room %s: %w", key, roomstore.ErrRoomNotFound)
	}
	if err := json.Unmarshal(v, &doc); err != nil {
		return doc, fmt.Errorf("boltstore: decode room %s: %w", key, err)
	}
	return doc, nil
}

// deleteRoom removes a room and its occupants' index entries.
func deleteRoom(tx *bolt.Tx, key []byte, doc roomDoc) error {
	if err := tx.Bucket(bucketRooms).Delete(key); err != nil {
		return fmt.Errorf("boltstore: delete room %s: %w", key, err)
	}
	return indexOccupants(tx, key, doc.Affs, nil)
}

// indexOccupants brings the user_rooms index of room from the occupants in
// prev to those in next.
func indexOccupants(tx *bolt.Tx, room []byte, prev, next []roomstore.AffRecord) error {
	b := tx.Bucket(bucketUserRooms)
	keep := make(map[string]bool, len(next))
	for _, a := range next {
		keep[a.JID] = true
	}
	for _, a := range prev {
		if keep[a.JID] {
			delete(keep, a.JID) // already indexed
			continue
		}
		if err := b.Delete(indexKey(a.JID, room)); err != nil {
			return fmt.Errorf("boltstore: unindex %s in %s: %w", a.JID, room, err)
		}
	}
	for user := range keep {
		if err := b.Put(indexKey(user, room), nil); err != nil {
			return fmt.Errorf("boltstore: index %s in %s: %w", user, room, err)
		}
	}
	return nil
}

// userRooms lists, from the index, the rooms of service that user occupies,
// sorted by room JID.
func userRooms(tx *bolt.Tx, user xmpp.JID, service string) []string {
	prefix := indexKey(user.Bare().String(), nil)
	var out []string
	c := tx.Bucket(bucketUserRooms).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if r := string(k[len(prefix):]); domainOf(r) == service {
			out = append(out, r)
		}
	}
	return out
}

func loadBlocking(tx *bolt.Tx, key []byte) ([]roomstore.BlockRecord, error) {
	v := tx.Bucket(bucketBlocking).Get(key)
	if v == nil {
		return nil, nil
	}
	var items []roomstore.BlockRecord
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, fmt.Errorf("boltstore: decode blocking list of %s: %w", key, err)
	}
	return items, nil
}

// indexKey is user + "\x00" + room: a NUL cannot occur in a JID, so the
// prefix of one user never matches another's.
func indexKey(user string, room []byte) []byte {
	k := make([]byte, 0, len(user)+1+len(room))
	k = append(k, user...)
	k = append(k, 0)
	return append(k, room...)
}

func roomKey(room xmpp.JID) []byte { return []byte(room.Bare().String()) }

// bareJID rebuilds a JID from the canonical bare text this store wrote; a
// localpart and a domain never contain '@', so no re-parsing is needed.
func bareJID(s string) xmpp.JID {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return xmpp.JID{Domain: s}
	}
	return xmpp.JID{Local: local, Domain: domain}
}

func domainOf(bare string) string { return bareJID(bare).Domain }

// config returns a fresh, never nil, copy of the stored configuration.
func (d roomDoc) config() roomstore.Config {
	c := make(roomstore.Config, len(d.Config))
	maps.Copy(c, d.Config)
	return c
}

// affs returns a fresh copy of the stored occupants.
func (d roomDoc) affs() []roomstore.Aff {
	out := make([]roomstore.Aff, len(d.Affs))
	for i, a := range d.Affs {
		out[i] = roomstore.Aff{User: bareJID(a.JID), Aff: a.Aff, Since: a.Since}
	}
	return out
}

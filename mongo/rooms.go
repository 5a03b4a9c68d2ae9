package mongo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// maxTries bounds the read-modify-write attempts of one change; only other
// processes writing the same document make an attempt fail, so running out
// means a pathological contention, reported as errContention.
const maxTries = 100

var (
	// errInvalidAffs refuses a stored list that would break the store's
	// invariants (a duplicate user, an affiliation other than owner or
	// member, an empty list at creation); it is a bug in the caller, not a
	// protocol answer.
	errInvalidAffs = errors.New("mongo: invalid affiliation list")
	errContention  = errors.New("mongo: the document kept changing under the write")
)

// roomDoc is the stored form of a room: _id is its bare JID, service its
// domain (the MUC service), config keyed by the schema's internal keys, and
// affiliations kept sorted by user JID.
type roomDoc struct {
	ID      string                `bson:"_id"`
	Service string                `bson:"service"`
	Config  roomstore.Config      `bson:"config"`
	Affs    []roomstore.AffRecord `bson:"affiliations"`
	Version string                `bson:"version"`
}

// Projections: reads fetch only the fields they return.
var (
	projAffs   = bson.D{{Key: "affiliations", Value: 1}, {Key: "version", Value: 1}}
	projConfig = bson.D{{Key: "config", Value: 1}, {Key: "version", Value: 1}}
	projID     = bson.D{{Key: "_id", Value: 1}}
	sortByID   = bson.D{{Key: "_id", Value: 1}}
)

// CreateRoom implements roomstore.Store: it takes a place for every occupant
// under caps.RoomsPerUser, then inserts the room, giving the places back if
// the insert fails (the room exists, the database is down).
func (s *Store) CreateRoom(ctx context.Context, room xmpp.JID, cfg roomstore.Config, affs []roomstore.Aff, version string, caps roomstore.Caps) error {
	key := roomKey(room)
	sorted := roomstore.SortAffs(affs)
	if len(sorted) == 0 {
		return fmt.Errorf("mongo: create room %s with no occupants: %w", key, errInvalidAffs)
	}
	if err := roomstore.CheckAffs(sorted, errInvalidAffs); err != nil {
		return fmt.Errorf("mongo: create room %s: %w", key, err)
	}
	doc := roomDoc{ID: key, Service: room.Domain, Config: cloneConfig(cfg), Affs: roomstore.AffRecords(sorted), Version: version}
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	var joined []xmpp.JID
	if s.counting(caps) {
		joined = roomstore.Joined(nil, sorted)
	}
	taken, err := s.takePlaces(ctx, room.Domain, joined, caps)
	if err != nil {
		return err
	}
	_, err = s.rooms.InsertOne(ctx, doc)
	if err == nil {
		return nil
	}
	if mongo.IsDuplicateKeyError(err) {
		err = fmt.Errorf("mongo: create room %s: %w", key, roomstore.ErrRoomExists)
	} else {
		err = fmt.Errorf("mongo: create room %s: %w", key, err)
	}
	return errors.Join(err, s.givePlaces(ctx, room.Domain, taken, caps))
}

// DestroyRoom implements roomstore.Store. When room counts are kept, the
// deleted document names the occupants whose counts then go down.
func (s *Store) DestroyRoom(ctx context.Context, room xmpp.JID, caps roomstore.Caps) error {
	key := roomKey(room)
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	if !s.counting(caps) {
		res, err := s.rooms.DeleteOne(ctx, byID(key))
		if err != nil {
			return fmt.Errorf("mongo: delete room %s: %w", key, err)
		}
		if res.DeletedCount == 0 {
			return notFound(key)
		}
		return nil
	}
	// FerretDB v1 refuses a projection on findAndModify: the whole document
	// comes back.
	var doc roomDoc
	err = s.rooms.FindOneAndDelete(ctx, byID(key)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return notFound(key)
	}
	if err != nil {
		return fmt.Errorf("mongo: delete room %s: %w", key, err)
	}
	former, err := doc.affs()
	if err != nil {
		return err
	}
	s.settlePlaces(ctx, room, roomstore.Left(former, nil), caps)
	return nil
}

// RoomExists implements roomstore.Store.
func (s *Store) RoomExists(ctx context.Context, room xmpp.JID) (bool, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return false, err
	}
	_, err = s.loadRoom(ctx, roomKey(room), projID)
	switch {
	case errors.Is(err, roomstore.ErrRoomNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// GetUserRooms implements roomstore.Store.
func (s *Store) GetUserRooms(ctx context.Context, user xmpp.JID, service string) ([]roomstore.RoomInfo, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	opts := options.Find().SetProjection(projConfig).SetSort(sortByID)
	cur, err := s.rooms.Find(ctx, userRoomsFilter(user, service), opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: list rooms of %s: %w", user.Bare(), err)
	}
	var docs []roomDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list rooms of %s: %w", user.Bare(), err)
	}
	var out []roomstore.RoomInfo
	for _, d := range docs {
		room, err := parseJID(d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, roomstore.RoomInfo{Room: room, Config: cloneConfig(d.Config), Version: d.Version})
	}
	return out, nil
}

// GetUserRoomsCount implements roomstore.Store.
func (s *Store) GetUserRoomsCount(ctx context.Context, user xmpp.JID, service string) (int, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return 0, err
	}
	n, err := s.rooms.CountDocuments(ctx, userRoomsFilter(user, service))
	if err != nil {
		return 0, fmt.Errorf("mongo: count rooms of %s: %w", user.Bare(), err)
	}
	return int(n), nil
}

// RemoveUser implements roomstore.Store, one conditional write per room, each
// bounded by its own operation timeout. Rooms the user has already left (or
// that vanished) by the time their write runs are not reported. A failure in
// one room does not stop the others; the failures are joined, and the
// blocking list is deleted regardless, unless ctx ended.
func (s *Store) RemoveUser(ctx context.Context, user xmpp.JID, service string, leave func(xmpp.JID) roomstore.AffChange, version func() string, caps roomstore.Caps) ([]roomstore.UserRemoval, error) {
	user = user.Bare()
	list, err := s.userRoomIDs(ctx, user, service)
	if err != nil {
		return nil, err
	}
	leaveRoom := func(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string) (roomstore.AffResult, bool, error) {
		return s.modifyAffs(ctx, room, change, version, caps)
	}
	out, errs, stopped := roomstore.LeaveRooms(ctx, "mongo", user, list, leave, version, leaveRoom)
	if stopped {
		return out, errors.Join(errs...)
	}
	// The user's counter went down with each room left; deleting it also
	// repairs one left high, as it is rebuilt from the rooms when needed.
	if err := s.forgetCount(ctx, user, service, caps); err != nil {
		errs = append(errs, err)
	}
	if err := s.deleteBlocking(ctx, user); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// userRoomIDs lists the rooms of service that user occupies, sorted.
func (s *Store) userRoomIDs(ctx context.Context, user xmpp.JID, service string) ([]xmpp.JID, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	opts := options.Find().SetProjection(projID).SetSort(sortByID)
	cur, err := s.rooms.Find(ctx, userRoomsFilter(user, service), opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: list rooms of %s: %w", user, err)
	}
	var docs []roomDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list rooms of %s: %w", user, err)
	}
	out := make([]xmpp.JID, 0, len(docs))
	for _, d := range docs {
		room, err := parseJID(d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, room)
	}
	return out, nil
}

// RemoveDomain implements roomstore.Store with one delete per collection; a
// failure leaves what the first delete did done, and calling it again
// finishes the job.
func (s *Store) RemoveDomain(ctx context.Context, domain, service string) error {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	if _, err := s.rooms.DeleteMany(ctx, bson.D{{Key: "service", Value: service}}); err != nil {
		return fmt.Errorf("mongo: delete rooms of %s: %w", service, err)
	}
	if _, err := s.counts.DeleteMany(ctx, bson.D{{Key: "service", Value: service}}); err != nil {
		return fmt.Errorf("mongo: delete room counts of %s: %w", service, err)
	}
	if _, err := s.blocking.DeleteMany(ctx, bson.D{{Key: "domain", Value: domain}}); err != nil {
		return fmt.Errorf("mongo: delete blocking lists of %s: %w", domain, err)
	}
	return nil
}

// GetConfig implements roomstore.Store.
func (s *Store) GetConfig(ctx context.Context, room xmpp.JID) (roomstore.Config, string, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, "", err
	}
	doc, err := s.loadRoom(ctx, roomKey(room), projConfig)
	if err != nil {
		return nil, "", err
	}
	return cloneConfig(doc.Config), doc.Version, nil
}

// SetConfig implements roomstore.Store as one findAndModify: the server merges
// the changed keys and returns the document as it was, so the previous
// version is exactly the one this write replaced and no retry is needed.
// Config keys are schema keys, which never contain '.' nor start with '$',
// so they can be field paths.
func (s *Store) SetConfig(ctx context.Context, room xmpp.JID, changes roomstore.Config, version string) (string, error) {
	key := roomKey(room)
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return "", err
	}
	set := bson.D{{Key: "version", Value: version}}
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		set = append(set, bson.E{Key: "config." + k, Value: changes[k]})
	}
	unlock, err := s.writers.lock(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	// FerretDB v1 refuses a projection ("fields") on findAndModify, so the
	// whole previous document comes back; only its version is decoded.
	opts := options.FindOneAndUpdate().SetReturnDocument(options.Before)
	var prev struct {
		Version string `bson:"version"`
	}
	err = s.rooms.FindOneAndUpdate(ctx, byID(key), bson.D{{Key: "$set", Value: set}}, opts).Decode(&prev)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", notFound(key)
	}
	if err != nil {
		return "", fmt.Errorf("mongo: set config of %s: %w", key, err)
	}
	return prev.Version, nil
}

// GetAffUsers implements roomstore.Store; occupants come sorted by user JID.
func (s *Store) GetAffUsers(ctx context.Context, room xmpp.JID) ([]roomstore.Aff, string, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, "", err
	}
	doc, err := s.loadRoom(ctx, roomKey(room), projAffs)
	if err != nil {
		return nil, "", err
	}
	affs, err := doc.affs()
	if err != nil {
		return nil, "", err
	}
	return affs, doc.Version, nil
}

// ModifyAffUsers implements roomstore.Store: read the room, apply change, and
// write the result only if the version is still the one read; otherwise
// read again and retry. change may therefore run more than once, which the
// AffChange contract allows. Places under caps.RoomsPerUser are taken for
// the users the change adds before the write and given back if it does not
// happen; those who leave give theirs back after it.
func (s *Store) ModifyAffUsers(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string, caps roomstore.Caps) (roomstore.AffResult, error) {
	res, _, err := s.modifyAffs(ctx, room, change, version, caps)
	return res, err
}

// modifyAffs is ModifyAffUsers that also says whether anything was written,
// which RemoveUser needs to leave out rooms the user had already left. An
// error from change is returned as it is.
func (s *Store) modifyAffs(ctx context.Context, room xmpp.JID, change roomstore.AffChange, version string, caps roomstore.Caps) (roomstore.AffResult, bool, error) {
	key := roomKey(room)
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return roomstore.AffResult{}, false, err
	}
	unlock, err := s.writers.lock(ctx, key)
	if err != nil {
		return roomstore.AffResult{}, false, err
	}
	defer unlock()
	for range maxTries {
		doc, err := s.loadRoom(ctx, key, projAffs)
		if err != nil {
			return roomstore.AffResult{}, false, err
		}
		cur, err := doc.affs()
		if err != nil {
			return roomstore.AffResult{}, false, err
		}
		next, err := change(slices.Clone(cur))
		if err != nil {
			return roomstore.AffResult{}, false, err
		}
		next = roomstore.SortAffs(next)
		if err := roomstore.CheckAffs(next, errInvalidAffs); err != nil {
			return roomstore.AffResult{}, false, fmt.Errorf("mongo: modify affiliations of %s: %w", key, err)
		}
		if roomstore.SameAffs(cur, next) {
			return roomstore.UnchangedAffs(cur, doc.Version), false, nil
		}
		var joined, left []xmpp.JID
		if s.counting(caps) {
			joined, left = roomstore.Joined(cur, next), roomstore.Left(cur, next)
		}
		taken, err := s.takePlaces(ctx, room.Domain, joined, caps)
		if err != nil {
			return roomstore.AffResult{}, false, err
		}
		written, err := s.writeAffs(ctx, key, doc.Version, next, version)
		if err != nil || !written {
			if err2 := s.givePlaces(ctx, room.Domain, taken, caps); err2 != nil || err != nil {
				return roomstore.AffResult{}, false, errors.Join(err, err2)
			}
			continue
		}
		s.settlePlaces(ctx, room, left, caps)
		if len(next) == 0 {
			return roomstore.AffResult{Old: cur, OldVersion: doc.Version, NewVersion: version}, true, nil
		}
		return roomstore.AffResult{Old: cur, New: next, OldVersion: doc.Version, NewVersion: version}, true, nil
	}
	return roomstore.AffResult{}, false, fmt.Errorf("mongo: modify affiliations of %s after %d tries: %w", key, maxTries, errContention)
}

// writeAffs writes next at version if the room is still at prev (deleting
// it when next is empty), and says whether it did.
func (s *Store) writeAffs(ctx context.Context, key, prev string, next []roomstore.Aff, version string) (bool, error) {
	cond := bson.D{{Key: "_id", Value: key}, {Key: "version", Value: prev}}
	if len(next) == 0 {
		res, err := s.rooms.DeleteOne(ctx, cond)
		if err != nil {
			return false, fmt.Errorf("mongo: delete room %s: %w", key, err)
		}
		return res.DeletedCount > 0, nil
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "affiliations", Value: roomstore.AffRecords(next)},
		{Key: "version", Value: version},
	}}}
	res, err := s.rooms.UpdateOne(ctx, cond, update)
	if err != nil {
		return false, fmt.Errorf("mongo: write room %s: %w", key, err)
	}
	return res.MatchedCount > 0, nil
}

// loadRoom reads the projected fields of a room, or fails with
// roomstore.ErrRoomNotFound.
func (s *Store) loadRoom(ctx context.Context, key string, projection bson.D) (roomDoc, error) {
	var doc roomDoc
	err := s.rooms.FindOne(ctx, byID(key), options.FindOne().SetProjection(projection)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, notFound(key)
	}
	if err != nil {
		return doc, fmt.Errorf("mongo: read room %s: %w", key, err)
	}
	return doc, nil
}

// userRoomsFilter matches the rooms of service with user among the
// occupants; the index on affiliations.jid serves it.
func userRoomsFilter(user xmpp.JID, service string) bson.D {
	return bson.D{
		{Key: "affiliations.jid", Value: user.Bare().String()},
		{Key: "service", Value: service},
	}
}

func byID(key string) bson.D { return bson.D{{Key: "_id", Value: key}} }

func roomKey(room xmpp.JID) string { return room.Bare().String() }

func notFound(key string) error {
	return fmt.Errorf("mongo: room %s: %w", key, roomstore.ErrRoomNotFound)
}

// parseJID reads back a JID this store wrote in canonical form.
func parseJID(s string) (xmpp.JID, error) {
	j, err := xmpp.ParseJID(s)
	if err != nil {
		return xmpp.JID{}, fmt.Errorf("mongo: stored JID %q: %w", s, err)
	}
	return j, nil
}

// cloneConfig returns a fresh, never nil, copy of a configuration.
func cloneConfig(c roomstore.Config) roomstore.Config {
	out := make(roomstore.Config, len(c))
	maps.Copy(out, c)
	return out
}

// affs decodes the stored occupants into a fresh list.
func (d roomDoc) affs() ([]roomstore.Aff, error) {
	out := make([]roomstore.Aff, len(d.Affs))
	for i, a := range d.Affs {
		user, err := parseJID(a.JID)
		if err != nil {
			return nil, fmt.Errorf("mongo: room %s: %w", d.ID, err)
		}
		out[i] = roomstore.Aff{User: user, Aff: a.Aff, Since: a.Since}
	}
	return out, nil
}

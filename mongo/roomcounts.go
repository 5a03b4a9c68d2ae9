package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// rooms_per_user across processes. Counting a user's rooms and then writing
// the room are two steps, and without multi-document transactions nothing
// joins them: two writers (two nodes) could both count two rooms under a cap
// of three. So each (user, service) has a counter document in
// user_room_counts, and a write that adds users to a room first takes one
// place for each with an atomic $inc on that one document, undone when it
// took n past the cap (takePlace): at most cap writers ever hold places.
// The room write follows; if it fails, or lost its version race, the places
// are given back. Users who leave a room (or whose room is destroyed) give
// theirs back after the room write.
//
// A counter that does not exist yet is built from the rooms (a user of data
// written before the counters, or after RemoveUser deleted them), so deleting
// a user's counter is always a safe repair: a crash between taking a place
// and writing the room leaves the counter one too high until then.
//
// Without a cap nothing needs the counters, and keeping them costs a write
// per room change, so a write keeps them when it carries a cap (the hub
// passes roomstore.Caps to every write that changes occupants, removals
// included, so a node with the cap keeps them from its first write) or once
// the collection is known to hold documents (countsUsed: found at Open, or
// built here); then writes without a cap keep them too, so that turning the
// cap off and on again finds them true. Dropping user_room_counts while the
// cap is off stops that cost. All nodes sharing a database must use the same
// rooms_per_user.
//
// FerretDB v1 applies an update by reading the document and writing it back
// from Go, so two concurrent increments can lose one; writers of one process
// hold the counter's stripe of s.counters while they update it. With several
// nodes only a server with atomic single-document updates (MongoDB) keeps
// the cap exact.

// roomCountDoc is how many rooms of Service the user occupies, or holds a
// place in while the room write is under way.
type roomCountDoc struct {
	ID      string `bson:"_id"` // countKey(user, service)
	User    string `bson:"user"`
	Service string `bson:"service"` // RemoveDomain deletes by it
	N       int    `bson:"n"`
}

// countKey is the user's bare JID and the service, separated by a space,
// which a JID cannot contain.
func countKey(user xmpp.JID, service string) string { return user.Bare().String() + " " + service }

func countKeys(users []xmpp.JID, service string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = countKey(u, service)
	}
	return out
}

// takePlaces takes one place under caps.RoomsPerUser for each of users
// (bare, sorted), who are about to join a room of service. It takes all or
// none: when some are at the cap it gives back what it took and fails with
// *roomstore.RoomCapError naming them. taken are the places to give back if the
// room write then fails. Without a cap it still counts, for the counters
// that exist, so that a cap turned on later finds them right.
func (s *Store) takePlaces(ctx context.Context, service string, users []xmpp.JID, caps roomstore.Caps) (taken []xmpp.JID, err error) {
	if len(users) == 0 || !s.counting(caps) {
		return nil, nil
	}
	keys := countKeys(users, service)
	unlock, err := s.counters.lockAll(ctx, keys)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if caps.RoomsPerUser <= 0 {
		if _, err := s.counts.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}, incN(1)); err != nil {
			return nil, fmt.Errorf("mongo: count rooms of %v: %w", users, err)
		}
		return users, nil
	}
	var full []xmpp.JID
	for i, u := range users {
		ok, err := s.takePlace(ctx, keys[i], u, service, caps.RoomsPerUser)
		if err == nil && !ok {
			full = append(full, u)
			continue
		}
		if err != nil {
			return nil, errors.Join(err, s.givePlacesLocked(ctx, service, taken))
		}
		taken = append(taken, u)
	}
	if len(full) > 0 {
		if err := s.givePlacesLocked(ctx, service, taken); err != nil {
			return nil, err
		}
		return nil, &roomstore.RoomCapError{Users: full}
	}
	return taken, nil
}

// counting says whether a write with caps must keep the counters.
func (s *Store) counting(caps roomstore.Caps) bool {
	return caps.RoomsPerUser > 0 || s.countsUsed.Load()
}

// takePlace takes one place for user if their count is under limit,
// building the counter from the rooms when it does not exist. The caller
// holds the counter's stripe.
//
// The increment is unconditional and undone when it went past limit: the
// filter names only _id, which FerretDB v1 looks up by key (a filter with
// more fields makes it scan the collection), and on MongoDB the increment
// is atomic, so a writer succeeds only if its own increment left n at most
// limit. Places held never exceed n, so never exceed limit; a writer racing
// another's undone increment may be refused while a place is free, never
// admitted while none is.
func (s *Store) takePlace(ctx context.Context, key string, user xmpp.JID, service string, limit int) (bool, error) {
	after := options.FindOneAndUpdate().SetReturnDocument(options.After)
	for range maxTries {
		var doc roomCountDoc
		err := s.counts.FindOneAndUpdate(ctx, byID(key), incN(1), after).Decode(&doc)
		switch {
		case err == nil && doc.N <= limit:
			return true, nil
		case err == nil:
			if _, err := s.counts.UpdateOne(ctx, byID(key), incN(-1)); err != nil {
				return false, fmt.Errorf("mongo: count rooms of %s: %w", user, err)
			}
			return false, nil
		case !errors.Is(err, mongo.ErrNoDocuments):
			return false, fmt.Errorf("mongo: count rooms of %s: %w", user, err)
		}
		n, err := s.rooms.CountDocuments(ctx, userRoomsFilter(user, service))
		if err != nil {
			return false, fmt.Errorf("mongo: count rooms of %s: %w", user, err)
		}
		s.countsUsed.Store(true)
		doc = roomCountDoc{ID: key, User: user.Bare().String(), Service: service, N: int(n)}
		ok := doc.N < limit
		if ok {
			doc.N++
		}
		_, err = s.counts.InsertOne(ctx, doc)
		switch {
		case mongo.IsDuplicateKeyError(err):
			continue // another process built it first: count on theirs
		case err != nil:
			return false, fmt.Errorf("mongo: count rooms of %s: %w", user, err)
		}
		return ok, nil
	}
	return false, fmt.Errorf("mongo: count rooms of %s after %d tries: %w", user, maxTries, errContention)
}

// givePlaces gives back one place for each of users in rooms of service:
// they left a room, or the write that took the place did not happen. It
// runs even when ctx has just been canceled (the room write it follows was
// done), bounded by the operation timeout; a counter never goes below zero.
func (s *Store) givePlaces(ctx context.Context, service string, users []xmpp.JID, caps roomstore.Caps) error {
	if len(users) == 0 || !s.counting(caps) {
		return nil
	}
	ctx, cancel := s.detached(ctx)
	defer cancel()
	unlock, err := s.counters.lockAll(ctx, countKeys(users, service))
	if err != nil {
		return err
	}
	defer unlock()
	return s.givePlacesLocked(ctx, service, users)
}

func (s *Store) givePlacesLocked(ctx context.Context, service string, users []xmpp.JID) error {
	if len(users) == 0 {
		return nil
	}
	ctx, cancel := s.detached(ctx)
	defer cancel()
	filter := bson.D{
		{Key: "_id", Value: bson.D{{Key: "$in", Value: countKeys(users, service)}}},
		{Key: "n", Value: bson.D{{Key: "$gt", Value: 0}}},
	}
	if _, err := s.counts.UpdateMany(ctx, filter, incN(-1)); err != nil {
		return fmt.Errorf("mongo: count rooms of %v: %w", users, err)
	}
	return nil
}

// settlePlaces gives back the places of users after a room write that has
// happened: the write stands whatever the counters do, so a failure here is
// logged rather than returned (the counter stays high, which refuses too
// much, never too little, until RemoveUser or an operator deletes it).
func (s *Store) settlePlaces(ctx context.Context, room xmpp.JID, users []xmpp.JID, caps roomstore.Caps) {
	if err := s.givePlaces(ctx, room.Domain, users, caps); err != nil {
		slog.Warn("mongo: room counters left high", "room", room.String(), "users", len(users), "err", err)
	}
}

// forgetCount deletes user's counter for service, so that the next write
// that needs it builds it again from the rooms.
func (s *Store) forgetCount(ctx context.Context, user xmpp.JID, service string, caps roomstore.Caps) error {
	if !s.counting(caps) {
		return nil
	}
	key := countKey(user, service)
	unlock, err := s.counters.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.counts.DeleteOne(ctx, byID(key)); err != nil {
		return fmt.Errorf("mongo: delete room count of %s: %w", user, err)
	}
	return nil
}

// detached is ctx without its cancellation, bounded by the operation
// timeout (or closeTimeout without one): for the writes that must follow
// one that happened.
func (s *Store) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.opTimeout
	if d <= 0 {
		d = closeTimeout
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

func incN(d int) bson.D { return bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: d}}}} }

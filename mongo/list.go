package mongo

import (
	"context"
	"fmt"
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/roomstore"
)

var _ roomstore.Lister = (*Store)(nil)

// ListRooms implements roomstore.Lister with one indexed range read on _id
// (the bare JID) after the cursor.
func (s *Store) ListRooms(ctx context.Context, q roomstore.ListQuery) ([]roomstore.RoomListing, error) {
	ctx, cancel, err := s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}}}
	if q.Service != "" {
		filter = append(filter, bson.E{Key: "service", Value: q.Service})
	}
	if q.NameContains != "" {
		filter = append(filter, bson.E{Key: "config." + roomstore.NameKey,
			Value: bson.Regex{Pattern: regexp.QuoteMeta(q.NameContains), Options: "i"}})
	}
	cur, err := s.rooms.Find(ctx, filter, options.Find().SetSort(sortByID).SetLimit(int64(max(q.Limit, 1))))
	if err != nil {
		return nil, fmt.Errorf("mongo: list rooms: %w", err)
	}
	var docs []roomDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list rooms: %w", err)
	}
	out := make([]roomstore.RoomListing, 0, len(docs))
	for _, d := range docs {
		j, err := parseJID(d.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, roomstore.RoomListing{JID: j, Config: cloneConfig(d.Config), Version: d.Version, Occupants: len(d.Affs)})
	}
	return out, nil
}

package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/roomstore"
)

var _ roomstore.Lister = (*Store)(nil)

// ListRooms implements roomstore.Lister: the rooms bucket is keyed by bare
// JID, so a cursor seek starts each page where the last one ended. Rooms of
// other services and names are skipped in the scan.
func (s *Store) ListRooms(ctx context.Context, q roomstore.ListQuery) ([]roomstore.RoomListing, error) {
	limit := max(q.Limit, 1)
	var out []roomstore.RoomListing
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRooms).Cursor()
		k, v := c.Seek([]byte(q.After))
		if k != nil && string(k) == q.After {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			j := bareJID(string(k))
			if q.Service != "" && j.Domain != q.Service {
				continue
			}
			var doc roomDoc
			if err := json.Unmarshal(v, &doc); err != nil {
				return fmt.Errorf("boltstore: decode room %s: %w", k, err)
			}
			if !roomstore.NameMatches(doc.Config, q.NameContains) {
				continue
			}
			out = append(out, roomstore.RoomListing{JID: j, Config: doc.Config, Version: doc.Version, Occupants: len(doc.Affs)})
		}
		return nil
	})
	return out, err
}

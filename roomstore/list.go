package roomstore

import (
	"context"
	"strings"

	"github.com/wschat/xmppws/xmpp"
)

// ListQuery asks for one page of rooms in the order of their bare JIDs (as
// strings, byte by byte): a keyset cursor, so that paging while rooms come
// and go never repeats or skips one that stayed.
type ListQuery struct {
	// Service restricts the list to one MUC Light service ("" for all).
	Service string
	// After is the last room of the previous page ("" from the start).
	After string
	// NameContains keeps the rooms whose roomname contains it, ignoring
	// case ("" keeps all).
	NameContains string
	// Limit is the most rooms returned (at least 1).
	Limit int
}

// RoomListing is one room of a page.
type RoomListing struct {
	JID       xmpp.JID
	Config    Config
	Version   string
	Occupants int
}

// Lister is a store that can page through every room: the admin API's
// listing. Both backends implement it.
type Lister interface {
	ListRooms(ctx context.Context, q ListQuery) ([]RoomListing, error)
}

// NameKey is the configuration key the name filter looks at.
const NameKey = "roomname"

// NameMatches is ListQuery.NameContains for a backend that filters rooms
// itself.
func NameMatches(cfg Config, contains string) bool {
	return contains == "" || strings.Contains(strings.ToLower(cfg[NameKey]), strings.ToLower(contains))
}

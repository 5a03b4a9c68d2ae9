package roomstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/wschat/xmppws/xmpp"
)

// Affiliation is a user's standing in a MUC Light room.
type Affiliation string

// The three affiliations of MUC Light; None appears only in changes and
// notifications, never in a stored list.
const (
	Owner  Affiliation = "owner"
	Member Affiliation = "member"
	None   Affiliation = "none"
)

// Aff is one occupant of a room. Since orders occupants by how long they
// have been in the room (unix nanoseconds of joining); the longest-standing
// member inherits ownership when the owner leaves.
type Aff struct {
	User  xmpp.JID    // bare
	Aff   Affiliation // Owner or Member
	Since int64
}

// Config is a room's configuration, keyed by the schema's internal keys.
// Values are stored in their canonical text form; the schema gives types.
type Config map[string]string

// RoomInfo is what a user's room list needs of each room.
type RoomInfo struct {
	Room    xmpp.JID
	Config  Config
	Version string
}

// BlockKind says what a blocking item names.
type BlockKind string

// Blocking item kinds.
const (
	BlockRoom BlockKind = "room"
	BlockUser BlockKind = "user"
)

// BlockItem is one entry of a user's blocking list (what they deny).
type BlockItem struct {
	Kind BlockKind
	JID  xmpp.JID // bare
}

// AffChange computes a room's next affiliation list from the stored one. It
// must be a pure function of its input: a store may call it again when a
// concurrent writer changed the room in between. Returning an error refuses
// the change and leaves the room untouched; returning the list unchanged
// (same users, same affiliations) is a no-op that keeps the version.
type AffChange func(current []Aff) ([]Aff, error)

// AffResult is a ModifyAffUsers outcome: the lists and versions before and
// after. When nothing changed, New equals Old and NewVersion equals OldVersion.
type AffResult struct {
	Old, New               []Aff
	OldVersion, NewVersion string
}

// UserRemoval is one room a removed user left, for the notifications that
// follow (RemoveUser); Destroyed when the user was its last occupant.
type UserRemoval struct {
	Room      xmpp.JID
	Result    AffResult
	Destroyed bool
}

// Errors a Store returns where the caller must decide.
var (
	ErrRoomExists   = errors.New("rooms: room already exists")
	ErrRoomNotFound = errors.New("rooms: no such room")
)

// Caps are the per-user limits a store checks in the same atomic step as a
// write that adds users to a room. Checked by the hub before the write, two
// writers (two room actors, two nodes) could both pass them. Writes that
// only take users out get them too, so that a store keeping counts for
// them (MongoDB) knows from the first write that it must.
type Caps struct {
	// RoomsPerUser caps the rooms of one MUC service a user may occupy
	// (0: unlimited). A write that would take a user past it is refused.
	RoomsPerUser int
}

// RoomCapError refuses a write that would add Users to a room although each
// already occupies Caps.RoomsPerUser rooms of its service. Nothing was
// written; the caller decides whether to retry without them.
type RoomCapError struct {
	Users []xmpp.JID // bare, sorted, never empty
}

func (e *RoomCapError) Error() string {
	return fmt.Sprintf("rooms: %v already occupy rooms_per_user rooms", e.Users)
}

// Store is where rooms live; the room hub is its only caller. Every method
// is one atomic change of one room (or one user's blocking list); a store
// never needs a multi-document transaction. Both backends (embedded and
// MongoDB) implement it and pass the same contract suite (roomstest).
type Store interface {
	// CreateRoom stores a new room, or fails with ErrRoomExists, or with
	// *RoomCapError when occupants of affs are at caps.RoomsPerUser.
	CreateRoom(ctx context.Context, room xmpp.JID, cfg Config, affs []Aff, version string, caps Caps) error
	// DestroyRoom deletes a room, or fails with ErrRoomNotFound. caps are
	// the limits in force, as for every write that changes who occupies a
	// room: a store may keep counts for them.
	DestroyRoom(ctx context.Context, room xmpp.JID, caps Caps) error
	// RoomExists reports whether a room is stored.
	RoomExists(ctx context.Context, room xmpp.JID) (bool, error)
	// GetUserRooms lists the rooms of a MUC service that user occupies,
	// sorted by room JID.
	GetUserRooms(ctx context.Context, user xmpp.JID, service string) ([]RoomInfo, error)
	// GetUserRoomsCount counts them.
	GetUserRoomsCount(ctx context.Context, user xmpp.JID, service string) (int, error)
	// RemoveUser takes user out of every room of the service (applying
	// leave to each room's list, with owner handover; a room left empty is
	// destroyed) and deletes their blocking list.
	RemoveUser(ctx context.Context, user xmpp.JID, service string, leave func(xmpp.JID) AffChange, version func() string, caps Caps) ([]UserRemoval, error)
	// RemoveDomain deletes every room of the service and the blocking lists
	// of the domain's users.
	RemoveDomain(ctx context.Context, domain, service string) error
	// GetConfig returns a room's configuration and version.
	GetConfig(ctx context.Context, room xmpp.JID) (Config, string, error)
	// SetConfig merges changes into the configuration and sets the new
	// version; it returns the previous version.
	SetConfig(ctx context.Context, room xmpp.JID, changes Config, version string) (string, error)
	// GetBlocking returns user's blocking list.
	GetBlocking(ctx context.Context, user xmpp.JID) ([]BlockItem, error)
	// SetBlocking adds (deny) and removes (allow) items of user's list.
	SetBlocking(ctx context.Context, user xmpp.JID, deny, allow []BlockItem) error
	// GetAffUsers returns a room's occupants and version.
	GetAffUsers(ctx context.Context, room xmpp.JID) ([]Aff, string, error)
	// ModifyAffUsers applies change to the stored list atomically and sets
	// version when the list changed. When the new list is empty the room is
	// destroyed (a room with no occupants does not exist). When users the
	// change adds are at caps.RoomsPerUser it writes nothing and fails with
	// *RoomCapError; users already in the room are never refused.
	ModifyAffUsers(ctx context.Context, room xmpp.JID, change AffChange, version string, caps Caps) (AffResult, error)
}

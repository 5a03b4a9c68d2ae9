package rooms

import (
	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/limits"
	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/muc"
	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// The names below are the service's public vocabulary, defined in the
// packages that own them (room, roomstore, archive, limits and the codecs)
// and kept here so that the server and the protocol tests speak one
// package.

// Store and its types (package roomstore).
type (
	Store        = roomstore.Store
	Aff          = roomstore.Aff
	Affiliation  = roomstore.Affiliation
	Config       = roomstore.Config
	Caps         = roomstore.Caps
	AffResult    = roomstore.AffResult
	AffChange    = roomstore.AffChange
	RoomInfo     = roomstore.RoomInfo
	BlockKind    = roomstore.BlockKind
	BlockItem    = roomstore.BlockItem
	BlockRecord  = roomstore.BlockRecord
	AffRecord    = roomstore.AffRecord
	RoomCapError = roomstore.RoomCapError
	UserRemoval  = roomstore.UserRemoval
)

// Affiliations and blocking kinds.
const (
	Owner     = roomstore.Owner
	Member    = roomstore.Member
	None      = roomstore.None
	BlockUser = roomstore.BlockUser
	BlockRoom = roomstore.BlockRoom
)

// Store errors and helpers.
var (
	ErrRoomNotFound   = roomstore.ErrRoomNotFound
	ErrRoomExists     = roomstore.ErrRoomExists
	StoreFunctions    = roomstore.StoreFunctions
	ArchiveFunctions  = roomstore.ArchiveFunctions
	InstrumentStore   = roomstore.InstrumentStore
	InstrumentArchive = roomstore.InstrumentArchive
)

// History (package archive).
type (
	Archive         = archive.Archive
	ArchivedMessage = archive.Message
	ArchiveQuery    = archive.Query
	ArchivePage     = archive.Page
)

// Archive id helpers.
var (
	ArchiveIDTime  = archive.IDTime
	ArchiveIDAt    = archive.IDAt
	ErrArchiveBusy = archive.ErrBusy
)

// Module options and the room schema (package room).
type (
	Options     = room.Options
	Schema      = room.Schema
	SchemaField = room.SchemaField
	FieldType   = room.FieldType
	MAMOptions  = roomhub.MAMOptions
	AffItem     = room.AffItem
)

// Field types of config_schema.
const (
	StringField  = room.StringField
	IntegerField = room.IntegerField
	FloatField   = room.FloatField
)

// Defaults.
var (
	DefaultOptions = room.DefaultOptions
	DefaultSchema  = room.DefaultSchema
	DefaultLimits  = limits.DefaultLimits
)

// Flood limits (package limits).
type (
	Limits       = limits.Limits
	RateOverride = limits.RateOverride
	Bucket       = limits.Bucket
)

// Caps on history queries, and the store and mailbox bounds.
const (
	DefaultMaxQueries        = limits.DefaultMaxQueries
	DefaultMaxQueriesPerRoom = limits.DefaultMaxQueriesPerRoom
	DefaultStoreTimeout      = roomhub.DefaultStoreTimeout
	DefaultMailboxSize       = roomhub.DefaultMailboxSize
)

// Limiter refusal reasons, as the metrics label them.
const (
	ReasonRate         = limits.ReasonRate
	ReasonTooLong      = limits.ReasonTooLong
	ReasonTooManyLines = limits.ReasonTooManyLines
	ReasonNickTooLong  = limits.ReasonNickTooLong
)

// NewBucket is a full token bucket.
var NewBucket = limits.NewBucket

// Namespaces of both dialects and of history.
const (
	NS              = muclight.NS
	NSCreate        = muclight.NSCreate
	NSDestroy       = muclight.NSDestroy
	NSConfiguration = muclight.NSConfiguration
	NSAffiliations  = muclight.NSAffiliations
	NSInfo          = muclight.NSInfo
	NSBlocking      = muclight.NSBlocking
	NSMUC           = muc.NS
	NSMUCUser       = muc.NSUser
	NSMUCOwner      = muc.NSOwner
	NSMUCAdmin      = muc.NSAdmin
	NSPrivacy       = "jabber:iq:privacy"
	NSMAM2          = mam.NS2
	NSMAM1          = mam.NS1
	NSSID           = mam.NSSID
	NSForward       = mam.NSForwd
)

// Deliverer hands a stanza to whoever serves a JID (every session of a bare
// JID, or one full JID) without blocking, and reports whether anyone took it.
type Deliverer interface {
	Deliver(to xmpp.JID, out *xmpp.Outbound) bool
	// DeliverPaced is Deliver for a stanza that the session of cause (a
	// full JID) made the server send, such as a groupchat fan-out: when a
	// recipient's backlog is above its high-water mark, cause's session is
	// slowed instead of anyone being dropped. It never blocks the caller.
	DeliverPaced(cause, to xmpp.JID, out *xmpp.Outbound) bool
}

// ExceptDeliverer is a Deliverer that names sessions by bind epoch as well
// as full JID: it can leave out of a user's delivery the sessions that get
// the same event in the other dialect, and deliver to one session and not
// to a newer one that took its resource (which has not entered the room).
// Without it, native sessions of users who also entered with XEP-0045 get
// both forms.
type ExceptDeliverer interface {
	DeliverExcept(to xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) bool
	DeliverPacedExcept(cause, to xmpp.JID, except []xmpp.SessionRef, out *xmpp.Outbound) bool
	DeliverSession(s xmpp.SessionRef, out *xmpp.Outbound) bool
}

package room

import (
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// Store types the core works with, named here so that codecs need import
// only this package.
type (
	// Aff is one occupant and their affiliation, as stored.
	Aff = roomstore.Aff
	// Affiliation is owner, member or none.
	Affiliation = roomstore.Affiliation
	// AffResult is an applied affiliation change: lists and versions
	// before and after.
	AffResult = roomstore.AffResult
	// Config is a room's configuration by internal key.
	Config = roomstore.Config
	// AffChange computes a new occupant list inside a store write.
	AffChange = roomstore.AffChange
)

// The affiliations of MUC Light.
const (
	Owner  = roomstore.Owner
	Member = roomstore.Member
	None   = roomstore.None
)

// Dialect is the protocol a request came in and its answer goes out in.
type Dialect uint8

const (
	// MUCLight is urn:xmpp:muclight:0, the native protocol.
	MUCLight Dialect = iota
	// MUC is the XEP-0045 subset.
	MUC
)

// MarshalText names the dialect on the wire.
func (d Dialect) MarshalText() ([]byte, error) {
	switch d {
	case MUC:
		return []byte("muc"), nil
	case MUCLight:
		return []byte("muclight"), nil
	}
	return nil, &wireError{"unknown dialect"}
}

// UnmarshalText reads a dialect name written by MarshalText.
func (d *Dialect) UnmarshalText(b []byte) error {
	switch string(b) {
	case "muc":
		*d = MUC
	case "muclight", "":
		*d = MUCLight
	default:
		return &wireError{"unknown dialect " + string(b)}
	}
	return nil
}

// Origin is who asked, and how the answer must look: everything a codec
// needs to render a reply or an error bounce without the original stanza.
// It is zero for internal requests (nobody to answer).
type Origin struct {
	// From is the requester's full JID.
	From xmpp.JID `json:"from"`
	// Session is the requester's bind epoch (xmpp.Stanza.Session): it tells
	// a session from an older one with the same full JID.
	Session uint64 `json:"session,omitempty"`
	// ID is the stanza id: the reply's id and the notifications' id.
	ID string `json:"id,omitempty"`
	// To is the address as the requester wrote it; a reply comes from it.
	To xmpp.JID `json:"to"`
	// Kind is message, presence or iq: the form of an error reply.
	Kind string `json:"kind"`
	// Dialect picks the codec that renders the reply.
	Dialect Dialect `json:"dialect"`
	// Echo is the request's children as received (self-contained XML), so
	// an error bounce carries them back.
	Echo []byte `json:"echo,omitempty"`
	// Node is the cluster node whose session sent the request, where its
	// reply goes; empty on one node.
	Node string `json:"node,omitempty"`
}

// Internal reports whether nobody asked: no reply is due.
func (o Origin) Internal() bool { return o.From.IsZero() }

// Field is one configuration field by its wire name.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// AffItem is one requested or announced affiliation: a user and what they
// become (None: leaves the room).
type AffItem struct {
	User xmpp.JID    `json:"user"`
	Aff  Affiliation `json:"aff"`
}

// Request is one decoded request for a room actor. Every request is plain
// data: it can be serialised (wire.go) and handled on another node.
type Request interface {
	// Head is the room and the origin every request carries.
	Header() *Head
}

// Head is what every request carries.
type Head struct {
	Room   xmpp.JID `json:"room"`
	Origin Origin   `json:"origin"`
}

// Head implements Request for every type that embeds it.
func (h *Head) Header() *Head { return h }

// Create makes a room: its configuration and first occupants besides the
// creator.
type Create struct {
	Head
	Fields []Field   `json:"fields,omitempty"`
	Items  []AffItem `json:"items,omitempty"`
	// Generated is set when the server chose the room's name: the answer
	// then comes from the service, not the room.
	Generated bool `json:"generated,omitempty"`
}

// Post is a groupchat message to the room, the same in both dialects.
type Post struct {
	Head
	// Body is the message body, for the flood limiter only.
	Body string `json:"body,omitempty"`
	// Payload is the message's children as received (self-contained XML),
	// client-supplied stanza-ids and occupant-ids removed, the sender's
	// occupant-id added. The core never parses it.
	Payload []byte `json:"payload,omitempty"`
	// Occupant is the sender's occupant id (XEP-0421), as the codec put it
	// in the payload.
	Occupant string `json:"occupant,omitempty"`
	// MsgID is the message's own id, kept so a correction can name it
	// (XEP-0308); Origin.ID as sent.
	MsgID string `json:"msgid,omitempty"`
	// At most one of the fastenings below is set, decoded by the codec.
	// Replace is the client id of the message this one corrects.
	Replace string `json:"replace,omitempty"`
	// Retract is the stanza-id of the author's message retracted.
	Retract string `json:"retract,omitempty"`
	// React is the sender's new set of reactions to a message.
	React *React `json:"react,omitempty"`
	// Displayed is the stanza-id the sender has read up to (XEP-0333): the
	// message is a marker, stored and not delivered.
	Displayed string `json:"displayed,omitempty"`
}

// React is a XEP-0444 reactions element: a user's whole set for the
// message with stanza-id ID.
type React struct {
	ID     string   `json:"id"`
	Emojis []string `json:"emojis,omitempty"`
}

// Moderate is a XEP-0425 moderation: an owner retracts the message with
// stanza-id ID.
type Moderate struct {
	Head
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
	// Payload is the room's announcement's children, built by the codec
	// (the core frames it and adds the stanza-id).
	Payload []byte `json:"payload,omitempty"`
	// Occupant is the moderator's occupant id, for the tombstone.
	Occupant string `json:"occupant,omitempty"`
}

// SetConfig changes configuration fields (the subject is one of them).
type SetConfig struct {
	Head
	Fields []Field `json:"fields"`
}

// ChangeAffs changes affiliations.
type ChangeAffs struct {
	Head
	Items []AffItem `json:"items"`
}

// Destroy removes the room and its history.
type Destroy struct{ Head }

// GetConfig asks for the configuration; an equal Version gets Unchanged.
type GetConfig struct {
	Head
	Version string `json:"version,omitempty"`
}

// GetAffs asks for the affiliations; List restricts the answer to one
// affiliation (the XEP-0045 owner or member list), empty for all.
type GetAffs struct {
	Head
	Version string      `json:"version,omitempty"`
	List    Affiliation `json:"list,omitempty"`
}

// GetInfo asks for the configuration and the occupants at once.
type GetInfo struct {
	Head
	Version string `json:"version,omitempty"`
}

// QueryHistory is an archive query (XEP-0313).
type QueryHistory struct {
	Head
	Query archive.Query `json:"query"`
	// QueryID, NS, Flip and CountOnly are how the client asked: the codec
	// answers with them.
	QueryID   string `json:"queryid,omitempty"`
	NS        string `json:"ns"`
	Flip      bool   `json:"flip,omitempty"`
	CountOnly bool   `json:"count_only,omitempty"`
}

// Join enters the room as a XEP-0045 occupant (creating a missing room, as
// a XEP-0045 join does).
type Join struct {
	Head
	Nick string `json:"nick"`
}

// LeaveReason says why an occupant left.
type LeaveReason string

// Why occupants leave.
const (
	LeftUnavailable  LeaveReason = "unavailable"  // it said so
	LeftDisconnected LeaveReason = "disconnected" // its session ended
	LeftRemoved      LeaveReason = "removed"      // it lost its affiliation
	LeftDestroyed    LeaveReason = "destroyed"    // the room went
)

// Leave ends a XEP-0045 occupancy. Occupant and Session name the entry; a
// Leave whose Session differs from the entry's is stale and ignored.
type Leave struct {
	Head
	Occupant xmpp.JID    `json:"occupant"`
	Session  uint64      `json:"session,omitempty"`
	Reason   LeaveReason `json:"reason"`
}

// Ping is a XEP-0199 ping of the room: an empty result to an occupant.
type Ping struct{ Head }

// AcceptDefaults accepts the configuration as it is (a XEP-0045 instant
// room): an empty result to an occupant.
type AcceptDefaults struct{ Head }

// Removed tells the actor that the store took a user out of the room behind
// its back (user or domain deletion). It has no origin.
type Removed struct {
	Head
	Result AffResult `json:"result"`
	// NoticeID is the id of the notifications.
	NoticeID string `json:"notice_id,omitempty"`
}

// Reply is the actor's answer to one request, for Origin.From.
type Reply struct {
	Room   xmpp.JID `json:"room"`
	Origin Origin   `json:"origin"`
	// Op names the request answered (its wire type name).
	Op  string `json:"op"`
	Err *Error `json:"err,omitempty"`
	// Unchanged answers a get whose version the requester has.
	Unchanged bool   `json:"unchanged,omitempty"`
	Version   string `json:"version,omitempty"`
	// Config is the full configuration (GetConfig, GetInfo), Name the
	// room's display name, Affs the occupants (GetAffs, GetInfo).
	Config []Field     `json:"config,omitempty"`
	Name   string      `json:"name,omitempty"`
	Affs   []AffItem   `json:"affs,omitempty"`
	List   Affiliation `json:"list,omitempty"`
	// Generated: a create with a server-chosen name (the answer comes from
	// the service).
	Generated bool `json:"generated,omitempty"`
	// History is a history query's page.
	History *History `json:"history,omitempty"`
}

// History is an answered archive query.
type History struct {
	QueryID   string `json:"queryid,omitempty"`
	NS        string `json:"ns"`
	Flip      bool   `json:"flip,omitempty"`
	CountOnly bool   `json:"count_only,omitempty"`
	// Summary: results carry their folded edit and reactions.
	Summary bool         `json:"summary,omitempty"`
	Page    archive.Page `json:"page"`
}

// Occupant is one XEP-0045 session in a room.
type Occupant struct {
	JID     xmpp.JID `json:"jid"` // full
	Session uint64   `json:"session,omitempty"`
	Nick    string   `json:"nick"`
}

// Event is what the actor tells the edges after it applied a rule. Events
// are plain data; renderers turn them into each dialect's stanzas.
type Event interface {
	// EventHead is the room, the origin and the XEP-0045 occupants.
	EventHeader() *EventHead
}

// EventHead is what every event carries.
type EventHead struct {
	Room   xmpp.JID `json:"room"`
	Origin Origin   `json:"origin"`
	// MUC lists the room's XEP-0045 sessions when the event happened:
	// they get the event in XEP-0045 form, everyone else in MUC Light's.
	MUC []Occupant `json:"muc,omitempty"`
}

// EventHead implements Event for every type that embeds it.
func (h *EventHead) EventHeader() *EventHead { return h }

// Posted is an accepted groupchat message, archived when history is on.
type Posted struct {
	EventHead
	Sender    xmpp.JID  `json:"sender"` // bare
	ArchiveID string    `json:"archive_id,omitempty"`
	Time      time.Time `json:"time"`
	// Stanza is the message as every occupant gets it, without 'to'.
	Stanza   []byte `json:"stanza"`
	Audience []Aff  `json:"audience"`

	out *xmpp.Outbound // Stanza, built once for every delivery
}

// Outbound is the message ready for delivery, built once per message.
func (p *Posted) Outbound() *xmpp.Outbound {
	if p.out == nil {
		p.out = xmpp.OutboundBytes(xmpp.KindMessage, p.Stanza)
	}
	return p.out
}

// AffsChanged is an applied affiliation change (a create included).
type AffsChanged struct {
	EventHead
	Old         []Aff  `json:"old,omitempty"`
	New         []Aff  `json:"new,omitempty"`
	PrevVersion string `json:"prev_version,omitempty"`
	Version     string `json:"version"`
	// NoticeID is the archive id of the archived notification ("" when
	// history is off).
	NoticeID string `json:"notice_id,omitempty"`
	// By is who made the change (zero: the server).
	By xmpp.JID `json:"by"`
	// Created: the change created the room.
	Created bool `json:"created,omitempty"`
}

// ConfigChanged is an applied configuration change.
type ConfigChanged struct {
	EventHead
	Changed     []Field  `json:"changed"`
	PrevVersion string   `json:"prev_version,omitempty"`
	Version     string   `json:"version"`
	By          xmpp.JID `json:"by"`
	Audience    []Aff    `json:"audience"`
}

// Destroyed is a destroyed room; Former are its last occupants.
type Destroyed struct {
	EventHead
	Former []Aff `json:"former"`
}

// OccupantJoined is a XEP-0045 session entering the room.
type OccupantJoined struct {
	EventHead
	Occupant Occupant    `json:"occupant"`
	Aff      Affiliation `json:"aff"`
	Affs     []Aff       `json:"affs"`
	Subject  string      `json:"subject,omitempty"`
	// Created: the join created the room.
	Created bool `json:"created,omitempty"`
}

// OccupantLeft is a XEP-0045 session leaving the room.
type OccupantLeft struct {
	EventHead
	Occupant Occupant    `json:"occupant"`
	Aff      Affiliation `json:"aff"`
	Reason   LeaveReason `json:"reason"`
}

// OriginOf is the origin of a stanza received in the given dialect; its
// children are kept (serialised) for an error bounce.
func OriginOf(st *xmpp.Stanza, d Dialect) Origin {
	return Origin{From: st.From, Session: st.Session, ID: st.ID, To: st.To, Kind: st.Kind, Dialect: d,
		Echo: xmpp.AppendChildren(nil, st.El)}
}

// Package room is the room core: one actor per room that handles the
// room's requests in order and applies MUC Light's rules (affiliations,
// configuration, blocking, rooms_per_user, the flood limiter, history),
// with the store as the truth.
//
// Requests come in as plain data (Create, Post, ChangeAffs, …) that codecs
// decoded from either dialect; the actor answers each with a Reply and
// tells what changed with Events (Posted, AffsChanged, …), both plain data
// that can cross the network (wire.go). Rendering them as stanzas is the
// codecs' work, delivering them the edges'.
//
// It must never parse or build XML (beyond framing an opaque groupchat
// payload once), import a codec, block on a session, or keep per-session
// state beyond a room's bounded set of XEP-0045 occupants.
package room

// Package rooms is the group-chat service: MongooseIM's MUC Light protocol
// (urn:xmpp:muclight:0) served by a hub of room actors, and the Store
// interface its backends implement.
//
// Each active room is owned by one goroutine that handles the room's
// requests in order (create, config, affiliations, destroy, groupchat), so
// room state needs no locks and, later, a room can be owned by one node of a
// cluster. Rooms deliver through the Deliverer interface, by JID, and never
// touch sessions directly. The store is the truth: a room actor may be
// unloaded at any time and rebuilt from it.
//
// The package must never block a room on a slow recipient, never keep rooms
// in package variables, and never answer a failed store call with silence.
package rooms

// Package muclight is the MUC Light codec (urn:xmpp:muclight:0): it decodes
// the native room requests into the room core's plain requests and renders
// the core's replies and events as MUC Light stanzas.
//
// It must never call the store or the archive, decide a room rule or keep
// state between stanzas: what a request means is the core's to decide, what
// it looks like on the wire is this package's.
package muclight

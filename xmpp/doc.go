// Package xmpp is the shared XMPP vocabulary of the server: JIDs, namespaces,
// stanza and stream error conditions, and the parsing and serialising of the
// single top-level elements that RFC 7395 frames one per WebSocket message.
//
// Every other package may import it; it imports nothing of this module, holds
// no state, and never does I/O beyond the byte slices it is handed.
package xmpp

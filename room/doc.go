// Package room is the vocabulary of the room core as plain data: the
// requests the codecs decode (Create, Post, ChangeAffs, …), the replies and
// events the room actor answers with (Reply, Posted, AffsChanged, …), their
// JSON wire form for other nodes (wire.go), and MUC Light's rules as pure
// functions (affiliation changes, the configuration schema, the module
// options).
//
// It must never do I/O, keep state, parse or build XML (beyond framing an
// opaque groupchat payload once), or import a codec or the actor: codecs
// and the actor (package roomhub) both depend on it, and it on neither.
package room

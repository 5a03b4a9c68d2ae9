// Package roomstore is the contract between the room core and its storage
// backends (boltstore, mongo): the Store interface, the stored types, the
// helpers both backends share and the metrics wrapper that instruments any
// store or archive.
//
// It must never know a protocol: no XML, no stanza, no rule of MUC Light
// beyond what a write must check atomically (rooms_per_user).
package roomstore

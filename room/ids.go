package room

import (
	"crypto/rand"
	"encoding/hex"
)

// NewVersion generates a room version: opaque, unique per change.
func NewVersion() string { return RandomHex(8) }

// NewRoomName generates a unique room node for a create with a generated
// name.
func NewRoomName() string { return RandomHex(8) }

// RandomHex is n random bytes in hex: ids and versions.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

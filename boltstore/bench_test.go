package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/rooms/roomstest"
)

// The benchmarks are roomstest's, run under the same names by the MongoDB
// backend, so the two backends can be compared with benchstat.

func benchStore(b *testing.B) rooms.Store { return openTemp(b) }

func BenchmarkCreateRoom(b *testing.B)       { roomstest.BenchCreateRoom(b, benchStore) }
func BenchmarkCreateRoomCapped(b *testing.B) { roomstest.BenchCreateRoomCapped(b, benchStore) }
func BenchmarkModifyAffUsers(b *testing.B)   { roomstest.BenchModifyAffUsers(b, benchStore) }
func BenchmarkGetUserRooms(b *testing.B)     { roomstest.BenchGetUserRooms(b, benchStore) }

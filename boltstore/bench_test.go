package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
)

// The benchmarks are roomstest's, run under the same names by the MongoDB
// backend, so the two backends can be compared with benchstat.

func benchStore(b *testing.B) roomstore.Store { return openTemp(b) }

func BenchmarkCreateRoom(b *testing.B)       { roomstoretest.BenchCreateRoom(b, benchStore) }
func BenchmarkCreateRoomCapped(b *testing.B) { roomstoretest.BenchCreateRoomCapped(b, benchStore) }
func BenchmarkModifyAffUsers(b *testing.B)   { roomstoretest.BenchModifyAffUsers(b, benchStore) }
func BenchmarkGetUserRooms(b *testing.B)     { roomstoretest.BenchGetUserRooms(b, benchStore) }

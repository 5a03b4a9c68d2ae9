package mongo

import (
	"testing"

	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
)

// The benchmarks are roomstest's, run under the same names by boltstore, so
// the two backends can be compared with benchstat. They run against
// MONGODB_URI when it is set, otherwise against the embedded FerretDB
// (SQLite), whose figures measure FerretDB as much as this package.

func benchStore(b *testing.B) roomstore.Store { return openTemp(b, mongotest.URI(b)) }

func BenchmarkCreateRoom(b *testing.B)       { roomstoretest.BenchCreateRoom(b, benchStore) }
func BenchmarkCreateRoomCapped(b *testing.B) { roomstoretest.BenchCreateRoomCapped(b, benchStore) }
func BenchmarkModifyAffUsers(b *testing.B)   { roomstoretest.BenchModifyAffUsers(b, benchStore) }
func BenchmarkGetUserRooms(b *testing.B)     { roomstoretest.BenchGetUserRooms(b, benchStore) }

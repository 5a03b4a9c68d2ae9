package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/rooms/roomstest"
)

// The archive benchmarks are roomstest's, run under the same names by the
// MongoDB backend. Here each appended batch is one transaction and one
// fsync.

func benchArchive(b *testing.B) rooms.Archive { return openTemp(b).Archive() }

func BenchmarkArchiveAppend(b *testing.B) { roomstest.BenchArchiveAppend(b, benchArchive) }
func BenchmarkArchiveQuery(b *testing.B)  { roomstest.BenchArchiveQuery(b, benchArchive) }

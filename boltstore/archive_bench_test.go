package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
)

// The archive benchmarks are roomstest's, run under the same names by the
// MongoDB backend. Here each appended batch is one transaction and one
// fsync.

func benchArchive(b *testing.B) archive.Archive { return openTemp(b).Archive() }

func BenchmarkArchiveAppend(b *testing.B) { roomstoretest.BenchArchiveAppend(b, benchArchive) }
func BenchmarkArchiveQuery(b *testing.B)  { roomstoretest.BenchArchiveQuery(b, benchArchive) }

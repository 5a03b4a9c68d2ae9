package mongo

import (
	"testing"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
)

// The archive benchmarks are roomstest's, run under the same names by
// boltstore. Here each appended batch is one InsertMany; against the
// embedded FerretDB they measure FerretDB as much as this package.

func benchArchive(b *testing.B) archive.Archive { return openTemp(b, mongotest.URI(b)).Archive() }

func BenchmarkArchiveAppend(b *testing.B) { roomstoretest.BenchArchiveAppend(b, benchArchive) }
func BenchmarkArchiveQuery(b *testing.B)  { roomstoretest.BenchArchiveQuery(b, benchArchive) }

package boltstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// These mirror the MongoDB backend's archive benchmarks of the same names.

// archiveBenchStanza is a groupchat message of 400 bytes, about the size of
// a short chat line once serialised.
var archiveBenchStanza = func() []byte {
	head := `<message from='room000000@muc.a.test/user001' type='groupchat' xmlns='jabber:client'><body>`
	tail := `</body></message>`
	return []byte(head + strings.Repeat("x", 400-len(head)-len(tail)) + tail)
}()

var archiveBenchT0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// archiveBenchBatch fills msgs with the messages numbered from i on, a
// microsecond apart.
func archiveBenchBatch(msgs []rooms.ArchivedMessage, room xmpp.JID, i int) {
	for j := range msgs {
		at := archiveBenchT0.Add(time.Duration(i+j) * time.Microsecond)
		msgs[j] = rooms.ArchivedMessage{
			Room:   room,
			ID:     fmt.Sprintf("%016x%04x", at.UnixMicro(), 0),
			Time:   at,
			Sender: benchUser(j % 10),
			Stanza: archiveBenchStanza,
		}
	}
}

// BenchmarkArchiveAppend appends batches to one room; each batch is one
// transaction and one fsync.
func BenchmarkArchiveAppend(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			a := benchStore(b).Archive()
			ctx := context.Background()
			room := benchRoom(0)
			msgs := make([]rooms.ArchivedMessage, size)
			b.ReportAllocs()
			b.SetBytes(int64(size * len(archiveBenchStanza)))
			i := 0
			for b.Loop() {
				archiveBenchBatch(msgs, room, i)
				if err := a.Append(ctx, msgs); err != nil {
					b.Fatal(err)
				}
				i += size
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkArchiveQuery fetches the last page of 50 from a room of 10,000
// messages, with the count.
func BenchmarkArchiveQuery(b *testing.B) {
	const total, page = 10000, 50
	a := benchStore(b).Archive()
	ctx := context.Background()
	room := benchRoom(0)
	msgs := make([]rooms.ArchivedMessage, 500)
	for i := 0; i < total; i += len(msgs) {
		archiveBenchBatch(msgs, room, i)
		if err := a.Append(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	q := rooms.ArchiveQuery{Room: room, Max: page, Last: true}
	b.ReportAllocs()
	for b.Loop() {
		p, err := a.Query(ctx, q)
		if err != nil || len(p.Messages) != page || p.Count != total {
			b.Fatalf("Query = %d messages, count %d, %v", len(p.Messages), p.Count, err)
		}
	}
}

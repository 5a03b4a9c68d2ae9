package roomstoretest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// The benchmarks below are the bodies of both backends' Benchmark functions,
// which keep the same names in each package so that the two can be compared
// with benchstat. open must return a new, empty store (or archive) and
// arrange (with b.Cleanup) for it to be closed; it is called before the
// timed loop.

const benchService = "muc.a.test"

func benchUser(i int) xmpp.JID { return xmpp.JID{Local: fmt.Sprintf("user%03d", i), Domain: "a.test"} }

func benchRoom(i int) xmpp.JID {
	return xmpp.JID{Local: fmt.Sprintf("room%06d", i), Domain: benchService}
}

func benchConfig() roomstore.Config {
	return roomstore.Config{"roomname": "Bench room", "subject": "benchmarks", "description": "a room to measure"}
}

// BenchCreateRoom creates rooms of two occupants.
func BenchCreateRoom(b *testing.B, open func(b *testing.B) roomstore.Store) {
	benchCreateRoom(b, open, roomstore.Caps{}, 1)
}

// BenchCreateRoomCapped is BenchCreateRoom under a rooms_per_user cap that
// is never reached: the price of checking it once each user's count exists.
// The rooms go to 100 pairs of users in turn, so that each user's count
// stays small, as a cap keeps it.
func BenchCreateRoomCapped(b *testing.B, open func(b *testing.B) roomstore.Store) {
	benchCreateRoom(b, open, roomstore.Caps{RoomsPerUser: 1 << 30}, 100)
}

func benchCreateRoom(b *testing.B, open func(b *testing.B) roomstore.Store, caps roomstore.Caps, pairs int) {
	s := open(b)
	ctx := context.Background()
	affs := make([][]roomstore.Aff, pairs)
	for p := range affs {
		affs[p] = []roomstore.Aff{{User: benchUser(2 * p), Aff: roomstore.Owner, Since: 1}, {User: benchUser(2*p + 1), Aff: roomstore.Member, Since: 2}}
	}
	cfg := benchConfig()
	if caps.RoomsPerUser > 0 {
		// Each user's first capped write builds their count (on MongoDB
		// from the rooms); the timed loop measures the writes after it.
		for p := range affs {
			warm := xmpp.JID{Local: fmt.Sprintf("warm%03d", p), Domain: benchService}
			if err := s.CreateRoom(ctx, warm, cfg, affs[p], "v1", caps); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.CreateRoom(ctx, benchRoom(i), cfg, affs[i%pairs], "v1", caps); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchModifyAffUsers adds one user to a room of 50 and removes them again:
// two changes per iteration.
func BenchModifyAffUsers(b *testing.B, open func(b *testing.B) roomstore.Store) {
	s := open(b)
	ctx := context.Background()
	room := benchRoom(0)
	affs := make([]roomstore.Aff, 50)
	for i := range affs {
		affs[i] = roomstore.Aff{User: benchUser(i), Aff: roomstore.Member, Since: int64(i)}
	}
	affs[0].Aff = roomstore.Owner
	if err := s.CreateRoom(ctx, room, benchConfig(), affs, "v0", roomstore.Caps{}); err != nil {
		b.Fatal(err)
	}
	newcomer := benchUser(999)
	add := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		return append(cur, roomstore.Aff{User: newcomer, Aff: roomstore.Member, Since: 1000}), nil
	}
	remove := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		return slices.DeleteFunc(cur, func(a roomstore.Aff) bool { return a.User == newcomer }), nil
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.ModifyAffUsers(ctx, room, add, fmt.Sprintf("a%d", i), roomstore.Caps{}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ModifyAffUsers(ctx, room, remove, fmt.Sprintf("r%d", i), roomstore.Caps{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchGetUserRooms lists the 20 rooms a user occupies.
func BenchGetUserRooms(b *testing.B, open func(b *testing.B) roomstore.Store) {
	s := open(b)
	ctx := context.Background()
	user := benchUser(0)
	for i := range 20 {
		affs := []roomstore.Aff{{User: user, Aff: roomstore.Owner, Since: 1}}
		for j := 1; j < 5; j++ {
			affs = append(affs, roomstore.Aff{User: benchUser(i*5 + j), Aff: roomstore.Member, Since: int64(j)})
		}
		if err := s.CreateRoom(ctx, benchRoom(i), benchConfig(), affs, "v1", roomstore.Caps{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		infos, err := s.GetUserRooms(ctx, user, benchService)
		if err != nil || len(infos) != 20 {
			b.Fatalf("GetUserRooms = %d rooms, %v", len(infos), err)
		}
	}
}

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
func archiveBenchBatch(msgs []archive.Message, room xmpp.JID, i int) {
	for j := range msgs {
		at := archiveBenchT0.Add(time.Duration(i+j) * time.Microsecond)
		msgs[j] = archive.Message{
			Room:   room,
			ID:     fmt.Sprintf("%016x%04x", at.UnixMicro(), 0),
			Time:   at,
			Sender: benchUser(j % 10),
			Stanza: archiveBenchStanza,
		}
	}
}

// BenchArchiveAppend appends batches to one room, in sub-benchmarks
// batch=1 and batch=64 (a fresh archive each); it reports msgs/s besides
// the bytes of stanza per second.
func BenchArchiveAppend(b *testing.B, open func(b *testing.B) archive.Archive) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			a := open(b)
			ctx := context.Background()
			room := benchRoom(0)
			msgs := make([]archive.Message, size)
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

// BenchArchiveQuery fetches the last page of 50 from a room of 10,000
// messages, with the count.
func BenchArchiveQuery(b *testing.B, open func(b *testing.B) archive.Archive) {
	const total, page = 10000, 50
	a := open(b)
	ctx := context.Background()
	room := benchRoom(0)
	msgs := make([]archive.Message, 500)
	for i := 0; i < total; i += len(msgs) {
		archiveBenchBatch(msgs, room, i)
		if err := a.Append(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	q := archive.Query{Room: room, Max: page, Last: true}
	b.ReportAllocs()
	for b.Loop() {
		p, err := a.Query(ctx, q)
		if err != nil || len(p.Messages) != page || p.Count != total {
			b.Fatalf("Query = %d messages, count %d, %v", len(p.Messages), p.Count, err)
		}
	}
}

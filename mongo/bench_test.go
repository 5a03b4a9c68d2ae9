package mongo

import (
	"context"
	"fmt"
	"testing"

	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// The benchmarks run against MONGODB_URI when it is set, otherwise against
// the embedded FerretDB (SQLite), whose figures measure FerretDB as much as
// this package. They mirror boltstore's benchmarks of the same names.

const benchService = "muc.a.test"

func benchUser(i int) xmpp.JID { return xmpp.JID{Local: fmt.Sprintf("user%03d", i), Domain: "a.test"} }

func benchRoom(i int) xmpp.JID {
	return xmpp.JID{Local: fmt.Sprintf("room%06d", i), Domain: benchService}
}

func benchConfig() rooms.Config {
	return rooms.Config{"roomname": "Bench room", "subject": "benchmarks", "description": "a room to measure"}
}

func BenchmarkCreateRoom(b *testing.B) {
	s := openTemp(b, mongotest.URI(b))
	ctx := context.Background()
	affs := []rooms.Aff{{User: benchUser(0), Aff: rooms.Owner, Since: 1}, {User: benchUser(1), Aff: rooms.Member, Since: 2}}
	cfg := benchConfig()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.CreateRoom(ctx, benchRoom(i), cfg, affs, "v1"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkModifyAffUsers adds one user to a room of 50 and removes them
// again: two changes per iteration.
func BenchmarkModifyAffUsers(b *testing.B) {
	s := openTemp(b, mongotest.URI(b))
	ctx := context.Background()
	room := benchRoom(0)
	affs := make([]rooms.Aff, 50)
	for i := range affs {
		affs[i] = rooms.Aff{User: benchUser(i), Aff: rooms.Member, Since: int64(i)}
	}
	affs[0].Aff = rooms.Owner
	if err := s.CreateRoom(ctx, room, benchConfig(), affs, "v0"); err != nil {
		b.Fatal(err)
	}
	newcomer := benchUser(999)
	add := addUser(newcomer, rooms.Member, 1000)
	remove := func(cur []rooms.Aff) ([]rooms.Aff, error) { return slicesDelete(cur, newcomer), nil }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.ModifyAffUsers(ctx, room, add, fmt.Sprintf("a%d", i)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ModifyAffUsers(ctx, room, remove, fmt.Sprintf("r%d", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGetUserRooms lists the 20 rooms a user occupies.
func BenchmarkGetUserRooms(b *testing.B) {
	s := openTemp(b, mongotest.URI(b))
	ctx := context.Background()
	user := benchUser(0)
	for i := range 20 {
		affs := []rooms.Aff{{User: user, Aff: rooms.Owner, Since: 1}}
		for j := 1; j < 5; j++ {
			affs = append(affs, rooms.Aff{User: benchUser(i*5 + j), Aff: rooms.Member, Since: int64(j)})
		}
		if err := s.CreateRoom(ctx, benchRoom(i), benchConfig(), affs, "v1"); err != nil {
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

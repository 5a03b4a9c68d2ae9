package roomstoretest

import (
	"context"
	"fmt"
	"testing"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// ListStore is a store that pages through rooms.
type ListStore interface {
	roomstore.Store
	roomstore.Lister
}

// RunList checks ListRooms: pages in JID order with no gap or repeat while
// rooms are added and removed between pages, the service and name filters.
func RunList(t *testing.T, open func(t *testing.T) ListStore) {
	ctx := context.Background()
	s := open(t)
	owner := xmpp.MustParseJID("alice@a.test")
	const n = 57
	mk := func(local, service, name string) {
		t.Helper()
		err := s.CreateRoom(ctx, xmpp.JID{Local: local, Domain: service}, roomstore.Config{roomstore.NameKey: name},
			[]roomstore.Aff{{User: owner, Aff: roomstore.Owner}}, "v1", roomstore.Caps{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		mk(fmt.Sprintf("r%03d", i), "muc.a.test", fmt.Sprintf("Room %d", i))
	}
	mk("other", "muc.b.test", "Room elsewhere")
	mk("lobby", "muc.a.test", "The LOBBY")

	seen := map[string]int{}
	after, pages := "", 0
	for {
		page, err := s.ListRooms(ctx, roomstore.ListQuery{Service: "muc.a.test", After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		for _, r := range page {
			if r.JID.String() <= after {
				t.Fatalf("page after %q holds %s: out of order", after, r.JID)
			}
			if r.JID.Domain != "muc.a.test" {
				t.Fatalf("service filter let %s through", r.JID)
			}
			if r.Occupants != 1 || r.Version != "v1" {
				t.Fatalf("%s listed with %d occupants, version %q", r.JID, r.Occupants, r.Version)
			}
			seen[r.JID.String()]++
			after = r.JID.String()
		}
		if pages == 2 {
			// Rooms change between pages: one behind the cursor goes, one
			// ahead of it comes; the rest are seen exactly once.
			if err := s.DestroyRoom(ctx, xmpp.JID{Local: "r000", Domain: "muc.a.test"}, roomstore.Caps{}); err != nil {
				t.Fatal(err)
			}
			mk("zzz", "muc.a.test", "late")
		}
	}
	if len(seen) != n+2 {
		t.Fatalf("saw %d rooms, want %d", len(seen), n+2)
	}
	for j, c := range seen {
		if c != 1 {
			t.Fatalf("%s seen %d times", j, c)
		}
	}
	all, err := s.ListRooms(ctx, roomstore.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n+2 { // r000 went, zzz and other came
		t.Fatalf("unfiltered list has %d rooms, want %d", len(all), n+2)
	}
	named, err := s.ListRooms(ctx, roomstore.ListQuery{NameContains: "lobby", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(named) != 1 || named[0].JID.Local != "lobby" || named[0].Config[roomstore.NameKey] != "The LOBBY" {
		t.Fatalf("name filter: %+v", named)
	}
	meta, err := s.ListRooms(ctx, roomstore.ListQuery{NameContains: "Room (", Limit: 10})
	if err != nil || len(meta) != 0 {
		t.Fatalf("name filter is a plain substring, not a pattern: %v %v", meta, err)
	}
}

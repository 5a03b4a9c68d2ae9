package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/account/accounttest"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
	"github.com/wschat/xmppws/xmpp"
)

func TestRoomStoreContract(t *testing.T) {
	uri := mongotest.URI(t)
	roomstoretest.Run(t, func(t *testing.T) roomstore.Store { return openTemp(t, uri) })
}

func TestAccountStoreContract(t *testing.T) {
	uri := mongotest.URI(t)
	accounttest.Run(t, func(t *testing.T) account.Store { return openTemp(t, uri) })
}

// dbSeq keeps the databases of one test process apart; the process ID keeps
// concurrent test processes sharing one MONGODB_URI apart.
var dbSeq atomic.Int64

// dbName derives a database name unique to this call from the test's name,
// within what both MongoDB and FerretDB accept: [A-Za-z0-9_-], at most 63
// characters.
func dbName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, t.Name())
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), dbSeq.Add(1))
	if max := 63 - len(suffix); len(name) > max {
		name = name[len(name)-max:] // the tail names the subtest
	}
	return name + suffix
}

// openTemp opens a store on a fresh database of the server at uri, dropped
// and closed when the test ends.
func openTemp(t testing.TB, uri string) *Store {
	t.Helper()
	return openDropped(t, uri, dbName(t))
}

// openDropped opens a store on database name, dropped and closed when the
// test ends.
func openDropped(t testing.TB, uri, name string) *Store {
	t.Helper()
	s := open(t, uri, name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.client.Database(name).Drop(ctx); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s
}

// open opens a store on database name, closed when the test ends.
func open(t testing.TB, uri, name string) *Store {
	t.Helper()
	s := connect(t, uri, name)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// connect opens a store on database name; the caller closes it.
func connect(t testing.TB, uri, name string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URI: uri, Database: name, PoolSize: 20, ConnectTimeout: 10 * time.Second, OpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// restartable returns the URI of a server whose data outlives a restart,
// and restart, which restarts it: an embedded FerretDB of the test's own or,
// when MONGODB_URI is set, that server, which restart leaves running.
func restartable(t *testing.T) (uri string, restart func()) {
	t.Helper()
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return uri, func() {}
	}
	f := mongotest.Start(t, t.TempDir(), "127.0.0.1:0")
	t.Cleanup(f.Stop)
	return f.URI(), f.Restart
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	alice = xmpp.MustParseJID("alice@a.test")
	bob   = xmpp.MustParseJID("bob@a.test")
	dave  = xmpp.MustParseJID("dave@a.test")
	coven = xmpp.MustParseJID("coven@muc.a.test")
)

func addUser(user xmpp.JID, a roomstore.Affiliation, since int64) roomstore.AffChange {
	return func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
		for _, x := range cur {
			if x.User == user {
				return cur, nil
			}
		}
		return append(cur, roomstore.Aff{User: user, Aff: a, Since: since}), nil
	}
}

// TestPersist checks that accounts, rooms and blocking lists survive the
// store closing and, with the embedded FerretDB, the server restarting on
// the same data.
func TestPersist(t *testing.T) {
	uri, restart := restartable(t)
	ctx := testContext(t)
	name := dbName(t)
	s := connect(t, uri, name)
	rec, err := account.New(alice, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, rec); err != nil {
		t.Fatal(err)
	}
	affs := []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 42}}
	if err := s.CreateRoom(ctx, coven, roomstore.Config{"roomname": "Coven"}, affs, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	block := []roomstore.BlockItem{{Kind: roomstore.BlockUser, JID: bob}}
	if err := s.SetBlocking(ctx, alice, block, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	restart()

	s = openDropped(t, uri, name) // the same database again
	if got, err := s.Account(ctx, alice); err != nil || !got.Verify("alice", "pw") {
		t.Errorf("Account after reopen = %+v, %v", got, err)
	}
	cfg, v, err := s.GetConfig(ctx, coven)
	if err != nil || cfg["roomname"] != "Coven" || v != "v1" {
		t.Errorf("GetConfig after reopen = %v, %q, %v", cfg, v, err)
	}
	got, _, err := s.GetAffUsers(ctx, coven)
	if err != nil || len(got) != 1 || got[0] != affs[0] {
		t.Errorf("GetAffUsers after reopen = %+v, %v", got, err)
	}
	if infos, err := s.GetUserRooms(ctx, alice, coven.Domain); err != nil || len(infos) != 1 || infos[0].Room != coven {
		t.Errorf("GetUserRooms after reopen = %+v, %v", infos, err)
	}
	if items, err := s.GetBlocking(ctx, alice); err != nil || len(items) != 1 || items[0] != block[0] {
		t.Errorf("GetBlocking after reopen = %+v, %v", items, err)
	}
}

// TestModifyAffUsersRetries plays another node writing the room between
// this store's read and its conditional write: the write must not land on
// the changed room, and the change must be applied again to what the other
// node stored. The second store has its own in-process locks, so only the
// version condition stands between the two.
func TestModifyAffUsersRetries(t *testing.T) {
	uri := mongotest.URI(t)
	ctx := testContext(t)
	s := openTemp(t, uri)
	other := open(t, uri, s.rooms.Database().Name())
	if err := s.CreateRoom(ctx, coven, roomstore.Config{"roomname": "Coven"}, []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 1}}, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}

	t.Run("affiliations", func(t *testing.T) {
		var calls int
		var otherRes roomstore.AffResult
		change := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
			calls++
			if calls == 1 {
				var err error
				otherRes, err = other.ModifyAffUsers(ctx, coven, addUser(dave, roomstore.Member, 3), "v-other", roomstore.Caps{})
				if err != nil {
					t.Errorf("other writer: %v", err)
				}
			}
			return addUser(bob, roomstore.Member, 2)(cur)
		}
		res, err := s.ModifyAffUsers(ctx, coven, change, "v2", roomstore.Caps{})
		if err != nil {
			t.Fatalf("ModifyAffUsers: %v", err)
		}
		if calls != 2 {
			t.Errorf("change called %d times, want 2 (one retry)", calls)
		}
		if otherRes.OldVersion != "v1" || res.OldVersion != "v-other" || res.NewVersion != "v2" {
			t.Errorf("versions: other %s→%s, this %s→%s; want v1→v-other→v2",
				otherRes.OldVersion, otherRes.NewVersion, res.OldVersion, res.NewVersion)
		}
		want := []roomstore.Aff{{User: alice, Aff: roomstore.Owner, Since: 1}, {User: bob, Aff: roomstore.Member, Since: 2}, {User: dave, Aff: roomstore.Member, Since: 3}}
		got, v, err := s.GetAffUsers(ctx, coven)
		if err != nil || v != "v2" || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stored %+v at %q, %v; want %+v at v2", got, v, err, want)
		}
	})

	t.Run("config", func(t *testing.T) {
		// A configuration change also moves the version, and survives.
		var calls int
		change := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
			calls++
			if calls == 1 {
				if _, err := other.SetConfig(ctx, coven, roomstore.Config{"subject": "set elsewhere"}, "v-cfg"); err != nil {
					t.Errorf("other writer: %v", err)
				}
			}
			return slicesDelete(cur, dave), nil
		}
		res, err := s.ModifyAffUsers(ctx, coven, change, "v3", roomstore.Caps{})
		if err != nil || calls != 2 || res.OldVersion != "v-cfg" {
			t.Errorf("ModifyAffUsers = %+v, %v after %d calls; want a retry over v-cfg", res, err, calls)
		}
		cfg, v, err := s.GetConfig(ctx, coven)
		if err != nil || v != "v3" || cfg["subject"] != "set elsewhere" || cfg["roomname"] != "Coven" {
			t.Errorf("config %v at %q, %v; want both keys at v3", cfg, v, err)
		}
	})

	t.Run("gives up", func(t *testing.T) {
		n := 0
		change := func(cur []roomstore.Aff) ([]roomstore.Aff, error) {
			n++
			if _, err := other.SetConfig(ctx, coven, roomstore.Config{"subject": fmt.Sprint(n)}, fmt.Sprintf("busy%d", n)); err != nil {
				t.Errorf("other writer: %v", err)
			}
			return slicesDelete(cur, bob), nil
		}
		_, err := s.ModifyAffUsers(ctx, coven, change, "never", roomstore.Caps{})
		if !errors.Is(err, errContention) {
			t.Fatalf("ModifyAffUsers under endless contention: %v, want errContention", err)
		}
		if n != maxTries {
			t.Errorf("change called %d times, want %d", n, maxTries)
		}
		got, v, err := s.GetAffUsers(ctx, coven)
		if err != nil || len(got) != 2 || v != fmt.Sprintf("busy%d", n) {
			t.Errorf("stored %+v at %q, %v; want bob still there at the other writer's last version", got, v, err)
		}
	})
}

func slicesDelete(cur []roomstore.Aff, user xmpp.JID) []roomstore.Aff {
	var out []roomstore.Aff
	for _, a := range cur {
		if a.User != user {
			out = append(out, a)
		}
	}
	return out
}

// TestRoomInvariants checks that lists that would break the store's
// invariants are refused and leave the room as it was.
func TestRoomInvariants(t *testing.T) {
	uri := mongotest.URI(t)
	roomstoretest.RunInvariants(t, func(t *testing.T) roomstore.Store { return openTemp(t, uri) }, errInvalidAffs)
}

// TestDocumentLayout pins the stored documents to the layout that
// docs/muclight.md documents, which operators and migration scripts read.
func TestDocumentLayout(t *testing.T) {
	s := openTemp(t, mongotest.URI(t))
	ctx := testContext(t)
	affs := []roomstore.Aff{{User: bob, Aff: roomstore.Member, Since: 2}, {User: alice, Aff: roomstore.Owner, Since: 1}}
	if err := s.CreateRoom(ctx, coven, roomstore.Config{"roomname": "Coven"}, affs, "v1", roomstore.Caps{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBlocking(ctx, alice, []roomstore.BlockItem{{Kind: roomstore.BlockRoom, JID: coven}}, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := account.New(alice, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, rec); err != nil {
		t.Fatal(err)
	}

	docs := []struct {
		coll *mongo.Collection
		id   string
		want string
	}{
		{s.rooms, "coven@muc.a.test", `{"_id": "coven@muc.a.test","service": "muc.a.test","config": {"roomname": "Coven"},` +
			`"affiliations": [{"jid": "alice@a.test","aff": "owner","since": {"$numberLong":"1"}},` +
			`{"jid": "bob@a.test","aff": "member","since": {"$numberLong":"2"}}],"version": "v1"}`},
		{s.blocking, "alice@a.test", `{"_id": "alice@a.test","domain": "a.test",` +
			`"items": [{"kind": "room","jid": "coven@muc.a.test"}],"rev": {"$numberLong":"1"}}`},
	}
	for _, d := range docs {
		var raw bson.Raw
		if err := d.coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.id}}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		if got := raw.String(); got != d.want {
			t.Errorf("%s document\n got %s\nwant %s", d.coll.Name(), got, d.want)
		}
	}
	var acct bson.M
	if err := s.accounts.FindOne(ctx, bson.D{{Key: "_id", Value: "alice@a.test"}}).Decode(&acct); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"domain", "salt", "iters", "sha1", "sha256"} {
		if _, ok := acct[k]; !ok {
			t.Errorf("account document lacks %q: %v", k, acct)
		}
	}
	if acct["domain"] != "a.test" {
		t.Errorf("account domain = %v", acct["domain"])
	}
}

func TestOpenFails(t *testing.T) {
	if _, err := Open(context.Background(), Config{URI: "mongodb://127.0.0.1:1"}); err == nil {
		t.Error("Open without a database name succeeded")
	}
	// A port nobody listens on: Open gives up when its context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, err := Open(ctx, Config{URI: "mongodb://" + addr, Database: "x", ConnectTimeout: time.Second})
	if err == nil {
		s.Close()
		t.Fatal("Open against a closed port succeeded")
	}
	if !strings.HasPrefix(err.Error(), "mongo: ") {
		t.Errorf("error %q does not say where it comes from", err)
	}
}

func TestOpTimeout(t *testing.T) {
	s := &Store{opTimeout: time.Hour}
	ctx, cancel, err := s.op(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); err != nil || !ok || time.Until(dl) > time.Hour {
		t.Errorf("op deadline = %v, %v, %v; want within the hour", dl, ok, err)
	}
	parent, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	want, _ := parent.Deadline()
	ctx, cancel2, _ := s.op(parent)
	defer cancel2()
	if dl, _ := ctx.Deadline(); !dl.Equal(want) {
		t.Errorf("op deadline = %v; the parent's earlier %v should win", dl, want)
	}
	pcancel()
	if _, _, err := s.op(parent); !errors.Is(err, context.Canceled) {
		t.Errorf("op on a canceled context: %v", err)
	}
}

// TestConcurrentSetBlocking races writers on one blocking list: each adds
// its own item, and none may be lost.
func TestConcurrentSetBlocking(t *testing.T) {
	s := openTemp(t, mongotest.URI(t))
	ctx := testContext(t)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			item := roomstore.BlockItem{Kind: roomstore.BlockUser, JID: xmpp.JID{Local: fmt.Sprintf("u%02d", i), Domain: "b.test"}}
			if err := s.SetBlocking(ctx, alice, []roomstore.BlockItem{item}, nil); err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	items, err := s.GetBlocking(ctx, alice)
	if err != nil || len(items) != n {
		t.Errorf("after %d concurrent denies got %d items, %v: %v", n, len(items), err, items)
	}
}

func TestListRooms(t *testing.T) {
	uri := mongotest.URI(t)
	roomstoretest.RunList(t, func(t *testing.T) roomstoretest.ListStore { return openTemp(t, uri) })
}

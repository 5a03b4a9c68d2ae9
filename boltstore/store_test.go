package boltstore

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// openTemp opens a store in a fresh directory, closed when the test ends.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s := openDir(t, t.TempDir())
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// openDir opens the store in dir; the caller closes it.
func openDir(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	alice := xmpp.MustParseJID("alice@a.test")
	rec, _ := account.New(alice, "pw")
	if err := s.CreateAccount(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, rec); !errors.Is(err, account.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	got, err := s.Account(ctx, alice.WithResource("phone"))
	if err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("read back %+v %v", got, err)
	}
	for _, j := range []string{"bob@b.test", "carol@a.test"} {
		r, _ := account.New(xmpp.MustParseJID(j), "x")
		s.CreateAccount(ctx, r)
	}
	if l, _ := s.Accounts(ctx, "a.test"); !reflect.DeepEqual(l, []string{"alice@a.test", "carol@a.test"}) {
		t.Errorf("list a.test: %v", l)
	}
	if l, _ := s.Accounts(ctx, ""); len(l) != 3 {
		t.Errorf("list all: %v", l)
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, alice); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.SetAccount(ctx, rec); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("set on missing: %v", err)
	}

	// A second opener fails fast while the first holds the lock; data
	// survives a reopen.
	if _, err := Open(dir, Options{LockTimeout: 50e6}); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	s.Close()
	s = openDir(t, dir)
	defer s.Close()
	if l, _ := s.Accounts(ctx, ""); len(l) != 2 {
		t.Errorf("after reopen: %v", l)
	}
}

// Package accounttest is the contract suite of account.Store: every backend
// (the embedded bbolt store, MongoDB) runs Run against a fresh store per
// test, so logins and the admin commands behave the same whichever backend
// is configured.
//
// The suite tests only what the account.Store comments promise; it must
// never import a backend, nor assert how a backend lays out its data.
package accounttest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// timeout bounds each test's store calls, so a wedged backend fails the test
// instead of hanging the run.
const timeout = 30 * time.Second

var (
	alice = xmpp.MustParseJID("alice@a.test")
	bob   = xmpp.MustParseJID("bob@b.test")
)

// Run runs the contract suite; open must return a new, empty store for each
// subtest and arrange (with t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) account.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s account.Store)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"CreateDuplicate", testCreateDuplicate},
		{"SetAccount", testSetAccount},
		{"SetMissing", testSetMissing},
		{"DeleteAccount", testDeleteAccount},
		{"NotFound", testNotFound},
		{"ListByDomain", testListByDomain},
		{"ListEmpty", testListEmpty},
		{"CanceledContext", testCanceledContext},
		{"ServerSecret", testServerSecret},
		{"ServerSecretConcurrent", testServerSecretConcurrent},
		{"Tokens", testTokens},
		{"TokensCap", testTokensCap},
		{"TokensDroppedWithPassword", testTokensDroppedWithPassword},
		{"TokensDroppedWithAccount", testTokensDroppedWithAccount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func testCreateAndRead(t *testing.T, s account.Store) {
	ctx := testContext(t)
	rec := newRecord(t, alice, "s3cret")
	if err := s.CreateAccount(ctx, rec); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	wantRecord(t, s, alice, rec)
	// A full JID names the same account.
	wantRecord(t, s, alice.WithResource("phone"), rec)
	got, err := s.Account(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Verify(alice.Local, "s3cret") || got.Verify(alice.Local, "wrong") {
		t.Error("the stored keys do not verify the password they were derived from")
	}
	// The returned record is a copy.
	got.Salt[0] ^= 0xff
	got.SHA256.StoredKey[0] ^= 0xff
	wantRecord(t, s, alice, rec)
}

func testCreateDuplicate(t *testing.T, s account.Store) {
	ctx := testContext(t)
	first := fakeRecord(alice, 1)
	if err := s.CreateAccount(ctx, first); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := s.CreateAccount(ctx, fakeRecord(alice, 2)); !errors.Is(err, account.ErrExists) {
		t.Fatalf("second CreateAccount: %v, want ErrExists", err)
	}
	wantRecord(t, s, alice, first)
}

func testSetAccount(t *testing.T, s account.Store) {
	ctx := testContext(t)
	if err := s.CreateAccount(ctx, newRecord(t, alice, "old")); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	other := fakeRecord(bob, 7)
	if err := s.CreateAccount(ctx, other); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	rec := newRecord(t, alice, "new")
	if err := s.SetAccount(ctx, rec); err != nil {
		t.Fatalf("SetAccount: %v", err)
	}
	wantRecord(t, s, alice, rec)
	got, err := s.Account(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Verify(alice.Local, "new") || got.Verify(alice.Local, "old") {
		t.Error("after SetAccount the new password should verify and the old one not")
	}
	wantRecord(t, s, bob, other)
	wantList(t, s, "", alice.String(), bob.String())
}

func testSetMissing(t *testing.T, s account.Store) {
	ctx := testContext(t)
	if err := s.SetAccount(ctx, fakeRecord(alice, 1)); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("SetAccount on a missing account: %v, want ErrNotFound", err)
	}
	if _, err := s.Account(ctx, alice); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("Account after SetAccount on a missing account: %v, want ErrNotFound", err)
	}
	wantList(t, s, "")
}

func testDeleteAccount(t *testing.T, s account.Store) {
	ctx := testContext(t)
	for _, r := range []account.Record{fakeRecord(alice, 1), fakeRecord(bob, 2)} {
		if err := s.CreateAccount(ctx, r); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if _, err := s.Account(ctx, alice); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("Account after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteAccount(ctx, alice); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("second DeleteAccount: %v, want ErrNotFound", err)
	}
	wantRecord(t, s, bob, fakeRecord(bob, 2))
	wantList(t, s, "", bob.String())

	// The name is free again.
	again := fakeRecord(alice, 3)
	if err := s.CreateAccount(ctx, again); err != nil {
		t.Fatalf("CreateAccount after delete: %v", err)
	}
	wantRecord(t, s, alice, again)
}

func testNotFound(t *testing.T, s account.Store) {
	ctx := testContext(t)
	if err := s.CreateAccount(ctx, fakeRecord(alice, 1)); err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"bob@a.test", "alice@b.test", "a.test", "alic@a.test"} {
		if _, err := s.Account(ctx, xmpp.MustParseJID(j)); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Account(%s): %v, want ErrNotFound", j, err)
		}
		if err := s.DeleteAccount(ctx, xmpp.MustParseJID(j)); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("DeleteAccount(%s): %v, want ErrNotFound", j, err)
		}
	}
	wantRecord(t, s, alice, fakeRecord(alice, 1))
}

func testListByDomain(t *testing.T, s account.Store) {
	ctx := testContext(t)
	// Created out of order, across domains that share suffixes.
	jids := []string{
		"zed@a.test", "bob@b.test", "alice@a.test", "erin@sub.a.test",
		"dave@a.test.example", "carol@a.test", "ann@b.test",
	}
	for i, j := range jids {
		if err := s.CreateAccount(ctx, fakeRecord(xmpp.MustParseJID(j), byte(i))); err != nil {
			t.Fatalf("CreateAccount(%s): %v", j, err)
		}
	}
	wantList(t, s, "a.test", "alice@a.test", "carol@a.test", "zed@a.test")
	wantList(t, s, "b.test", "ann@b.test", "bob@b.test")
	wantList(t, s, "sub.a.test", "erin@sub.a.test")
	wantList(t, s, "c.test")
	all := slices.Clone(jids)
	slices.Sort(all)
	wantList(t, s, "", all...)
}

func testListEmpty(t *testing.T, s account.Store) {
	wantList(t, s, "")
	wantList(t, s, "a.test")
}

func testCanceledContext(t *testing.T, s account.Store) {
	ctx := testContext(t)
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreateAccount(done, fakeRecord(alice, 1)); err == nil {
		t.Error("CreateAccount with a canceled context succeeded")
	}
	if _, err := s.Account(ctx, alice); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("Account after a canceled create: %v, want ErrNotFound", err)
	}
	if err := s.CreateAccount(ctx, fakeRecord(alice, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccount(done, fakeRecord(alice, 2)); err == nil {
		t.Error("SetAccount with a canceled context succeeded")
	}
	if err := s.DeleteAccount(done, alice); err == nil {
		t.Error("DeleteAccount with a canceled context succeeded")
	}
	wantRecord(t, s, alice, fakeRecord(alice, 1))
}

// newRecord derives a real record from a password.
func newRecord(t *testing.T, jid xmpp.JID, password string) account.Record {
	t.Helper()
	r, err := account.New(jid, password)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeRecord is a record with recognisable keys and no password behind
// them; stores keep records without checking them, and deriving real keys
// for every account of a list test would only slow the suite down.
func fakeRecord(jid xmpp.JID, n byte) account.Record {
	fill := func(tag byte) []byte {
		b := make([]byte, 20)
		for i := range b {
			b[i] = tag ^ n ^ byte(i)
		}
		return b
	}
	return account.Record{
		JID:    jid.Bare().String(),
		Salt:   fill(0x10)[:16],
		Iters:  account.Iterations + int(n),
		SHA1:   account.Keys{StoredKey: fill(0x20), ServerKey: fill(0x30)},
		SHA256: account.Keys{StoredKey: append(fill(0x40), fill(0x41)[:12]...), ServerKey: append(fill(0x50), fill(0x51)[:12]...)},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func wantRecord(t *testing.T, s account.Store, jid xmpp.JID, want account.Record) {
	t.Helper()
	got, err := s.Account(testContext(t), jid)
	if err != nil {
		t.Fatalf("Account(%s): %v", jid, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Account(%s)\n got %+v\nwant %+v", jid, got, want)
	}
}

// wantList checks Accounts(domain) in order; nil equals empty.
func wantList(t *testing.T, s account.Store, domain string, want ...string) {
	t.Helper()
	got, err := s.Accounts(testContext(t), domain)
	if err != nil {
		t.Fatalf("Accounts(%q): %v", domain, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Accounts(%q) = %q, want %q", domain, got, want)
	}
}

// testServerSecret: the secret is created once, has SecretSize bytes, is
// returned unchanged by later calls (as a copy), and is not an account.
func testServerSecret(t *testing.T, s account.Store) {
	ctx := testContext(t)
	first, err := s.ServerSecret(ctx)
	if err != nil {
		t.Fatalf("ServerSecret: %v", err)
	}
	if len(first) != account.SecretSize || bytes.Equal(first, make([]byte, account.SecretSize)) {
		t.Fatalf("secret %x: want %d random bytes", first, account.SecretSize)
	}
	keep := bytes.Clone(first)
	first[0] ^= 0xff
	again, err := s.ServerSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, keep) {
		t.Errorf("second call returned %x, want the first secret %x", again, keep)
	}
	wantList(t, s, "")
}

// testServerSecretConcurrent: callers racing to create the secret, as nodes
// starting together do, all get the same one.
func testServerSecretConcurrent(t *testing.T, s account.Store) {
	ctx := testContext(t)
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.ServerSecret(ctx)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("caller %d got %x, caller 0 got %x", i, got[i], got[0])
		}
	}
}

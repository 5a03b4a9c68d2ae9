package accounttest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// tokenStore is the store's account.TokenStore; every backend must be one.
func tokenStore(t *testing.T, s account.Store) account.TokenStore {
	t.Helper()
	ts, ok := s.(account.TokenStore)
	if !ok {
		t.Fatalf("%T does not implement account.TokenStore", s)
	}
	return ts
}

// base is a millisecond-aligned UTC instant: what every backend can store
// exactly.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fakeToken(id string, n int) account.Token {
	return account.Token{
		ID:        id,
		Mechanism: "HT-SHA-256-NONE",
		Key:       []byte{byte(n), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
		UserAgent: "ua-" + id,
		Software:  "Tester",
		Device:    "bench",
		Epoch:     []byte{0xee, byte(n)},
		Created:   base.Add(time.Duration(n) * time.Minute),
		Expires:   base.Add(time.Duration(n)*time.Minute + 14*24*time.Hour),
	}
}

func wantTokens(t *testing.T, ts account.TokenStore, jid xmpp.JID, want ...account.Token) {
	t.Helper()
	got, err := ts.Tokens(testContext(t), jid)
	if err != nil {
		t.Fatalf("Tokens(%s): %v", jid, err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("Tokens(%s): %d tokens %+v, want %d", jid, len(got), got, len(want))
	}
	for i := range want {
		if !tokenEqual(got[i], want[i]) {
			t.Errorf("Tokens(%s)[%d]\n got %+v\nwant %+v", jid, i, got[i], want[i])
		}
	}
}

// tokenEqual compares times as instants: a backend may hand them back in
// another location.
func tokenEqual(a, b account.Token) bool {
	if !a.Created.Equal(b.Created) || !a.Expires.Equal(b.Expires) || !a.LastUsed.Equal(b.LastUsed) {
		return false
	}
	a.Created, a.Expires, a.LastUsed = time.Time{}, time.Time{}, time.Time{}
	b.Created, b.Expires, b.LastUsed = time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// testTokens: add, list oldest first, touch, delete one and all; accounts
// whose JIDs share a prefix keep their tokens apart.
func testTokens(t *testing.T, s account.Store) {
	ctx := testContext(t)
	ts := tokenStore(t, s)
	wantTokens(t, ts, alice)
	neighbour := xmpp.MustParseJID("alice@a.test.example")
	t1, t2, t3 := fakeToken("t1", 3), fakeToken("t2", 1), fakeToken("t3", 2)
	for _, tok := range []account.Token{t1, t2, t3} {
		if err := ts.AddToken(ctx, alice, tok, 16); err != nil {
			t.Fatalf("AddToken: %v", err)
		}
	}
	other := fakeToken("t1", 9)
	if err := ts.AddToken(ctx, neighbour, other, 16); err != nil {
		t.Fatal(err)
	}
	if err := ts.AddToken(ctx, bob, fakeToken("b1", 4), 16); err != nil {
		t.Fatal(err)
	}
	wantTokens(t, ts, alice.WithResource("phone"), t2, t3, t1)
	wantTokens(t, ts, neighbour, other)

	used := base.Add(time.Hour)
	if err := ts.TouchToken(ctx, alice, "t3", used); err != nil {
		t.Fatalf("TouchToken: %v", err)
	}
	t3.LastUsed = used
	wantTokens(t, ts, alice, t2, t3, t1)
	if err := ts.TouchToken(ctx, alice, "nope", used); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("TouchToken of a missing token: %v, want ErrNotFound", err)
	}
	if err := ts.TouchToken(ctx, bob, "t1", used); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("TouchToken of another account's token id: %v, want ErrNotFound", err)
	}

	if n, err := ts.DeleteTokens(ctx, alice, "t2", "nope"); err != nil || n != 1 {
		t.Fatalf("DeleteTokens(t2, nope) = %d, %v; want 1", n, err)
	}
	wantTokens(t, ts, alice, t3, t1)
	if n, err := ts.DeleteTokens(ctx, alice); err != nil || n != 2 {
		t.Fatalf("DeleteTokens(all) = %d, %v; want 2", n, err)
	}
	wantTokens(t, ts, alice)
	wantTokens(t, ts, neighbour, other)
	if n, err := ts.DeleteTokens(ctx, alice); err != nil || n != 0 {
		t.Errorf("DeleteTokens with none left = %d, %v; want 0", n, err)
	}
}

// testTokensCap: AddToken keeps the newest keep tokens.
func testTokensCap(t *testing.T, s account.Store) {
	ctx := testContext(t)
	ts := tokenStore(t, s)
	var all []account.Token
	for i := range 5 {
		tok := fakeToken(string(rune('a'+i)), i)
		all = append(all, tok)
		if err := ts.AddToken(ctx, alice, tok, 3); err != nil {
			t.Fatal(err)
		}
	}
	wantTokens(t, ts, alice, all[2:]...)
}

func testTokensDroppedWithPassword(t *testing.T, s account.Store) {
	ctx := testContext(t)
	ts := tokenStore(t, s)
	if err := s.CreateAccount(ctx, fakeRecord(alice, 1)); err != nil {
		t.Fatal(err)
	}
	if err := ts.AddToken(ctx, alice, fakeToken("x", 1), 16); err != nil {
		t.Fatal(err)
	}
	if err := ts.AddToken(ctx, bob, fakeToken("y", 1), 16); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccount(ctx, fakeRecord(alice, 2)); err != nil {
		t.Fatal(err)
	}
	wantTokens(t, ts, alice)
	wantTokens(t, ts, bob, fakeToken("y", 1))
}

func testTokensDroppedWithAccount(t *testing.T, s account.Store) {
	ctx := testContext(t)
	ts := tokenStore(t, s)
	if err := s.CreateAccount(ctx, fakeRecord(alice, 1)); err != nil {
		t.Fatal(err)
	}
	if err := ts.AddToken(ctx, alice, fakeToken("x", 1), 16); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	wantTokens(t, ts, alice)
}

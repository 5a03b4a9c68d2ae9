// Package pushstoretest is the contract of pushstore.Store: every backend
// runs Run against a fresh store of its own, so that both keep push
// registrations the same way. It is imported by tests only.
package pushstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/xmpp"
)

// Opener opens a fresh, empty store for one test; reopen closes it and
// opens the same data again (the server restarting).
type Opener func(t *testing.T) (s pushstore.Store, reopen func() pushstore.Store)

var (
	alice = xmpp.MustParseJID("alice@a.test")
	bob   = xmpp.MustParseJID("bob@a.test")
	carol = xmpp.MustParseJID("carol@a.test")
	app   = xmpp.MustParseJID("push.app.test")
	app2  = xmpp.MustParseJID("pusher@a.test")
)

func reg(acct, jid xmpp.JID, node string, opts ...string) pushstore.Registration {
	r := pushstore.Registration{Account: acct, JID: jid, Node: node, Created: time.UnixMicro(time.Now().UnixMicro()).UTC()}
	for i := 0; i+1 < len(opts); i += 2 {
		r.Options = append(r.Options, pushstore.Field{Var: opts[i], Value: opts[i+1]})
	}
	return r
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func list(t *testing.T, s pushstore.Store, acct xmpp.JID) []pushstore.Registration {
	t.Helper()
	m, err := s.PushRegistrations(ctxOf(t), []xmpp.JID{acct})
	if err != nil {
		t.Fatal(err)
	}
	return m[acct]
}

func describe(rs []pushstore.Registration) string {
	out := ""
	for _, r := range rs {
		out += fmt.Sprintf("[%s %s %s %v] ", r.Account, r.JID, r.Node, r.Options)
	}
	return out
}

// Run runs every rule against stores from open.
func Run(t *testing.T, open Opener) {
	t.Run("EnableListDisable", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		if got := list(t, s, alice); len(got) != 0 {
			t.Fatalf("fresh store lists %s", describe(got))
		}
		a1 := reg(alice, app, "n1", "secret", "s1")
		if err := s.EnablePush(ctx, a1, 5); err != nil {
			t.Fatal(err)
		}
		if err := s.EnablePush(ctx, reg(alice, app2, "n2"), 5); err != nil {
			t.Fatal(err)
		}
		got := list(t, s, alice)
		if len(got) != 2 || got[0].JID != app || got[0].Node != "n1" || got[1].JID != app2 ||
			len(got[0].Options) != 1 || got[0].Options[0] != (pushstore.Field{Var: "secret", Value: "s1"}) ||
			got[0].Account != alice || !got[0].Created.Equal(a1.Created) {
			t.Fatalf("after two enables: %s", describe(got))
		}
		if n, err := s.DisablePush(ctx, alice, app, "other"); err != nil || n != 0 {
			t.Errorf("disabling a node never enabled: %d %v", n, err)
		}
		if n, err := s.DisablePush(ctx, alice, app, "n1"); err != nil || n != 1 {
			t.Errorf("disable n1: %d %v", n, err)
		}
		if got := list(t, s, alice); len(got) != 1 || got[0].JID != app2 {
			t.Errorf("after disable: %s", describe(got))
		}
		if n, err := s.DisablePush(ctx, carol, app, ""); err != nil || n != 0 {
			t.Errorf("disable for an account with none: %d %v", n, err)
		}
	})
	t.Run("SameJIDAndNodeReplaces", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		for _, secret := range []string{"old", "new"} {
			if err := s.EnablePush(ctx, reg(alice, app, "n", "secret", secret), 1); err != nil {
				t.Fatalf("enable %s (cap 1, replacing): %v", secret, err)
			}
		}
		got := list(t, s, alice)
		if len(got) != 1 || got[0].Options[0].Value != "new" {
			t.Errorf("re-enabling did not replace: %s", describe(got))
		}
	})
	t.Run("DisableWithoutNodeRemovesAllOfJID", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		for _, r := range []pushstore.Registration{reg(alice, app, "a"), reg(alice, app, "b"), reg(alice, app2, "c")} {
			if err := s.EnablePush(ctx, r, 0); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.DisablePush(ctx, alice, app, ""); err != nil || n != 2 {
			t.Errorf("disable all of %s: %d %v", app, n, err)
		}
		if got := list(t, s, alice); len(got) != 1 || got[0].Node != "c" {
			t.Errorf("left: %s", describe(got))
		}
	})
	t.Run("Cap", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		for i := range 3 {
			if err := s.EnablePush(ctx, reg(alice, app, fmt.Sprint("n", i)), 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.EnablePush(ctx, reg(alice, app, "n3"), 3); !errors.Is(err, pushstore.ErrTooMany) {
			t.Errorf("fourth registration under a cap of 3: %v, want ErrTooMany", err)
		}
		if err := s.EnablePush(ctx, reg(bob, app, "n3"), 3); err != nil {
			t.Errorf("another account's first registration: %v", err)
		}
		if got := list(t, s, alice); len(got) != 3 {
			t.Errorf("refused enable changed the list: %s", describe(got))
		}
	})
	t.Run("CapHoldsUnderConcurrency", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = s.EnablePush(ctx, reg(alice, app, fmt.Sprint("c", i)), 3) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, pushstore.ErrTooMany):
				t.Errorf("concurrent enable: %v", err)
			}
		}
		if got := list(t, s, alice); ok != 3 || len(got) != 3 {
			t.Errorf("%d enables succeeded, %d stored; want 3 and 3", ok, len(got))
		}
	})
	t.Run("ManyAccountsAtOnce", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		if err := s.EnablePush(ctx, reg(alice, app, "a"), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.EnablePush(ctx, reg(carol, app2, "c"), 0); err != nil {
			t.Fatal(err)
		}
		m, err := s.PushRegistrations(ctx, []xmpp.JID{alice, bob, carol})
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 2 || len(m[alice]) != 1 || len(m[carol]) != 1 || m[carol][0].Account != carol || len(m[bob]) != 0 {
			t.Errorf("registrations of three accounts: %v", m)
		}
		if m, err := s.PushRegistrations(ctx, nil); err != nil || len(m) != 0 {
			t.Errorf("no accounts: %v %v", m, err)
		}
	})
	t.Run("DeleteAccount", func(t *testing.T) {
		s, _ := open(t)
		ctx := ctxOf(t)
		s.EnablePush(ctx, reg(alice, app, "a"), 0)
		s.EnablePush(ctx, reg(bob, app, "b"), 0)
		if err := s.DeletePushAccount(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePushAccount(ctx, carol); err != nil {
			t.Errorf("deleting an account with none: %v", err)
		}
		if got := list(t, s, alice); len(got) != 0 {
			t.Errorf("deleted account still has %s", describe(got))
		}
		if got := list(t, s, bob); len(got) != 1 {
			t.Errorf("another account lost its registration: %s", describe(got))
		}
	})
	t.Run("SurvivesReopen", func(t *testing.T) {
		s, reopen := open(t)
		ctx := ctxOf(t)
		if err := s.EnablePush(ctx, reg(alice, app, "kept", "secret", "x"), 0); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		got := list(t, s, alice)
		if len(got) != 1 || got[0].Node != "kept" || got[0].Options[0].Value != "x" {
			t.Errorf("after reopening: %s", describe(got))
		}
	})
}

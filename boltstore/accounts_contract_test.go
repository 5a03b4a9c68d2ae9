package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/account/accounttest"
)

func TestAccountStoreContract(t *testing.T) {
	accounttest.Run(t, func(t *testing.T) account.Store {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

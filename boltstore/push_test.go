package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/push/pushstore/pushstoretest"
)

func TestPushStoreContract(t *testing.T) {
	pushstoretest.Run(t, func(t *testing.T) (pushstore.Store, func() pushstore.Store) {
		dir := t.TempDir()
		s := openDir(t, dir)
		t.Cleanup(func() { s.Close() })
		return s, func() pushstore.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openDir(t, dir)
			return s
		}
	})
}

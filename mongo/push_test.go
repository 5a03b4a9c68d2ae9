package mongo

import (
	"testing"

	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/push/pushstore/pushstoretest"
)

func TestPushStoreContract(t *testing.T) {
	uri := mongotest.URI(t)
	pushstoretest.Run(t, func(t *testing.T) (pushstore.Store, func() pushstore.Store) {
		name := dbName(t)
		// later is a second connection to the same database, what a
		// restarted server sees; it also drops the database at the end.
		later := openDropped(t, uri, name)
		s := connect(t, uri, name)
		closed := false
		t.Cleanup(func() {
			if !closed {
				s.Close()
			}
		})
		return s, func() pushstore.Store {
			closed = true
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return later
		}
	})
}

package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
	"github.com/wschat/xmppws/xmpp"
)

func TestArchiveContract(t *testing.T) {
	roomstoretest.RunArchive(t, func(t *testing.T) archive.Archive { return openTemp(t).Archive() })
}

// TestArchivePersists checks that the archive survives closing and
// reopening the file, and that a removal is durable too.
func TestArchivePersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	coven := xmpp.MustParseJID("coven@muc.a.test")
	other := xmpp.MustParseJID("other@muc.a.test")
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var msgs []archive.Message
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, archive.Message{
			Room:   coven,
			ID:     fmt.Sprintf("%016x%04x", at.UnixMicro(), 7),
			Time:   at,
			Sender: xmpp.MustParseJID("alice@a.test"),
			Stanza: fmt.Appendf(nil, "<message><body>%d</body></message>", i),
		})
	}
	doomed := msgs[0]
	doomed.Room = other
	if err := s.Archive().Append(ctx, append(slices.Clone(msgs), doomed)); err != nil {
		t.Fatal(err)
	}
	if err := s.Archive().RemoveRoom(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDir(t, dir)
	defer s.Close()
	p, err := s.Archive().Query(ctx, archive.Query{Room: coven, Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b archive.Message) bool {
		return a.Room == b.Room && a.ID == b.ID && a.Time.Equal(b.Time) && a.Sender == b.Sender && bytes.Equal(a.Stanza, b.Stanza)
	}
	if !slices.EqualFunc(p.Messages, msgs, same) || p.Count != 5 || !p.Complete {
		t.Errorf("after reopen: %+v", p)
	}
	if p, err := s.Archive().Query(ctx, archive.Query{Room: other, Max: 10}); err != nil || p.Count != 0 {
		t.Errorf("removed room after reopen: %+v, %v", p, err)
	}
}

// TestArchiveEntryLayout pins the stored key and value, which operators'
// tools (bbolt's CLI) and any migration read.
func TestArchiveEntryLayout(t *testing.T) {
	s := openTemp(t)
	m := archive.Message{
		Room:   xmpp.MustParseJID("coven@muc.a.test"),
		ID:     "000612981d875000beef",
		Time:   time.UnixMicro(1709294400000000).UTC(),
		Sender: xmpp.MustParseJID("alice@a.test"),
		Stanza: []byte("<message/>"),
	}
	if err := s.Archive().Append(context.Background(), []archive.Message{m}); err != nil {
		t.Fatal(err)
	}
	wantKey := "coven@muc.a.test\x00000612981d875000beef"
	wantVal := `{"t":1709294400000000,"sender":"alice@a.test","stanza":"PG1lc3NhZ2UvPg=="}`
	err := s.db.View(func(tx *bolt.Tx) error {
		got := tx.Bucket(bucketArchive).Get([]byte(wantKey))
		if string(got) != wantVal {
			t.Errorf("entry %q = %s, want %s", wantKey, got, wantVal)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

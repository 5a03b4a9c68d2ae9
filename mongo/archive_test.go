package mongo

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/roomstore/roomstoretest"
	"github.com/wschat/xmppws/xmpp"
)

func TestArchiveContract(t *testing.T) {
	uri := mongotest.URI(t)
	roomstoretest.RunArchive(t, func(t *testing.T) archive.Archive { return openTemp(t, uri).Archive() })
}

var archT0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// archiveSeries makes n messages of room, one a millisecond and a
// microsecond apart from archT0, with id suffix n.
func archiveSeries(room xmpp.JID, n, suffix int) []archive.Message {
	msgs := make([]archive.Message, n)
	for i := range msgs {
		at := archT0.Add(time.Duration(i) * (time.Millisecond + time.Microsecond))
		msgs[i] = archive.Message{
			Room:   room,
			ID:     fmt.Sprintf("%016x%04x", at.UnixMicro(), suffix),
			Time:   at,
			Sender: alice,
			Stanza: fmt.Appendf(nil, "<message><body>%d</body></message>", i),
		}
	}
	return msgs
}

func sameArchived(a, b archive.Message) bool {
	return a.Room == b.Room && a.ID == b.ID && a.Time.Equal(b.Time) && a.Sender == b.Sender && bytes.Equal(a.Stanza, b.Stanza)
}

// TestArchivePersists checks that the archive survives the store closing
// and, with the embedded FerretDB, the server restarting on the same data.
func TestArchivePersists(t *testing.T) {
	uri, restart := restartable(t)
	ctx := testContext(t)
	name := dbName(t)
	s := connect(t, uri, name)
	msgs := archiveSeries(coven, 5, 7)
	if err := s.Archive().Append(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	restart()

	s = openDropped(t, uri, name)
	p, err := s.Archive().Query(ctx, archive.Query{Room: coven, Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(p.Messages, msgs, sameArchived) || p.Count != 5 || !p.Complete {
		t.Errorf("after restart: %+v", p)
	}
	// The indexes came back too: a duplicate is still refused.
	if err := s.Archive().Append(ctx, msgs[:1]); err == nil {
		t.Error("appending a stored id after restart succeeded")
	}
}

// TestArchiveUndoAcrossChunks refuses a batch longer than one insert chunk
// whose failing message is in a later chunk: the chunks already inserted
// are deleted again.
func TestArchiveUndoAcrossChunks(t *testing.T) {
	s := openTemp(t, mongotest.URI(t))
	ctx := testContext(t)
	stored := archiveSeries(coven, 1, 1)
	if err := s.Archive().Append(ctx, stored); err != nil {
		t.Fatal(err)
	}
	batch := archiveSeries(coven, 2*insertChunk+50, 2)
	dup := stored[0]
	dup.Stanza = []byte("<message><body>impostor</body></message>")
	batch[insertChunk+20] = dup
	if err := s.Archive().Append(ctx, batch); err == nil {
		t.Fatal("Append with a stored id succeeded")
	}
	p, err := s.Archive().Query(ctx, archive.Query{Room: coven, Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(p.Messages, stored, sameArchived) || p.Count != 1 {
		t.Errorf("after the refused batch the room holds %d messages (first %+v), want only the stored one", p.Count, p.Messages)
	}
	// The batch goes in once the duplicate is gone.
	batch[insertChunk+20] = archiveSeries(coven, insertChunk+21, 3)[insertChunk+20]
	if err := s.Archive().Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Archive().Query(ctx, archive.Query{Room: coven}); err != nil || p.Count != len(batch)+1 {
		t.Errorf("count after the accepted batch = %d, %v; want %d", p.Count, err, len(batch)+1)
	}
}

// TestArchiveDocumentLayout pins the stored document to the layout that
// operators and migration scripts read.
func TestArchiveDocumentLayout(t *testing.T) {
	s := openTemp(t, mongotest.URI(t))
	ctx := testContext(t)
	m := archive.Message{
		Room:   coven,
		ID:     "000612981d875000beef",
		Time:   time.UnixMicro(1709294400000000).UTC(),
		Sender: alice,
		Stanza: []byte("<message/>"),
	}
	if err := s.Archive().Append(ctx, []archive.Message{m}); err != nil {
		t.Fatal(err)
	}
	var raw bson.Raw
	if err := s.archive.FindOne(ctx, bson.D{{Key: "_id", Value: "coven@muc.a.test/000612981d875000beef"}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	want := `{"_id": "coven@muc.a.test/000612981d875000beef","room": "coven@muc.a.test","service": "muc.a.test",` +
		`"id": "000612981d875000beef","t": {"$date":{"$numberLong":"1709294400000"}},"sender": "alice@a.test",` +
		`"stanza": {"$binary":{"base64":"PG1lc3NhZ2UvPg==","subType":"00"}}}`
	if got := raw.String(); got != want {
		t.Errorf("archive document\n got %s\nwant %s", got, want)
	}
}

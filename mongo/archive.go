package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// The archive (XEP-0313 room history) is one collection, one document per
// message. Messages are only ever inserted and deleted, never updated, so
// the archive needs neither version conditions nor the writers' key locks.
//
// FerretDB v1 runs these queries by reading the whole collection and
// filtering in Go (it pushes down only an equality on _id); its figures in
// the benchmarks are FerretDB's, and a large archive wants MongoDB.

const (
	// insertChunk caps one InsertMany. FerretDB v1 inserts in batches of
	// 100 and, past a batch with a failed write, goes on with the next even
	// when the insert is ordered; in chunks no larger, a failed write stops
	// the insert there on both servers, which Append's undo relies on.
	insertChunk = 100
	// undoTimeout bounds deleting what a failed Append wrote; it runs even
	// when the caller's context has ended.
	undoTimeout = 10 * time.Second
)

// errInvalidArchive refuses a message the archive's order depends on (a
// malformed id, no room) or that is twice in one batch; it is a bug in the
// caller.
var errInvalidArchive = errors.New("mongo: invalid archive message")

var _ archive.Archive = (*Archive)(nil)

// Archive is the store's room history, a archive.Archive. It is a view of the
// Store rather than the Store itself because roomstore.Store and archive.Archive
// both name a RemoveDomain, with different arguments.
type Archive struct{ s *Store }

// Archive returns the store's room history; it shares the store's
// connection and is closed with it.
func (s *Store) Archive() *Archive { return &Archive{s: s} }

// archiveDoc is the stored form of a message. _id is room + "/" + id: a bare
// JID has no '/', so it is unique and a retried insert cannot duplicate a
// message. service is the room's domain, for RemoveDomain. t is the time as
// a date (milliseconds), for people and tools; the id carries microseconds.
type archiveDoc struct {
	Key     string    `bson:"_id"`
	Room    string    `bson:"room"`
	Service string    `bson:"service"`
	ID      string    `bson:"id"`
	T       time.Time `bson:"t"`
	Sender  string    `bson:"sender"`
	Stanza  []byte    `bson:"stanza"`
	// The fastening link (absent on a message of its own, so summary
	// queries select on its absence) and the folded state.
	MsgID     string     `bson:"msgid,omitempty"`
	Target    string     `bson:"target,omitempty"`
	Tomb      *tombDoc   `bson:"tomb,omitempty"`
	Edit      *editDoc   `bson:"edit,omitempty"`
	Edits     []string   `bson:"edits,omitempty"`
	Reactions []reactDoc `bson:"reactions,omitempty"`
}

type tombDoc struct {
	By         string    `bson:"by,omitempty"`
	ByOccupant string    `bson:"by_occ,omitempty"`
	At         time.Time `bson:"at"`
	AtMicro    int64     `bson:"at_us"`
	Reason     string    `bson:"reason,omitempty"`
}

type editDoc struct {
	ID   string `bson:"id"`
	T    int64  `bson:"t_us"`
	Body string `bson:"body"`
}

type reactDoc struct {
	User       string   `bson:"user"`
	OccupantID string   `bson:"occ,omitempty"`
	Emojis     []string `bson:"emojis"`
}

// foldDocs is m's folded state in stored form; a tombstone drops the
// content.
func foldDocs(m archive.Message) (tomb *tombDoc, edit *editDoc, edits []string, reacts []reactDoc) {
	if m.Tomb != nil {
		t := m.Tomb
		tomb = &tombDoc{ByOccupant: t.ByOccupant, At: t.At, AtMicro: t.At.UnixMicro(), Reason: t.Reason}
		if !t.By.IsZero() {
			tomb.By = t.By.Bare().String()
		}
		return tomb, nil, m.Edits, nil
	}
	if m.Edit != nil {
		edit = &editDoc{ID: m.Edit.ID, T: m.Edit.Time.UnixMicro(), Body: m.Edit.Body}
	}
	for _, r := range m.Reactions {
		reacts = append(reacts, reactDoc{User: r.User.Bare().String(), OccupantID: r.OccupantID, Emojis: r.Emojis})
	}
	return nil, edit, m.Edits, reacts
}

// projArchived fetches what a page returns; the room is the query's.
var projArchived = bson.D{{Key: "_id", Value: 0}, {Key: "id", Value: 1}, {Key: "t", Value: 1}, {Key: "sender", Value: 1}, {Key: "stanza", Value: 1},
	{Key: "msgid", Value: 1}, {Key: "target", Value: 1}, {Key: "tomb", Value: 1}, {Key: "edit", Value: 1}, {Key: "edits", Value: 1}, {Key: "reactions", Value: 1}}

// Append implements archive.Archive with ordered inserts. Without
// transactions a failed insert may leave part of the batch stored, so
// Append then deletes what it wrote: on a write error, the messages before
// it (the one refused, a duplicate, belongs to an earlier Append); on any
// other error, where what landed is unknown, the whole batch up to the
// failed chunk. If that undo fails too, both errors are returned and part of
// the batch may remain.
func (a *Archive) Append(ctx context.Context, msgs []archive.Message) error {
	if len(msgs) == 0 {
		return ctx.Err()
	}
	docs := make([]archiveDoc, len(msgs))
	seen := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		room := m.Room.Bare()
		if room.IsZero() || !archive.ValidID(m.ID) {
			return fmt.Errorf("mongo: archive message %q of room %q: %w", m.ID, room, errInvalidArchive)
		}
		key := room.String() + "/" + m.ID
		if seen[key] {
			return fmt.Errorf("mongo: archive message %s of %s twice in a batch: %w", m.ID, room, errInvalidArchive)
		}
		seen[key] = true
		docs[i] = archiveDoc{Key: key, Room: room.String(), Service: room.Domain, ID: m.ID, T: m.Time, Sender: m.Sender.Bare().String(), Stanza: m.Stanza,
			MsgID: m.MsgID, Target: m.Target}
		docs[i].Tomb, docs[i].Edit, docs[i].Edits, docs[i].Reactions = foldDocs(m)
		if docs[i].Tomb != nil {
			docs[i].Stanza = nil
		}
	}
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	for start := 0; start < len(docs); start += insertChunk {
		chunk := docs[start:min(start+insertChunk, len(docs))]
		_, err := a.s.archive.InsertMany(ctx, chunk)
		if err == nil {
			continue
		}
		err = fmt.Errorf("mongo: append %d archive messages: %w", len(docs), err)
		written := start + len(chunk)
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
			first := slices.MinFunc(bwe.WriteErrors, func(x, y mongo.BulkWriteError) int { return x.Index - y.Index })
			written = start + first.Index
		}
		if uerr := a.undo(ctx, docs[:written]); uerr != nil {
			return errors.Join(err, uerr)
		}
		return err
	}
	return nil
}

// undo deletes the documents of a failed Append.
func (a *Archive) undo(ctx context.Context, docs []archiveDoc) error {
	if len(docs) == 0 {
		return nil
	}
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.Key
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if _, err := a.s.archive.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}); err != nil {
		return fmt.Errorf("mongo: undo a failed archive append (up to %d messages may remain): %w", len(docs), err)
	}
	return nil
}

// Query implements archive.Archive with up to three indexed operations: the
// count of matches, the count on the paging side of the After or Before
// bound (which places the page), and the page itself. A message appended
// in between can make the counters disagree by that message.
func (a *Archive) Query(ctx context.Context, q archive.Query) (archive.Page, error) {
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return archive.Page{}, err
	}
	room := q.Room.Bare()
	r := archive.QueryIDRange(q)
	page := archive.Page{Complete: true}
	if r.Empty() {
		return page, nil
	}
	count, err := a.count(ctx, q, r)
	if err != nil {
		return archive.Page{}, err
	}
	if count == 0 {
		return page, nil
	}
	page.Count = count

	// pr is the window left after the paging bound; rest counts it.
	backward := q.Before != "" || q.Last
	pr, rest := r, count
	switch {
	case backward && q.Before != "":
		pr = r.Below(q.Before)
	case !backward && q.After != "":
		pr = r.Above(q.After)
	}
	if pr != r {
		rest = 0
		if !pr.Empty() {
			if rest, err = a.count(ctx, q, pr); err != nil {
				return archive.Page{}, err
			}
		}
	}
	if q.Max > 0 && rest > 0 {
		if page.Messages, err = a.find(ctx, room, q, pr, backward); err != nil {
			return archive.Page{}, err
		}
	}
	n := len(page.Messages)
	if backward {
		page.FirstIndex = max(rest-n, 0)
		page.Complete = page.FirstIndex == 0
	} else {
		page.FirstIndex = max(count-rest, 0)
		page.Complete = rest <= n
	}
	return page, nil
}

func (a *Archive) count(ctx context.Context, q archive.Query, r archive.IDRange) (int, error) {
	opts := options.Count()
	if q.CountMax > 0 {
		opts.SetLimit(int64(q.CountMax))
	}
	n, err := a.s.archive.CountDocuments(ctx, archiveFilter(q, r), opts)
	if err != nil {
		return 0, fmt.Errorf("mongo: count archive of %s: %w", q.Room.Bare(), err)
	}
	return int(n), nil
}

// find returns the first Max matches in r, or the last Max when backward,
// oldest first.
func (a *Archive) find(ctx context.Context, room xmpp.JID, q archive.Query, r archive.IDRange, backward bool) ([]archive.Message, error) {
	dir := 1
	if backward {
		dir = -1
	}
	opts := options.Find().SetSort(bson.D{{Key: "id", Value: dir}}).SetLimit(int64(q.Max)).SetProjection(projArchived)
	cur, err := a.s.archive.Find(ctx, archiveFilter(q, r), opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: query archive of %s: %w", room, err)
	}
	var docs []archiveDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: query archive of %s: %w", room, err)
	}
	if backward {
		slices.Reverse(docs)
	}
	out := make([]archive.Message, len(docs))
	for i, d := range docs {
		// The driver copies binary values out of its buffers, so the
		// stanza is the caller's own.
		out[i] = archive.Message{Room: room, ID: d.ID, Time: archiveTime(d.ID, d.T), Stanza: d.Stanza,
			MsgID: d.MsgID, Target: d.Target, Edits: d.Edits}
		if d.Sender != "" {
			if out[i].Sender, err = parseJID(d.Sender); err != nil {
				return nil, err
			}
		}
		if t := d.Tomb; t != nil {
			out[i].Tomb = &archive.Tombstone{ByOccupant: t.ByOccupant, At: time.UnixMicro(t.AtMicro).UTC(), Reason: t.Reason}
			if t.By != "" {
				if out[i].Tomb.By, err = parseJID(t.By); err != nil {
					return nil, err
				}
			}
		}
		if e := d.Edit; e != nil {
			out[i].Edit = &archive.Edit{ID: e.ID, Time: time.UnixMicro(e.T).UTC(), Body: e.Body}
		}
		for _, r := range d.Reactions {
			u, err := parseJID(r.User)
			if err != nil {
				return nil, err
			}
			out[i].Reactions = append(out[i].Reactions, archive.Reaction{User: u, OccupantID: r.OccupantID, Emojis: r.Emojis})
		}
	}
	return out, nil
}

// archiveFilter selects the room's messages in r that match q's other
// filters; the service leads, as in the index.
func archiveFilter(q archive.Query, r archive.IDRange) bson.D {
	room := q.Room.Bare()
	f := bson.D{{Key: "service", Value: room.Domain}, {Key: "room", Value: room.String()}}
	var id bson.D
	if r.Lo != "" {
		op := "$gte"
		if r.LoOpen {
			op = "$gt"
		}
		id = append(id, bson.E{Key: op, Value: r.Lo})
	}
	if r.Hi != "" {
		id = append(id, bson.E{Key: "$lt", Value: r.Hi})
	}
	if len(q.IDs) > 0 {
		id = append(id, bson.E{Key: "$in", Value: q.IDs})
	}
	if len(id) > 0 {
		f = append(f, bson.E{Key: "id", Value: id})
	}
	switch {
	case !q.With.IsZero():
		f = append(f, bson.E{Key: "sender", Value: q.With.Bare().String()})
	case q.Posts && !q.NotWith.IsZero():
		f = append(f, bson.E{Key: "sender", Value: bson.D{{Key: "$nin", Value: bson.A{"", q.NotWith.Bare().String()}}}})
	case q.Posts:
		f = append(f, bson.E{Key: "sender", Value: bson.D{{Key: "$ne", Value: ""}}})
	case !q.NotWith.IsZero():
		f = append(f, bson.E{Key: "sender", Value: bson.D{{Key: "$ne", Value: q.NotWith.Bare().String()}}})
	}
	if !q.With.IsZero() && !q.NotWith.IsZero() && q.With.Bare() == q.NotWith.Bare() {
		f = append(f, bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}) // nothing matches
	}
	if q.Summary {
		f = append(f, bson.E{Key: "target", Value: bson.D{{Key: "$exists", Value: false}}})
	}
	if q.MsgID != "" {
		f = append(f, bson.E{Key: "msgid", Value: q.MsgID})
	}
	return f
}

// Update implements archive.Archive, one update per message; the room's
// actor is its only writer, so no version condition is needed.
func (a *Archive) Update(ctx context.Context, msgs []archive.Message) error {
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		room := m.Room.Bare()
		tomb, edit, edits, reacts := foldDocs(m)
		set := bson.D{{Key: "edits", Value: edits}, {Key: "reactions", Value: reacts}}
		var unset bson.D
		if tomb != nil {
			set = append(set, bson.E{Key: "tomb", Value: tomb})
			unset = bson.D{{Key: "stanza", Value: ""}, {Key: "edit", Value: ""}}
		} else if edit != nil {
			set = append(set, bson.E{Key: "edit", Value: edit})
		}
		upd := bson.D{{Key: "$set", Value: set}}
		if unset != nil {
			upd = append(upd, bson.E{Key: "$unset", Value: unset})
		}
		// A tombstone is final: a tombstoned message matches no update.
		filter := bson.D{{Key: "_id", Value: room.String() + "/" + m.ID}, {Key: "tomb", Value: bson.D{{Key: "$exists", Value: false}}}}
		if _, err := a.s.archive.UpdateOne(ctx, filter, upd); err != nil {
			return fmt.Errorf("mongo: update archive message %s of %s: %w", m.ID, room, err)
		}
	}
	return nil
}

// readDoc is one member's last-read id in one room; _id is user + " " +
// room (neither JID has a space).
type readDoc struct {
	Key string `bson:"_id"`
	ID  string `bson:"id"`
	// Room and Service let RemoveRoom and RemoveDomain find a room's
	// markers without parsing keys.
	Room    string `bson:"room"`
	Service string `bson:"service"`
}

func readKey(room, user xmpp.JID) string { return user.Bare().String() + " " + room.Bare().String() }

// SetRead implements archive.Archive: an upsert conditional on the
// stored id being older; a newer one makes the upsert collide with it,
// which is the no-op asked for.
func (a *Archive) SetRead(ctx context.Context, room, user xmpp.JID, id string) error {
	if !archive.ValidID(id) {
		return fmt.Errorf("mongo: last-read id %q: %w", id, errInvalidArchive)
	}
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	key := readKey(room, user)
	_, err = a.s.reads.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "id", Value: bson.D{{Key: "$lt", Value: id}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "id", Value: id}, {Key: "room", Value: room.Bare().String()}, {Key: "service", Value: room.Domain}}}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mongo: set last-read of %s in %s: %w", user.Bare(), room.Bare(), err)
	}
	return nil
}

// Reads implements archive.Archive with one query.
func (a *Archive) Reads(ctx context.Context, user xmpp.JID, rooms []xmpp.JID) (map[string]string, error) {
	out := make(map[string]string)
	if len(rooms) == 0 {
		return out, ctx.Err()
	}
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(rooms))
	for i, r := range rooms {
		keys[i] = readKey(r, user)
	}
	cur, err := a.s.reads.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
	if err != nil {
		return nil, fmt.Errorf("mongo: read last-read of %s: %w", user.Bare(), err)
	}
	var docs []readDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read last-read of %s: %w", user.Bare(), err)
	}
	prefix := user.Bare().String() + " "
	for _, d := range docs {
		out[d.Key[len(prefix):]] = d.ID
	}
	return out, nil
}

// archiveTime is a message's time: the id's, which has the microseconds a
// date lost, unless the stored date says otherwise.
func archiveTime(id string, t time.Time) time.Time {
	if at, ok := archive.IDTime(id); ok && at.Truncate(time.Millisecond).Equal(t) {
		return at
	}
	return t.UTC()
}

// RemoveRoom implements archive.Archive.
func (a *Archive) RemoveRoom(ctx context.Context, room xmpp.JID) error {
	room = room.Bare()
	return a.deleteMany(ctx, "room "+room.String(), bson.D{{Key: "service", Value: room.Domain}, {Key: "room", Value: room.String()}})
}

// RemoveDomain implements archive.Archive.
func (a *Archive) RemoveDomain(ctx context.Context, service string) error {
	return a.deleteMany(ctx, "service "+service, bson.D{{Key: "service", Value: service}})
}

// deleteMany removes the messages and the last-read markers filter selects
// (both collections carry service and room), history first: a marker
// left by a failure in between points at nothing and is removed on retry.

// RemoveBefore implements archive.Archive on the ids, whose time is exact,
// rather than the dates, which lost the microseconds.
func (a *Archive) RemoveBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return 0, err
	}
	cut := archive.IDFrom(t)
	res, err := a.s.archive.DeleteMany(ctx, bson.D{{Key: "id", Value: bson.D{{Key: "$lt", Value: cut}}}})
	if err != nil {
		return 0, fmt.Errorf("mongo: delete archive before %s: %w", t.Format(time.RFC3339Nano), err)
	}
	return int(res.DeletedCount), nil
}

func (a *Archive) deleteMany(ctx context.Context, what string, filter bson.D) error {
	ctx, cancel, err := a.s.op(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	if _, err := a.s.archive.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("mongo: delete archive of %s: %w", what, err)
	}
	if _, err := a.s.reads.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("mongo: delete read markers of %s: %w", what, err)
	}
	return nil
}

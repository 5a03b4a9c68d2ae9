package roomstoretest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// RunArchive runs the contract suite of archive.Archive; open must return a
// new, empty archive for each subtest and arrange (with t.Cleanup) for it to
// be closed. Persistence across a restart is backend-specific and tested by
// each backend.
//
// The contract, which the room hub's MAM (XEP-0313) and RSM (XEP-0059)
// handling relies on:
//
// Append stores a batch all or none. It refuses the whole batch, with an
// error, when a message has no room, an id that is not a well-formed archive
// id (20 lowercase hex digits: 16 of unix microseconds, 4 of suffix), or an
// id already stored in that room (in the archive or earlier in the batch).
// An id identifies a message within its room; the same id may exist in two
// rooms. Every field comes back as appended: Room (bare), ID, Time (to the
// microsecond; callers set it to the time the id encodes), Sender (zero for
// the room's own notifications) and the Stanza's exact bytes. Neither side
// keeps a reference to the other's byte slices.
//
// Query selects the messages of one room that match every filter set:
//   - Start, End: the id's time t satisfies Start <= t <= End, compared at
//     full precision (an id carries microseconds, so a Start with a
//     sub-microsecond remainder excludes the microsecond it falls in);
//   - With: the sender's bare JID equals With's (a resource is ignored);
//   - AfterID, BeforeID: the id is strictly greater / less than the bound;
//   - IDs: the id is one of them; ids not stored are simply absent.
//
// Paging then picks at most Max of the matches, always returned oldest
// first:
//   - neither After, Before nor Last: the first Max matches;
//   - After x: the first Max matches with id > x (forward);
//   - Before x: the last Max matches with id < x (backward);
//   - Last: the last Max matches (backward).
//
// After and Before are bounds, not lookups: the id need not be stored. Count
// is the number of matches, whatever the page. FirstIndex is the number of
// matches older than the page's first message; for an empty page it is
// where the page would have started (the number of matches up to After
// when paging forward, 0 when paging backward). Complete says the page
// reaches the end of the matches in its direction: paging forward, no
// match is newer than the page's last message; paging backward, none is
// older than its first; an empty page is complete. Max 0 returns the Count
// and no messages.
//
// RemoveRoom deletes one room's messages, RemoveDomain those of every room
// whose JID's domain is the service (exactly, not a subdomain), and
// RemoveBefore(t) those whose id's time is before t (a message at t stays)
// in every room, returning how many. Removing what does not exist is not an
// error. Every method fails, changing nothing, on a context already done.
func RunArchive(t *testing.T, open func(t *testing.T) archive.Archive) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a archive.Archive)
	}{
		{"RoundTrip", testArchiveRoundTrip},
		{"Empty", testArchiveEmpty},
		{"ForwardPaging", testArchiveForwardPaging},
		{"BackwardPaging", testArchiveBackwardPaging},
		{"PagingBoundsNeedNotExist", testArchivePagingBounds},
		{"TimeFilters", testArchiveTimeFilters},
		{"WithFilter", testArchiveWithFilter},
		{"IDBoundFilters", testArchiveIDBounds},
		{"IDsFilter", testArchiveIDsFilter},
		{"CountOnly", testArchiveCountOnly},
		{"RoomsIsolated", testArchiveRoomsIsolated},
		{"RemoveRoom", testArchiveRemoveRoom},
		{"RemoveDomain", testArchiveRemoveDomain},
		{"FastenAndSummary", testArchiveFastenAndSummary},
		{"TombstoneEverywhere", testArchiveTombstone},
		{"MsgIDFilter", testArchiveMsgIDFilter},
		{"UnreadFilters", testArchiveUnreadFilters},
		{"ReadState", testArchiveReadState},
		{"RemoveBefore", testArchiveRemoveBefore},
		{"AppendAllOrNothing", testArchiveAppendAllOrNothing},
		{"NoAliasing", testArchiveNoAliasing},
		{"CanceledContext", testArchiveCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// archT0 is the time of the first message of a series; whole seconds apart
// from it, the tests' times are easy to read in a failure.
var archT0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// archID formats an archive id as the hub makes them: 16 hex digits of unix
// microseconds, then a 4-digit suffix.
func archID(at time.Time, n int) string { return fmt.Sprintf("%016x%04x", at.UnixMicro(), n) }

// archMsg is a message of room r at time at (to the microsecond), with id
// suffix n; a zero sender makes a room notification.
func archMsg(r xmpp.JID, at time.Time, n int, sender xmpp.JID) archive.Message {
	id := archID(at, n)
	from := r.String()
	if !sender.IsZero() {
		from += "/" + sender.Local
	}
	return archive.Message{
		Room:   r,
		ID:     id,
		Time:   time.UnixMicro(at.UnixMicro()).UTC(),
		Sender: sender,
		Stanza: fmt.Appendf(nil, `<message from='%s' id='%s' type='groupchat'><body>%s</body></message>`, from, id, id),
	}
}

// archSeries appends n messages to r, one a second from archT0, sent by
// alice and bob in turn (alice first), and returns them.
func archSeries(t *testing.T, a archive.Archive, r xmpp.JID, n int) []archive.Message {
	t.Helper()
	msgs := make([]archive.Message, n)
	for i := range msgs {
		sender := alice
		if i%2 == 1 {
			sender = bob
		}
		msgs[i] = archMsg(r, archT0.Add(time.Duration(i)*time.Second), 1, sender)
	}
	archAppend(t, a, msgs...)
	return msgs
}

func archAppend(t *testing.T, a archive.Archive, msgs ...archive.Message) {
	t.Helper()
	if err := a.Append(testContext(t), msgs); err != nil {
		t.Fatalf("Append(%d messages): %v", len(msgs), err)
	}
}

func archQuery(t *testing.T, a archive.Archive, q archive.Query) archive.Page {
	t.Helper()
	p, err := a.Query(testContext(t), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return p
}

// archIDs lists the ids of msgs, for comparing pages.
func archIDs(msgs []archive.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// pick lists the ids of msgs at the given indexes.
func pick(msgs []archive.Message, idx ...int) []string {
	ids := make([]string, len(idx))
	for i, j := range idx {
		ids[i] = msgs[j].ID
	}
	return ids
}

// span lists the indexes from..to-1.
func span(from, to int) []int {
	var idx []int
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	return idx
}

// wantPage runs q and checks the page's ids, in order, and its counters.
func wantPage(t *testing.T, a archive.Archive, q archive.Query, ids []string, count, first int, complete bool) {
	t.Helper()
	p := archQuery(t, a, q)
	got := archIDs(p.Messages)
	if !slices.Equal(got, ids) || p.Count != count || p.FirstIndex != first || p.Complete != complete {
		t.Errorf("Query(%s) =\n  %v count %d first %d complete %v\nwant\n  %v count %d first %d complete %v",
			describeQuery(q), got, p.Count, p.FirstIndex, p.Complete, ids, count, first, complete)
	}
}

// describeQuery prints the set fields of q.
func describeQuery(q archive.Query) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "room=%s max=%d", q.Room, q.Max)
	if !q.Start.IsZero() {
		fmt.Fprintf(&b, " start=%s", q.Start.Format(time.RFC3339Nano))
	}
	if !q.End.IsZero() {
		fmt.Fprintf(&b, " end=%s", q.End.Format(time.RFC3339Nano))
	}
	if !q.With.IsZero() {
		fmt.Fprintf(&b, " with=%s", q.With)
	}
	for _, f := range []struct{ name, v string }{{"after-id", q.AfterID}, {"before-id", q.BeforeID}, {"after", q.After}, {"before", q.Before}} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.name, f.v)
		}
	}
	if len(q.IDs) > 0 {
		fmt.Fprintf(&b, " ids=%v", q.IDs)
	}
	if q.Last {
		b.WriteString(" last")
	}
	return b.String()
}

func sameArchived(a, b archive.Message) bool {
	return a.Room == b.Room && a.ID == b.ID && a.Time.Equal(b.Time) && a.Sender == b.Sender && bytes.Equal(a.Stanza, b.Stanza)
}

func testArchiveRoundTrip(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	in := []archive.Message{
		archMsg(r, archT0, 1, alice),
		archMsg(r, archT0.Add(1500*time.Microsecond), 1, xmpp.JID{}), // a notification, off the millisecond
		archMsg(r, archT0.Add(2*time.Second), 0xbeef, bob),
	}
	// Bytes a text encoding might mangle must come back as they went in.
	in[2].Stanza = []byte("<message type='groupchat'><body>&lt;é\u2028\"'\x00\xff</body></message>")
	archAppend(t, a, in...)

	p := archQuery(t, a, archive.Query{Room: r, Max: 10})
	if len(p.Messages) != len(in) {
		t.Fatalf("Query returned %d messages, want %d", len(p.Messages), len(in))
	}
	for i, got := range p.Messages {
		if !sameArchived(got, in[i]) {
			t.Errorf("message %d:\n got %+v (stanza %q)\nwant %+v (stanza %q)", i, got, got.Stanza, in[i], in[i].Stanza)
		}
	}
	if p.Count != 3 || p.FirstIndex != 0 || !p.Complete {
		t.Errorf("page counters = count %d first %d complete %v; want 3, 0, true", p.Count, p.FirstIndex, p.Complete)
	}
}

func testArchiveEmpty(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	some := archID(archT0, 1)
	for _, q := range []archive.Query{
		{Room: r, Max: 10},
		{Room: r, Max: 10, Last: true},
		{Room: r, Max: 10, After: some},
		{Room: r, Max: 10, Before: some},
	} {
		wantPage(t, a, q, nil, 0, 0, true)
	}
}

func testArchiveForwardPaging(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 25)

	wantPage(t, a, archive.Query{Room: r, Max: 10}, pick(msgs, span(0, 10)...), 25, 0, false)
	wantPage(t, a, archive.Query{Room: r, Max: 10, After: msgs[9].ID}, pick(msgs, span(10, 20)...), 25, 10, false)
	wantPage(t, a, archive.Query{Room: r, Max: 10, After: msgs[19].ID}, pick(msgs, span(20, 25)...), 25, 20, true)
	// A page that ends exactly at the last message is complete too.
	wantPage(t, a, archive.Query{Room: r, Max: 5, After: msgs[19].ID}, pick(msgs, span(20, 25)...), 25, 20, true)
	// Past the end: empty, complete, positioned after everything.
	wantPage(t, a, archive.Query{Room: r, Max: 10, After: msgs[24].ID}, nil, 25, 25, true)
}

func testArchiveBackwardPaging(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 25)

	wantPage(t, a, archive.Query{Room: r, Max: 10, Last: true}, pick(msgs, span(15, 25)...), 25, 15, false)
	wantPage(t, a, archive.Query{Room: r, Max: 10, Before: msgs[15].ID}, pick(msgs, span(5, 15)...), 25, 5, false)
	wantPage(t, a, archive.Query{Room: r, Max: 10, Before: msgs[5].ID}, pick(msgs, span(0, 5)...), 25, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 5, Before: msgs[5].ID}, pick(msgs, span(0, 5)...), 25, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 10, Before: msgs[0].ID}, nil, 25, 0, true)
	// The last page of a short archive holds all of it.
	wantPage(t, a, archive.Query{Room: r, Max: 30, Last: true}, archIDs(msgs), 25, 0, true)
}

func testArchivePagingBounds(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 25) // suffix 1, so suffix 0 sorts just before

	between := archID(archT0.Add(9*time.Second+500*time.Millisecond), 0) // between 9 and 10
	justBefore9 := archID(archT0.Add(9*time.Second), 0)
	wantPage(t, a, archive.Query{Room: r, Max: 3, After: between}, pick(msgs, 10, 11, 12), 25, 10, false)
	wantPage(t, a, archive.Query{Room: r, Max: 3, Before: between}, pick(msgs, 7, 8, 9), 25, 7, false)
	wantPage(t, a, archive.Query{Room: r, Max: 3, After: justBefore9}, pick(msgs, 9, 10, 11), 25, 9, false)
	wantPage(t, a, archive.Query{Room: r, Max: 3, Before: justBefore9}, pick(msgs, 6, 7, 8), 25, 6, false)

	late := archID(archT0.Add(time.Hour), 0)
	early := archID(archT0.Add(-time.Hour), 0)
	wantPage(t, a, archive.Query{Room: r, Max: 3, After: late}, nil, 25, 25, true)
	wantPage(t, a, archive.Query{Room: r, Max: 3, Before: early}, nil, 25, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 3, After: early}, pick(msgs, 0, 1, 2), 25, 0, false)
	wantPage(t, a, archive.Query{Room: r, Max: 3, Before: late}, pick(msgs, 22, 23, 24), 25, 22, false)
	// A bound need not even look like an id: it only compares.
	wantPage(t, a, archive.Query{Room: r, Max: 2, After: "0"}, pick(msgs, 0, 1), 25, 0, false)
	wantPage(t, a, archive.Query{Room: r, Max: 2, Before: "z"}, pick(msgs, 23, 24), 25, 23, false)
}

func testArchiveTimeFilters(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	at := func(s int) time.Time { return archT0.Add(time.Duration(s) * time.Second) }
	// m2 and m3 share a microsecond; only their suffixes differ.
	msgs := []archive.Message{
		archMsg(r, at(0), 1, alice),
		archMsg(r, at(1), 1, bob),
		archMsg(r, at(2), 1, alice),
		archMsg(r, at(2), 2, bob),
		archMsg(r, at(3), 1, alice),
		archMsg(r, at(4), 1, bob),
	}
	archAppend(t, a, msgs...)
	const half = 500 * time.Nanosecond

	cases := []struct {
		name       string
		start, end time.Time
		want       []int
	}{
		{"start inclusive", at(2), time.Time{}, []int{2, 3, 4, 5}},
		{"end inclusive", time.Time{}, at(2), []int{0, 1, 2, 3}},
		{"both", at(1), at(3), []int{1, 2, 3, 4}},
		{"one microsecond", at(2), at(2), []int{2, 3}},
		{"start within a microsecond", at(2).Add(half), time.Time{}, []int{4, 5}},
		{"end within a microsecond", time.Time{}, at(2).Add(half), []int{0, 1, 2, 3}},
		{"start after end", at(3), at(1), nil},
		{"before everything", time.Time{}, at(-1), nil},
		{"after everything", at(5), time.Time{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := pick(msgs, tc.want...)
			if len(want) == 0 {
				want = nil
			}
			wantPage(t, a, archive.Query{Room: r, Start: tc.start, End: tc.end, Max: 10}, want, len(tc.want), 0, true)
		})
	}

	// Paging within a time window counts only the window.
	q := archive.Query{Room: r, Start: at(1), End: at(3), Max: 2}
	wantPage(t, a, q, pick(msgs, 1, 2), 4, 0, false)
	q.After = msgs[2].ID
	wantPage(t, a, q, pick(msgs, 3, 4), 4, 2, true)
	q.After, q.Max, q.Last = "", 3, true
	wantPage(t, a, q, pick(msgs, 2, 3, 4), 4, 1, false)
}

func testArchiveWithFilter(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	// Senders cycle alice, bob, the room itself: alice sent 0, 3, 6, 9.
	var msgs []archive.Message
	for i := range 12 {
		sender := []xmpp.JID{alice, bob, {}}[i%3]
		msgs = append(msgs, archMsg(r, archT0.Add(time.Duration(i)*time.Second), 1, sender))
	}
	archAppend(t, a, msgs...)

	q := archive.Query{Room: r, With: alice, Max: 3}
	wantPage(t, a, q, pick(msgs, 0, 3, 6), 4, 0, false)
	q.After = msgs[6].ID
	wantPage(t, a, q, pick(msgs, 9), 4, 3, true)
	q.After, q.Max, q.Last = "", 2, true
	wantPage(t, a, q, pick(msgs, 6, 9), 4, 2, false)
	q.Last, q.Before = false, msgs[6].ID
	wantPage(t, a, q, pick(msgs, 0, 3), 4, 0, true)

	// With names a user; the resource of a full JID is ignored.
	wantPage(t, a, archive.Query{Room: r, With: bob.WithResource("phone"), Max: 10}, pick(msgs, 1, 4, 7, 10), 4, 0, true)
	wantPage(t, a, archive.Query{Room: r, With: carol, Max: 10}, nil, 0, 0, true)
}

func testArchiveIDBounds(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 20)

	// AfterID 4, BeforeID 15: the matches are 5..14.
	q := archive.Query{Room: r, AfterID: msgs[4].ID, BeforeID: msgs[15].ID, Max: 4}
	wantPage(t, a, q, pick(msgs, 5, 6, 7, 8), 10, 0, false)
	q.After = msgs[8].ID
	wantPage(t, a, q, pick(msgs, 9, 10, 11, 12), 10, 4, false)
	q.After = msgs[12].ID
	wantPage(t, a, q, pick(msgs, 13, 14), 10, 8, true)
	q.After, q.Last = "", true
	wantPage(t, a, q, pick(msgs, 11, 12, 13, 14), 10, 6, false)
	q.Last, q.Before = false, msgs[11].ID
	wantPage(t, a, q, pick(msgs, 7, 8, 9, 10), 10, 2, false)
	q.Before = msgs[7].ID
	wantPage(t, a, q, pick(msgs, 5, 6), 10, 0, true)
	// A paging bound outside the filter's window pages from its edge.
	q.Before = msgs[19].ID
	wantPage(t, a, q, pick(msgs, 11, 12, 13, 14), 10, 6, false)
	q.Before, q.After = "", msgs[1].ID
	wantPage(t, a, q, pick(msgs, 5, 6, 7, 8), 10, 0, false)

	// The bounds need not be stored ids, and combine with a time filter:
	// the tighter bound wins.
	between := archID(archT0.Add(2*time.Second+time.Millisecond), 0)
	wantPage(t, a, archive.Query{Room: r, AfterID: between, Max: 2}, pick(msgs, 3, 4), 17, 0, false)
	wantPage(t, a, archive.Query{Room: r, AfterID: between, Start: archT0.Add(6 * time.Second), Max: 2}, pick(msgs, 6, 7), 14, 0, false)
	wantPage(t, a, archive.Query{Room: r, AfterID: msgs[10].ID, Start: archT0.Add(6 * time.Second), Max: 2}, pick(msgs, 11, 12), 9, 0, false)
	wantPage(t, a, archive.Query{Room: r, BeforeID: msgs[3].ID, End: archT0.Add(10 * time.Second), Max: 5}, pick(msgs, 0, 1, 2), 3, 0, true)
	wantPage(t, a, archive.Query{Room: r, BeforeID: msgs[13].ID, End: archT0.Add(10 * time.Second), Max: 2, Last: true}, pick(msgs, 9, 10), 11, 9, false)
	// An empty window.
	wantPage(t, a, archive.Query{Room: r, AfterID: msgs[5].ID, BeforeID: msgs[6].ID, Max: 5}, nil, 0, 0, true)
	wantPage(t, a, archive.Query{Room: r, AfterID: msgs[5].ID, BeforeID: msgs[5].ID, Max: 5}, nil, 0, 0, true)
}

func testArchiveIDsFilter(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 15) // even indexes from alice, odd from bob
	other := room("other", service)
	elsewhere := archMsg(other, archT0.Add(100*time.Second), 1, alice)
	archAppend(t, a, elsewhere)

	ids := []string{msgs[12].ID, msgs[3].ID, msgs[7].ID, archID(archT0.Add(time.Hour), 7), msgs[7].ID, elsewhere.ID}
	q := archive.Query{Room: r, IDs: ids, Max: 10}
	wantPage(t, a, q, pick(msgs, 3, 7, 12), 3, 0, true)
	q.Max = 2
	wantPage(t, a, q, pick(msgs, 3, 7), 3, 0, false)
	q.After = msgs[7].ID
	wantPage(t, a, q, pick(msgs, 12), 3, 2, true)
	q.After, q.Last = "", true
	wantPage(t, a, q, pick(msgs, 7, 12), 3, 1, false)

	wantPage(t, a, archive.Query{Room: r, IDs: ids, With: alice, Max: 10}, pick(msgs, 12), 1, 0, true)
	wantPage(t, a, archive.Query{Room: r, IDs: ids, AfterID: msgs[5].ID, Max: 10}, pick(msgs, 7, 12), 2, 0, true)
	wantPage(t, a, archive.Query{Room: r, IDs: ids, End: archT0.Add(3 * time.Second), Max: 10}, pick(msgs, 3), 1, 0, true)
	wantPage(t, a, archive.Query{Room: other, IDs: ids, Max: 10}, []string{elsewhere.ID}, 1, 0, true)
	wantPage(t, a, archive.Query{Room: r, IDs: []string{"nope"}, Max: 10}, nil, 0, 0, true)
}

func testArchiveCountOnly(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	archSeries(t, a, r, 25)
	for _, q := range []archive.Query{
		{Room: r},
		{Room: r, Last: true},
		{Room: r, With: bob},
	} {
		p := archQuery(t, a, q)
		want := 25
		if !q.With.IsZero() {
			want = 12
		}
		if len(p.Messages) != 0 || p.Count != want {
			t.Errorf("Query(%s) = %d messages, count %d; want none, count %d", describeQuery(q), len(p.Messages), p.Count, want)
		}
	}
}

func testArchiveRoomsIsolated(t *testing.T, a archive.Archive) {
	// Rooms whose JIDs extend one another, and a room of the same name on
	// another service.
	rs := []xmpp.JID{room("coven", service), room("coven2", service), room("coven", service+"x"), room("coven", otherService)}
	var all [][]archive.Message
	for i, r := range rs {
		msgs := archSeries(t, a, r, 3+i)
		all = append(all, msgs)
	}
	// The same id may be stored in two rooms.
	shared := archMsg(rs[0], archT0.Add(time.Minute), 9, alice)
	twin := shared
	twin.Room = rs[1]
	twin.Stanza = []byte("<message><body>twin</body></message>")
	archAppend(t, a, shared, twin)
	all[0] = append(all[0], shared)
	all[1] = append(all[1], twin)

	for i, r := range rs {
		p := archQuery(t, a, archive.Query{Room: r, Max: 100})
		if !slices.EqualFunc(p.Messages, all[i], sameArchived) || p.Count != len(all[i]) {
			t.Errorf("room %s: got %v (count %d), want %v", r, archIDs(p.Messages), p.Count, archIDs(all[i]))
		}
	}
	wantPage(t, a, archive.Query{Room: room("cove", service), Max: 100}, nil, 0, 0, true)
}

// archRooms fills a room of each given JID with a few messages.
func archRooms(t *testing.T, a archive.Archive, rs ...xmpp.JID) {
	t.Helper()
	for _, r := range rs {
		archSeries(t, a, r, 3)
	}
}

// wantRoomCount checks how many messages room r holds.
func wantRoomCount(t *testing.T, a archive.Archive, r xmpp.JID, want int) {
	t.Helper()
	p := archQuery(t, a, archive.Query{Room: r, Max: 100})
	if p.Count != want || len(p.Messages) != want {
		t.Errorf("room %s holds %d messages (count %d), want %d", r, len(p.Messages), p.Count, want)
	}
}

func testArchiveRemoveRoom(t *testing.T, a archive.Archive) {
	ctx := testContext(t)
	coven, coven2, covenX := room("coven", service), room("coven2", service), room("coven", service+"x")
	archRooms(t, a, coven, coven2, covenX)

	if err := a.RemoveRoom(ctx, coven); err != nil {
		t.Fatalf("RemoveRoom: %v", err)
	}
	wantRoomCount(t, a, coven, 0)
	wantRoomCount(t, a, coven2, 3)
	wantRoomCount(t, a, covenX, 3)
	if err := a.RemoveRoom(ctx, coven); err != nil {
		t.Errorf("RemoveRoom of an empty archive: %v", err)
	}
	// The room can start a new history.
	archSeries(t, a, coven, 2)
	wantRoomCount(t, a, coven, 2)
}

func testArchiveRemoveDomain(t *testing.T, a archive.Archive) {
	ctx := testContext(t)
	doomed := []xmpp.JID{room("coven", service), room("zebra", service), room("aardvark", service)}
	kept := []xmpp.JID{room("coven", otherService), room("coven", service+"x"), room("coven", "sub."+service), room("coven", "x"+service)}
	archRooms(t, a, append(slices.Clone(doomed), kept...)...)

	if err := a.RemoveDomain(ctx, service); err != nil {
		t.Fatalf("RemoveDomain: %v", err)
	}
	for _, r := range doomed {
		wantRoomCount(t, a, r, 0)
	}
	for _, r := range kept {
		wantRoomCount(t, a, r, 3)
	}
	if err := a.RemoveDomain(ctx, "muc.nowhere.test"); err != nil {
		t.Errorf("RemoveDomain of a service without rooms: %v", err)
	}
}

func testArchiveRemoveBefore(t *testing.T, a archive.Archive) {
	ctx := testContext(t)
	ra, rb := room("coven", service), room("other", otherService)
	ma := archSeries(t, a, ra, 10) // at 0..9 s
	var mb []archive.Message
	for i := 5; i < 10; i++ {
		mb = append(mb, archMsg(rb, archT0.Add(time.Duration(i)*time.Second), 2, carol))
	}
	archAppend(t, a, mb...)

	// A message exactly at the cut stays.
	n, err := a.RemoveBefore(ctx, archT0.Add(5*time.Second))
	if err != nil || n != 5 {
		t.Fatalf("RemoveBefore(5s) = %d, %v; want 5", n, err)
	}
	wantPage(t, a, archive.Query{Room: ra, Max: 100}, pick(ma, span(5, 10)...), 5, 0, true)
	wantPage(t, a, archive.Query{Room: rb, Max: 100}, archIDs(mb), 5, 0, true)
	if n, err := a.RemoveBefore(ctx, archT0.Add(5*time.Second)); err != nil || n != 0 {
		t.Errorf("RemoveBefore(5s) again = %d, %v; want 0", n, err)
	}
	// Half a microsecond past 7 s: the messages at 7 s are older.
	if n, err := a.RemoveBefore(ctx, archT0.Add(7*time.Second+500*time.Nanosecond)); err != nil || n != 6 {
		t.Errorf("RemoveBefore(7s+) = %d, %v; want 6", n, err)
	}
	wantPage(t, a, archive.Query{Room: ra, Max: 100}, pick(ma, 8, 9), 2, 0, true)
	wantPage(t, a, archive.Query{Room: rb, Max: 100}, pick(mb, 3, 4), 2, 0, true)
}

func testArchiveAppendAllOrNothing(t *testing.T, a archive.Archive) {
	ctx := testContext(t)
	r := room("coven", service)
	stored := archSeries(t, a, r, 3)
	if err := a.Append(ctx, nil); err != nil {
		t.Errorf("Append of no messages: %v", err)
	}

	fresh := func(s int) archive.Message {
		return archMsg(r, archT0.Add(time.Duration(s)*time.Minute), 3, alice)
	}
	malformed := fresh(1)
	malformed.ID = "not-an-archive-id"
	upper := fresh(2)
	upper.ID = "0000ABCDEF0000000001" // the right length, but ids are lowercase
	dup := stored[1]
	dup.Stanza = []byte("<message><body>impostor</body></message>")
	noRoom := fresh(3)
	noRoom.Room = xmpp.JID{}
	batches := []struct {
		name string
		msgs []archive.Message
	}{
		{"malformed id", []archive.Message{fresh(10), malformed, fresh(11)}},
		{"uppercase id", []archive.Message{fresh(10), upper}},
		{"id already stored", []archive.Message{fresh(10), fresh(11), dup, fresh(12)}},
		{"id twice in the batch", []archive.Message{fresh(10), fresh(11), fresh(10)}},
		{"no room", []archive.Message{fresh(10), noRoom}},
	}
	for _, b := range batches {
		t.Run(b.name, func(t *testing.T) {
			if err := a.Append(ctx, b.msgs); err == nil {
				t.Fatal("Append succeeded")
			}
			p := archQuery(t, a, archive.Query{Room: r, Max: 100})
			if !slices.EqualFunc(p.Messages, stored, sameArchived) {
				t.Errorf("after the refused batch the room holds %v, want %v", archIDs(p.Messages), archIDs(stored))
			}
		})
	}
}

func testArchiveNoAliasing(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	m := archMsg(r, archT0, 1, alice)
	want := bytes.Clone(m.Stanza)
	archAppend(t, a, m)
	m.Stanza[0] = 'X' // the caller reuses its buffer

	p := archQuery(t, a, archive.Query{Room: r, Max: 1})
	if len(p.Messages) != 1 || !bytes.Equal(p.Messages[0].Stanza, want) {
		t.Fatalf("stored stanza changed with the caller's buffer: %+v", p.Messages)
	}
	p.Messages[0].Stanza[0] = 'Y' // a reader scribbles on what it got
	p = archQuery(t, a, archive.Query{Room: r, Max: 1})
	if !bytes.Equal(p.Messages[0].Stanza, want) {
		t.Errorf("stored stanza changed with a reader's copy: %q", p.Messages[0].Stanza)
	}
}

func testArchiveCanceledContext(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 3)
	done, cancel := context.WithCancel(testContext(t))
	cancel()

	if err := a.Append(done, []archive.Message{archMsg(r, archT0.Add(time.Hour), 1, alice)}); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	if _, err := a.Query(done, archive.Query{Room: r, Max: 10}); err == nil {
		t.Error("Query with a canceled context succeeded")
	}
	if err := a.RemoveRoom(done, r); err == nil {
		t.Error("RemoveRoom with a canceled context succeeded")
	}
	if err := a.RemoveDomain(done, service); err == nil {
		t.Error("RemoveDomain with a canceled context succeeded")
	}
	if _, err := a.RemoveBefore(done, archT0.Add(time.Hour)); err == nil {
		t.Error("RemoveBefore with a canceled context succeeded")
	}
	wantPage(t, a, archive.Query{Room: r, Max: 10}, archIDs(msgs), 3, 0, true)
}

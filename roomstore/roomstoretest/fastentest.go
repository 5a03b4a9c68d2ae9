package roomstoretest

import (
	"slices"
	"testing"
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// The fastening contract (issue 19): a message with a Target is a
// fastening, which Summary leaves out; Update replaces a message's folded
// state (Tomb, Edit, Edits, Reactions) and nothing else; a Tomb removes the
// Stanza, Edit and Reactions from the store, so no later query of any kind
// returns them; MsgID, Posts, NotWith and CountMax filter and bound as
// archive.Query says; SetRead only advances and Reads returns it per room.

// fastening is a message of sender at at that fastens to target.
func fastening(r xmpp.JID, at time.Time, sender xmpp.JID, target string) archive.Message {
	m := archMsg(r, at, 2, sender)
	m.Target = target
	return m
}

func testArchiveFastenAndSummary(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	orig := archMsg(r, archT0, 1, alice)
	orig.MsgID = "c1"
	fix := fastening(r, archT0.Add(time.Second), alice, orig.ID)
	react := fastening(r, archT0.Add(2*time.Second), bob, orig.ID)
	other := archMsg(r, archT0.Add(3*time.Second), 1, bob)
	archAppend(t, a, orig, fix, react, other)

	fold := orig
	fold.Edit = &archive.Edit{ID: fix.ID, Time: fix.Time, Body: "fixed é"}
	fold.Edits = []string{fix.ID}
	fold.Reactions = []archive.Reaction{{User: bob, OccupantID: "occ-bob", Emojis: []string{"👍", "🎉"}}}
	fold.Stanza = []byte("<ignored/>") // Update never touches the stanza
	if err := a.Update(testContext(t), []archive.Message{fold, {Room: r, ID: archID(archT0, 0x999)}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantPage(t, a, archive.Query{Room: r, Max: 10}, archIDs([]archive.Message{orig, fix, react, other}), 4, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 10, Summary: true}, archIDs([]archive.Message{orig, other}), 2, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 1, Summary: true, After: orig.ID}, archIDs([]archive.Message{other}), 2, 1, true)

	p := archQuery(t, a, archive.Query{Room: r, Max: 1, Summary: true})
	got := p.Messages[0]
	if !sameArchived(got, orig) || got.MsgID != "c1" || got.Target != "" {
		t.Errorf("summary's original = %+v (stanza %q), want the original as appended", got, got.Stanza)
	}
	if got.Edit == nil || got.Edit.ID != fix.ID || !got.Edit.Time.Equal(fix.Time) || got.Edit.Body != "fixed é" {
		t.Errorf("Edit = %+v, want %+v", got.Edit, fold.Edit)
	}
	if !slices.Equal(got.Edits, fold.Edits) {
		t.Errorf("Edits = %v, want %v", got.Edits, fold.Edits)
	}
	if len(got.Reactions) != 1 || got.Reactions[0].User != bob || got.Reactions[0].OccupantID != "occ-bob" ||
		!slices.Equal(got.Reactions[0].Emojis, []string{"👍", "🎉"}) {
		t.Errorf("Reactions = %+v, want %+v", got.Reactions, fold.Reactions)
	}
	p = archQuery(t, a, archive.Query{Room: r, IDs: []string{fix.ID}, Max: 1})
	if len(p.Messages) != 1 || p.Messages[0].Target != orig.ID {
		t.Errorf("the correction's Target = %+v, want %s", p.Messages, orig.ID)
	}

	// A new set replaces the old one.
	fold.Reactions = []archive.Reaction{{User: alice, Emojis: []string{"❤"}}}
	if err := a.Update(testContext(t), []archive.Message{fold}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got = archQuery(t, a, archive.Query{Room: r, IDs: []string{orig.ID}, Max: 1}).Messages[0]
	if len(got.Reactions) != 1 || got.Reactions[0].User != alice || !slices.Equal(got.Reactions[0].Emojis, []string{"❤"}) {
		t.Errorf("after the second Update Reactions = %+v, want alice's ❤ only", got.Reactions)
	}
}

func testArchiveTombstone(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	orig := archMsg(r, archT0, 1, alice)
	fix := fastening(r, archT0.Add(time.Second), alice, orig.ID)
	archAppend(t, a, orig, fix)
	at := time.UnixMicro(archT0.Add(time.Minute).UnixMicro()).UTC()
	tomb := &archive.Tombstone{By: bob, ByOccupant: "occ-bob", At: at, Reason: "spam"}
	dead := orig
	dead.Edit = &archive.Edit{ID: fix.ID, Time: fix.Time, Body: "secret"}
	dead.Reactions = []archive.Reaction{{User: bob, Emojis: []string{"👍"}}}
	dead.Edits = []string{fix.ID}
	dead.Tomb = tomb
	deadFix := fix
	deadFix.Tomb = tomb
	if err := a.Update(testContext(t), []archive.Message{dead, deadFix}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	for _, q := range []archive.Query{
		{Room: r, Max: 10},
		{Room: r, Max: 10, Last: true},
		{Room: r, Max: 10, Summary: true},
		{Room: r, Max: 10, IDs: []string{orig.ID, fix.ID}},
		{Room: r, Max: 10, With: alice},
	} {
		p := archQuery(t, a, q)
		if len(p.Messages) == 0 {
			t.Errorf("Query(%s): no messages, want the tombstones", describeQuery(q))
		}
		for _, m := range p.Messages {
			if len(m.Stanza) != 0 || m.Edit != nil || len(m.Reactions) != 0 {
				t.Errorf("Query(%s): tombstone %s still has stanza %q, edit %+v, reactions %+v", describeQuery(q), m.ID, m.Stanza, m.Edit, m.Reactions)
			}
			if m.Tomb == nil || m.Tomb.By != bob || m.Tomb.ByOccupant != "occ-bob" || !m.Tomb.At.Equal(at) || m.Tomb.Reason != "spam" {
				t.Errorf("Query(%s): %s Tomb = %+v, want %+v", describeQuery(q), m.ID, m.Tomb, tomb)
			}
			if m.Sender != alice {
				t.Errorf("Query(%s): tombstone sender = %v, want the author", describeQuery(q), m.Sender)
			}
		}
	}
	// A later Update cannot bring the content back.
	dead.Tomb = nil
	dead.Edit = &archive.Edit{ID: fix.ID, Body: "back"}
	if err := a.Update(testContext(t), []archive.Message{dead}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	m := archQuery(t, a, archive.Query{Room: r, Max: 1, IDs: []string{orig.ID}}).Messages[0]
	if len(m.Stanza) != 0 || m.Edit != nil || m.Tomb == nil {
		t.Errorf("an Update without Tomb revived the message: stanza %q, edit %+v, tomb %+v", m.Stanza, m.Edit, m.Tomb)
	}
}

func testArchiveMsgIDFilter(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	m1 := archMsg(r, archT0, 1, alice)
	m1.MsgID = "same"
	m2 := archMsg(r, archT0.Add(time.Second), 1, bob)
	m2.MsgID = "same"
	m3 := archMsg(r, archT0.Add(2*time.Second), 1, alice)
	m3.MsgID = "other"
	archAppend(t, a, m1, m2, m3)
	wantPage(t, a, archive.Query{Room: r, Max: 10, MsgID: "same"}, pick([]archive.Message{m1, m2}, 0, 1), 2, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 1, Last: true, MsgID: "same"}, []string{m2.ID}, 2, 1, false)
	wantPage(t, a, archive.Query{Room: r, Max: 10, MsgID: "none"}, nil, 0, 0, true)
}

func testArchiveUnreadFilters(t *testing.T, a archive.Archive) {
	r := room("coven", service)
	msgs := archSeries(t, a, r, 6) // alice, bob, alice, bob, alice, bob
	notice := archMsg(r, archT0.Add(10*time.Second), 1, xmpp.JID{})
	react := fastening(r, archT0.Add(11*time.Second), bob, msgs[0].ID)
	archAppend(t, a, notice, react)
	all := append(slices.Clone(msgs), notice, react)
	wantPage(t, a, archive.Query{Room: r, Max: 10, Posts: true}, archIDs(append(slices.Clone(msgs), react)), 7, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 10, NotWith: alice}, pick(all, 1, 3, 5, 6, 7), 5, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 10, NotWith: alice, Posts: true, Summary: true}, pick(all, 1, 3, 5), 3, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 10, NotWith: alice, Posts: true, Summary: true, AfterID: msgs[1].ID}, pick(all, 3, 5), 2, 0, true)
	// The newest message of its own, cheaply (a room list's last activity).
	wantPage(t, a, archive.Query{Room: r, Max: 1, Last: true, Summary: true, CountMax: 1}, []string{notice.ID}, 1, 0, true)
	wantPage(t, a, archive.Query{Room: r, Max: 1, Last: true, Summary: true, Posts: true, CountMax: 1}, []string{msgs[5].ID}, 1, 0, true)
	for _, max := range []int{1, 2, 100} {
		p := archQuery(t, a, archive.Query{Room: r, Summary: true, CountMax: max})
		if want := min(max, 7); p.Count != want {
			t.Errorf("CountMax %d: Count = %d, want %d", max, p.Count, want)
		}
	}
}

func testArchiveReadState(t *testing.T, a archive.Archive) {
	ctx := testContext(t)
	r1, r2, r3 := room("coven", service), room("moot", service), room("empty", service)
	id1, id2 := archID(archT0, 1), archID(archT0.Add(time.Second), 1)
	for _, step := range []struct {
		room xmpp.JID
		user xmpp.JID
		id   string
	}{{r1, alice, id2}, {r1, alice, id1}, {r2, alice, id1}, {r2, bob, id2}} {
		if err := a.SetRead(ctx, step.room, step.user, step.id); err != nil {
			t.Fatalf("SetRead(%v, %v, %s): %v", step.room, step.user, step.id, err)
		}
	}
	if err := a.SetRead(ctx, r1, alice, "bogus"); err == nil {
		t.Error("SetRead with a malformed id succeeded")
	}
	got, err := a.Reads(ctx, alice.WithResource("phone"), []xmpp.JID{r1, r2, r3})
	if err != nil {
		t.Fatalf("Reads: %v", err)
	}
	want := map[string]string{r1.String(): id2, r2.String(): id1}
	if len(got) != len(want) || got[r1.String()] != id2 || got[r2.String()] != id1 {
		t.Errorf("Reads(alice) = %v, want %v (an older id does not go back; other users apart)", got, want)
	}
	got, err = a.Reads(ctx, bob, []xmpp.JID{r1, r2})
	if err != nil || len(got) != 1 || got[r2.String()] != id2 {
		t.Errorf("Reads(bob) = %v, %v; want only %s: %s", got, err, r2, id2)
	}

	// A destroyed room's markers go with its history, so a room created
	// later under the same name does not start from them.
	if err := a.RemoveRoom(ctx, r1); err != nil {
		t.Fatalf("RemoveRoom: %v", err)
	}
	got, err = a.Reads(ctx, alice, []xmpp.JID{r1, r2})
	if err != nil || len(got) != 1 || got[r2.String()] != id1 {
		t.Errorf("Reads(alice) after RemoveRoom(%s) = %v, %v; want only %s: %s", r1, got, err, r2, id1)
	}
	other := room("moot", otherService)
	if err := a.SetRead(ctx, other, alice, id1); err != nil {
		t.Fatalf("SetRead: %v", err)
	}
	if err := a.RemoveDomain(ctx, service); err != nil {
		t.Fatalf("RemoveDomain: %v", err)
	}
	got, err = a.Reads(ctx, alice, []xmpp.JID{r1, r2, other})
	if err != nil || len(got) != 1 || got[other.String()] != id1 {
		t.Errorf("Reads(alice) after RemoveDomain(%s) = %v, %v; want only %s: %s", service, got, err, other, id1)
	}
	if got, err = a.Reads(ctx, bob, []xmpp.JID{r2}); err != nil || len(got) != 0 {
		t.Errorf("Reads(bob) after RemoveDomain = %v, %v; want none", got, err)
	}
}

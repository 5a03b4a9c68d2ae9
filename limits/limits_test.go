package limits

import (
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func limiterFor(t *testing.T, l Limits, room string) *RoomLimiter {
	t.Helper()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewRoomLimiter(&l, xmpp.MustParseJID(room), t0)
}

func TestBurstThenRefusal(t *testing.T) {
	rl := limiterFor(t, DefaultLimits(), "r@m")
	for i := 0; i < 3; i++ { // capacity 0.5 × 6 = 3
		if se, _ := rl.chk(roomstore.Member, "hi", t0); se != nil {
			t.Fatalf("event %d refused: %v", i, se)
		}
	}
	se, reason := rl.chk(roomstore.Member, "hi", t0)
	if se != &refusalOveractive || reason != ReasonRate || !se.Wait || se.Condition != "policy-violation" {
		t.Fatalf("4th event: %v %s", se, reason)
	}
}

func TestRefillLetsExactlyOneMore(t *testing.T) {
	rl := limiterFor(t, DefaultLimits(), "r@m")
	for i := 0; i < 3; i++ {
		rl.chk(roomstore.Member, "", t0)
	}
	almost := t0.Add(2*time.Second - time.Millisecond) // 1/rate = 2 s
	if se, _ := rl.chk(roomstore.Member, "", almost); se == nil {
		t.Fatal("passed before a whole token refilled")
	}
	at := t0.Add(2 * time.Second)
	if se, _ := rl.chk(roomstore.Member, "", at); se != nil {
		t.Fatalf("refused after 1/rate: %v", se)
	}
	if se, _ := rl.chk(roomstore.Member, "", at); se == nil {
		t.Fatal("a second event passed on one refilled token")
	}
}

func TestMultiLineCost(t *testing.T) {
	rl := limiterFor(t, DefaultLimits(), "r@m")
	ten := strings.Repeat("line\n", 10) // cost 1 + 10 × 0.1 = 2
	if se, _ := rl.chk(roomstore.Member, ten, t0); se != nil {
		t.Fatal(se)
	}
	if se, _ := rl.chk(roomstore.Member, ten, t0); se == nil { // 1 token left, cost 2
		t.Fatal("a 2-token message passed with 1 token left")
	}
	if se, _ := rl.chk(roomstore.Member, "one line", t0); se != nil { // the refusal took nothing
		t.Fatalf("refused message consumed tokens: %v", se)
	}
}

func TestSizeLimits(t *testing.T) {
	l := DefaultLimits()
	l.MaxCharCount = 10
	l.MaxLineCount = 2
	rl := limiterFor(t, l, "r@m")
	for _, tc := range []struct {
		body, reason string
	}{
		{"ok", ""},
		{"0123456789", ""},
		{"01234567890", ReasonTooLong},
		{"ééééé", ""},             // 10 bytes
		{"éééééé", ReasonTooLong}, // 6 runes, 12 bytes
		{"a\nb\nc", ""},
		{"a\nb\nc\n", ReasonTooManyLines},
	} {
		rl.bucket = NewBucket(100, 10, t0)
		se, reason := rl.chk(roomstore.Member, tc.body, t0)
		if reason != tc.reason {
			t.Errorf("%q: reason %q, want %q", tc.body, reason, tc.reason)
		}
		if tc.reason != "" && (se.Wait || se.Condition != "policy-violation" || se.Text != "Your message is too long, please write a shorter one") {
			t.Errorf("%q: %+v", tc.body, se)
		}
	}
	// A size refusal costs nothing.
	rl.bucket = NewBucket(1, 1, t0)
	rl.chk(roomstore.Member, "01234567890", t0)
	if se, _ := rl.chk(roomstore.Member, "ok", t0); se != nil {
		t.Error("size refusal consumed the only token")
	}
}

func TestExemptions(t *testing.T) {
	l := DefaultLimits()
	l.EventRate = 0
	l.ExemptAffiliations = []roomstore.Affiliation{roomstore.Owner}
	rl := limiterFor(t, l, "r@m")
	if se, _ := rl.chk(roomstore.Owner, strings.Repeat("x", 10000), t0); se != nil {
		t.Errorf("exempt owner refused: %v", se)
	}
	if se, _ := rl.chk(roomstore.Member, "x", t0); se == nil {
		t.Error("member not limited")
	}
}

func TestPerRoomOverride(t *testing.T) {
	l := DefaultLimits()
	l.Rooms = map[string]RateOverride{"busy@m": {EventRate: 10, BurstFactor: 2}}
	busy, other := limiterFor(t, l, "busy@m"), limiterFor(t, l, "quiet@m")
	for i := 0; i < 20; i++ {
		if se, _ := busy.chk(roomstore.Member, "", t0); se != nil {
			t.Fatalf("override room refused event %d", i)
		}
	}
	if se, _ := busy.chk(roomstore.Member, "", t0); se == nil {
		t.Error("override capacity 20 exceeded")
	}
	for i := 0; i < 3; i++ {
		other.chk(roomstore.Member, "", t0)
	}
	if se, _ := other.chk(roomstore.Member, "", t0); se == nil {
		t.Error("the override leaked to another room")
	}
}

func TestZeroRateRefusesEverything(t *testing.T) {
	l := DefaultLimits()
	l.EventRate = 0
	rl := limiterFor(t, l, "r@m")
	if se, _ := rl.chk(roomstore.Member, "x", t0.Add(time.Hour)); se == nil {
		t.Error("zero rate let an event through")
	}
}

func TestNickLength(t *testing.T) {
	rl := limiterFor(t, DefaultLimits(), "r@m")
	if se, _ := rl.chkNick(roomstore.Member, strings.Repeat("n", 23)); se != nil {
		t.Error(se)
	}
	if se, reason := rl.chkNick(roomstore.Member, strings.Repeat("n", 24)); se == nil || reason != ReasonNickTooLong || se.Wait {
		t.Errorf("long nick: %v %s", se, reason)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, l := range []Limits{
		{EventRate: -1, BurstFactor: 1, MaxNickLength: 1, MaxCharCount: 1},
		{EventRate: 1, BurstFactor: 0.5, MaxNickLength: 1, MaxCharCount: 1},
		{EventRate: 1, BurstFactor: 1, MaxNickLength: 1, MaxCharCount: 1, ExemptAffiliations: []roomstore.Affiliation{"admin"}},
		{EventRate: 1, BurstFactor: 1, MaxNickLength: 1, MaxCharCount: 1, Rooms: map[string]RateOverride{"nope": {EventRate: 1, BurstFactor: 1}}},
	} {
		if l.Validate() == nil {
			t.Errorf("accepted %+v", l)
		}
	}
	if rl := NewRoomLimiter(&Limits{}, xmpp.MustParseJID("r@m"), t0); rl != nil {
		t.Error("disabled limits made a limiter")
	}
}

func BenchmarkLimiterCheck(b *testing.B) {
	l := DefaultLimits()
	l.EventRate, l.BurstFactor = 1e12, 1 // never runs dry
	rl := NewRoomLimiter(&l, xmpp.MustParseJID("r@m"), t0)
	body := "Harpier cries: 'tis time, 'tis time.\nSecond line."
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		if se, _ := rl.chk(roomstore.Member, body, now); se != nil {
			b.Fatal(se)
		}
	}
}

// chk is Check with the reason beside, as the tests read it.
func (rl *RoomLimiter) chk(aff roomstore.Affiliation, body string, now time.Time) (*Refusal, string) {
	r := rl.Check(aff, body, now)
	if r == nil {
		return nil, ""
	}
	return r, r.Reason
}

func (rl *RoomLimiter) chkNick(aff roomstore.Affiliation, nick string) (*Refusal, string) {
	r := rl.CheckNick(aff, nick)
	if r == nil {
		return nil, ""
	}
	return r, r.Reason
}

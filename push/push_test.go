package push

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wschat/xmppws/xmpp"
)

func TestThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	bob, carol := xmpp.MustParseJID("bob@x"), xmpp.MustParseJID("carol@x")
	r1, r2 := xmpp.MustParseJID("r1@muc.x"), xmpp.MustParseJID("r2@muc.x")
	th := newThrottle(30*time.Second, 3)
	for _, tc := range []struct {
		member, room xmpp.JID
		at           time.Duration
		want         int
	}{
		{bob, r1, 0, throttleSend},
		{bob, r1, time.Second, throttleSuppress},
		{bob, r2, time.Second, throttleSend},   // another room
		{carol, r1, time.Second, throttleSend}, // another member
		{bob, r1, 29 * time.Second, throttleSuppress},
		{carol, r2, 29 * time.Second, throttleFull}, // three remembered, none expired: not sent
		{bob, r1, 30 * time.Second, throttleSend},   // the interval passed
		{carol, r2, 31 * time.Second, throttleSend}, // bob in r2 and carol in r1 expired: room again
	} {
		if got := th.take(throttleKey{tc.member, tc.room}, t0.Add(tc.at)); got != tc.want {
			t.Errorf("%s in %s at +%v: %d, want %d", tc.member, tc.room, tc.at, got, tc.want)
		}
	}
	if n := th.size.Load(); n != 2 {
		t.Errorf("%d entries remembered, want 2 (the others expired)", n)
	}
	// Strangers do not pile up: after an interval with nothing new,
	// nothing is left.
	th.expire(t0.Add(2 * time.Minute))
	if len(th.last) != 0 || len(th.order)-th.head != 0 {
		t.Errorf("after the interval: %d entries, %d in order", len(th.last), len(th.order)-th.head)
	}
}

func TestThrottleStaysBounded(t *testing.T) {
	th := newThrottle(time.Second, 100)
	t0 := time.Unix(0, 0)
	for i := range 100000 {
		k := throttleKey{xmpp.MustParseJID(fmt.Sprintf("u%d@x", i%5000)), xmpp.MustParseJID("r@muc.x")}
		th.take(k, t0.Add(time.Duration(i)*time.Millisecond))
		if len(th.last) > 100 || len(th.order)-th.head > 2*100+1 {
			t.Fatalf("at %d: %d entries, %d queued", i, len(th.last), len(th.order)-th.head)
		}
	}
}

func TestPreview(t *testing.T) {
	short := "hello"
	if preview(short) != short {
		t.Error("a short body was changed")
	}
	long := strings.Repeat("é", 250)
	p := preview(long)
	if utf8.RuneCountInString(p) != BodyPreview || !strings.HasSuffix(p, "…") || !utf8.ValidString(p) {
		t.Errorf("preview of 250 runes: %d runes, %q", utf8.RuneCountInString(p), p)
	}
	if exact := strings.Repeat("a", BodyPreview); preview(exact) != exact {
		t.Error("a body of exactly BodyPreview characters was cut")
	}
}

func TestParsePost(t *testing.T) {
	for _, tc := range []struct {
		stanza, id, body string
		ok               bool
	}{
		{`<message xmlns='jabber:client' id='m1' type='groupchat'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='r@s' id='A1'/></message>`, "A1", "hi", true},
		{`<message xmlns='jabber:client' id='m2' type='groupchat'><body>no history</body></message>`, "m2", "no history", true},
		{`<message xmlns='jabber:client' id='m3' type='groupchat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, "", "", false},
		{`<message xmlns='jabber:client' id='m4' type='groupchat'><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>`, "", "", false},
		{`<message xmlns='jabber:client' id='m5' type='groupchat'><body>This person attempted to retract a previous message</body><apply-to xmlns='urn:xmpp:fasten:0' id='A1'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>`, "", "", false},
		{`<message`, "", "", false},
	} {
		id, body, ok := parsePost([]byte(tc.stanza))
		if id != tc.id || body != tc.body || ok != tc.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", tc.stanza, id, body, ok, tc.id, tc.body, tc.ok)
		}
	}
}

func TestSign(t *testing.T) {
	body := []byte(`{"room":"r@muclight.localhost"}`)
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte("1700000000." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign("k", "1700000000", body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if Sign("k", "1700000001", body) == want {
		t.Error("the timestamp is not signed")
	}
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	for attempt, full := range []time.Duration{base, 2 * base, 4 * base, 8 * base} {
		for range 50 {
			d := backoff(base, attempt)
			if d < full/2 || d > full {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
	if d := backoff(base, 40); d > maxBackoff || d < maxBackoff/2 {
		t.Errorf("attempt 40: %v, want capped at %v", d, maxBackoff)
	}
}

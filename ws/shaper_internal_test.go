package ws

import (
	"testing"
	"time"
)

// TestShaperArithmetic checks the buckets' delays on a fixed clock: a burst
// passes at once, the next frame waits one token's time, a quiet second
// refills, and a frame over the byte burst is charged as the burst.
func TestShaperArithmetic(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	sh := newShaper(ShaperConfig{StanzaRate: 10, StanzaBurst: 2, ByteRate: 1000, ByteBurst: 1000})
	steps := []struct {
		at           time.Duration
		n            int
		wantS, wantB time.Duration
	}{
		{0, 100, 0, 0},
		{0, 100, 0, 0},
		{0, 100, 100 * time.Millisecond, 0}, // third stanza of a burst of 2
		{0, 500, 200 * time.Millisecond, 0}, // 800 bytes so far: still within the byte burst
		{0, 700, 300 * time.Millisecond, 500 * time.Millisecond}, // 1,500: 500 bytes over
		{time.Second, 5000, 0, 500 * time.Millisecond},           // 500 bytes refilled; 5,000 charged as the burst of 1,000
	}
	for i, st := range steps {
		s, b := sh.reserve(t0.Add(st.at), st.n)
		if s != st.wantS || b != st.wantB {
			t.Errorf("step %d (+%v, %d bytes): delays %v/%v, want %v/%v", i, st.at, st.n, s, b, st.wantS, st.wantB)
		}
	}
}

func TestShaperOff(t *testing.T) {
	if sh := newShaper(ShaperConfig{StanzaBurst: 5, ByteBurst: 5}); sh != nil {
		t.Errorf("zero rates built a shaper: %+v", sh)
	}
	sh := newShaper(ShaperConfig{ByteRate: 100, ByteBurst: 100})
	for range 1000 {
		if s, _ := sh.reserve(time.Unix(0, 0), 0); s != 0 {
			t.Fatalf("the stanza bucket is off but delayed %v", s)
		}
	}
}

// BenchmarkShaperReserve is the shaper's cost per frame read, both buckets
// on and never in debt (the common case).
func BenchmarkShaperReserve(b *testing.B) {
	sh := newShaper(ShaperConfig{StanzaRate: 1e9, StanzaBurst: 1 << 30, ByteRate: 1e12, ByteBurst: 1 << 40})
	now := time.Now()
	for b.Loop() {
		sh.reserve(now, 300)
	}
}

package ws

import (
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// shaper is one session's ingress pacing: a token bucket on frames and one
// on bytes. It only computes delays; the reader does the waiting, so a
// sender over its rate is slowed by TCP instead of being refused or closed.
// Only the reader goroutine uses it.
type shaper struct {
	stanzas *rate.Limiter // nil: that bucket is off
	bytes   *rate.Limiter
	maxN    int // a frame larger than the byte burst is charged as the burst
}

func newShaper(cfg ShaperConfig) *shaper {
	sh := &shaper{}
	if cfg.StanzaRate > 0 {
		sh.stanzas = rate.NewLimiter(rate.Limit(cfg.StanzaRate), max(cfg.StanzaBurst, 1))
	}
	if cfg.ByteRate > 0 {
		sh.maxN = max(cfg.ByteBurst, 1)
		sh.bytes = rate.NewLimiter(rate.Limit(cfg.ByteRate), sh.maxN)
	}
	if sh.stanzas == nil && sh.bytes == nil {
		return nil
	}
	return sh
}

// reserve charges one frame of n bytes read at now and returns how long
// each bucket wants the reader to wait before it reads the next one. The
// tokens are taken even when a delay is due: the reader always waits it
// out, so the debt is paid in time.
func (sh *shaper) reserve(now time.Time, n int) (stanzaDelay, byteDelay time.Duration) {
	if sh.stanzas != nil {
		stanzaDelay = sh.stanzas.ReserveN(now, 1).DelayFrom(now)
	}
	if sh.bytes != nil && n > 0 {
		byteDelay = sh.bytes.ReserveN(now, min(n, sh.maxN)).DelayFrom(now)
	}
	return stanzaDelay, byteDelay
}

// shape is the reader's pause after a frame of n bytes: it waits as long as
// the stricter bucket asks, on a timer that the session's end cuts short.
// It reports false when the session ended while waiting.
func (s *session) shape(n int) bool {
	if s.shaper == nil {
		return true
	}
	sd, bd := s.shaper.reserve(time.Now(), n)
	m := s.srv.im
	if sd > 0 {
		m.shaperDelays[bucketStanzas].Inc()
		m.shaperSeconds[bucketStanzas].Add(sd.Seconds())
	}
	if bd > 0 {
		m.shaperDelays[bucketBytes].Inc()
		m.shaperSeconds[bucketBytes].Add(bd.Seconds())
	}
	d := max(sd, bd)
	if d <= 0 {
		return true
	}
	bucket := "stanzas"
	if bd > sd {
		bucket = "bytes"
	}
	key := s.bareStr
	if key == "" {
		key = remoteIP(s.remote)
	}
	s.srv.throttle.Log(s.log, slog.LevelInfo, "shaped:"+key, "sender shaped", "bucket", bucket, "delay", d.Round(time.Millisecond))
	if d == rate.InfDuration || d > math.MaxInt64/2 {
		d = time.Minute // cannot happen with a positive rate; bound it anyway
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// The shaper's buckets, as metric labels.
const (
	bucketStanzas = iota
	bucketBytes
)

var bucketNames = [...]string{bucketStanzas: "stanzas", bucketBytes: "bytes"}

package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear, as HdrHistogram's: values below 2^subBits
// nanoseconds have a bucket each, and every power of two above is split into
// 2^(subBits-1) equal buckets, so a bucket is never wider than 1/128 of the
// values in it. 7424 counters (58 KiB) cover every int64 duration, whatever
// the run's length: memory does not grow with the number of samples.
const (
	subBits    = 8
	subCount   = 1 << subBits // 256 exact buckets for 0..255 ns
	halfCount  = subCount / 2 // buckets per power of two above that
	numBuckets = subCount + (64-subBits)*halfCount
)

// Histogram records durations from many goroutines at once (atomic counters,
// no lock) and answers quantiles within 1/128 (0.8%) of the true value; the
// minimum and maximum are exact.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds; 2^64 ns is 584 years of latency
	min1   atomic.Int64  // smallest value + 1, so that zero means none yet
	max    atomic.Int64
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	v1 := v + 1
	if v == math.MaxInt64 {
		v1 = v
	}
	for {
		cur := h.min1.Load()
		if (cur != 0 && cur <= v1) || h.min1.CompareAndSwap(cur, v1) {
			break
		}
	}
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // ≥ 1
	mant := v >> shift               // in [halfCount, subCount)
	return subCount + (shift-1)*halfCount + int(mant-halfCount)
}

// bucketMax is the largest value that falls in bucket i.
func bucketMax(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	i -= subCount
	shift := i/halfCount + 1
	mant := uint64(i%halfCount + halfCount)
	hi := (mant+1)<<shift - 1
	if hi < mant<<shift { // the last bucket reaches 2^64-1
		return math.MaxUint64
	}
	return hi
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest recorded duration (0 when empty).
func (h *Histogram) Max() time.Duration {
	if h.n.Load() == 0 {
		return 0
	}
	return time.Duration(h.max.Load())
}

// Min is the smallest recorded duration (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.n.Load() == 0 {
		return 0
	}
	return time.Duration(h.min1.Load() - 1)
}

// Mean is the average recorded duration (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the smallest duration that at least q (0..1) of the
// recorded durations do not exceed, as the top of its bucket clamped to the
// exact min and max; 0 when empty. Call it once recording has stopped.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := time.Duration(min(bucketMax(i), uint64(math.MaxInt64)))
			return min(max(v, h.Min()), h.Max())
		}
	}
	return h.Max()
}

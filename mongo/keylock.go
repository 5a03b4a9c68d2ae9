package mongo

import (
	"context"
	"hash/maphash"
	"slices"
)

// keyLocks serialises this process's read-modify-write cycles on one
// document (a room, a blocking list).
//
// On MongoDB the version condition in the update filter is enough: the
// server matches the filter and writes the document atomically. FerretDB v1
// does not: it selects the matching documents, applies the update in Go and
// writes them back by _id, so two writers that read the same version can
// both match it and the second silently overwrites the first
// (FerretDB/FerretDB#3040). Serialising the cycles of one process closes
// that gap for a single node; the version condition still guards against
// other processes wherever the server honours it.
//
// Keys hash onto a fixed set of stripes, so memory stays bounded however
// many rooms there are; two documents sharing a stripe only wait for each
// other.
type keyLocks struct {
	seed    maphash.Seed
	stripes [lockStripes]chan struct{}
}

const lockStripes = 256

func newKeyLocks() *keyLocks {
	l := &keyLocks{seed: maphash.MakeSeed()}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// lock waits for key's stripe, or for ctx to end; unlock releases it.
func (l *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := l.stripes[maphash.String(l.seed, key)%lockStripes]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockAll waits for the stripes of every key, taken in stripe order so that
// two callers cannot each hold what the other waits for, or fails when ctx
// ends; unlock releases them all.
func (l *keyLocks) lockAll(ctx context.Context, keys []string) (unlock func(), err error) {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, int(maphash.String(l.seed, k)%lockStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	release := func(held []int) {
		for _, i := range held {
			<-l.stripes[i]
		}
	}
	for n, i := range idx {
		select {
		case l.stripes[i] <- struct{}{}:
		case <-ctx.Done():
			release(idx[:n])
			return nil, ctx.Err()
		}
	}
	return func() { release(idx) }, nil
}

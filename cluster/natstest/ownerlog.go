package natstest

import (
	"sync"
	"testing"
	"time"
)

// OwnerLog is the no-two-owners checker. Actors report when they start
// acting for a room (after their lease was granted) and each time they act
// (after checking the lease is valid); Check then fails if two nodes' spans
// of acting for one room overlap. It is safe for concurrent use.
type OwnerLog struct {
	mu    sync.Mutex
	spans []*Span
}

// Span is one stretch of one node acting for one room.
type Span struct {
	log        *OwnerLog
	room, node string
	start      time.Time
	last       time.Time // the last Acted, or start
	ended      bool
}

// Start records that node starts acting for room now.
func (l *OwnerLog) Start(room, node string) *Span {
	now := time.Now()
	s := &Span{log: l, room: room, node: node, start: now, last: now}
	l.mu.Lock()
	l.spans = append(l.spans, s)
	l.mu.Unlock()
	return s
}

// Acted records that the span's node acted for its room now.
func (s *Span) Acted() {
	now := time.Now()
	s.log.mu.Lock()
	if !s.ended {
		s.last = now
	}
	s.log.mu.Unlock()
}

// End records that the node stopped acting; later Acted calls are
// ignored, as an actor that has stopped cannot act.
func (s *Span) End() {
	s.log.mu.Lock()
	s.ended = true
	s.log.mu.Unlock()
}

// Check fails t for every room where spans of two different nodes overlap:
// [start, last Acted] of one intersects [start, last Acted] of another.
func (l *OwnerLog) Check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	byRoom := map[string][]*Span{}
	for _, s := range l.spans {
		byRoom[s.room] = append(byRoom[s.room], s)
	}
	for room, spans := range byRoom {
		for i, a := range spans {
			for _, b := range spans[i+1:] {
				if a.node != b.node && !a.start.After(b.last) && !b.start.After(a.last) {
					t.Errorf("room %s had two acting owners: %s from %v to %v and %s from %v to %v", room,
						a.node, a.start.Format(time.StampMicro), a.last.Format(time.StampMicro),
						b.node, b.start.Format(time.StampMicro), b.last.Format(time.StampMicro))
				}
			}
		}
	}
}

// Spans is how many spans were recorded, for a test to show it exercised
// something.
func (l *OwnerLog) Spans() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.spans)
}

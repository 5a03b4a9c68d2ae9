package archive_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/xmpp"
)

var (
	room = xmpp.MustParseJID("coven@muc.a.test")
	t0   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

// openStore opens a fresh embedded store, closed when the test ends.
func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// message i of the room, with an id of the shared clock at t0.
func message(ids *archive.IDClock, i int) archive.Message {
	id, at := ids.Next(t0)
	return archive.Message{Room: room, ID: id, Time: at, Stanza: fmt.Appendf(nil, "<message><body>%d</body></message>", i)}
}

// stored is how many messages of the room the archive holds.
func stored(a archive.Archive) (int, error) {
	p, err := a.Query(context.Background(), archive.Query{Room: room, Max: 1})
	return p.Count, err
}

// run starts w and returns the function that stops it and waits for Run
// to return.
func run(w *archive.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { cancel(); <-done }
}

// wait receives n values from c, failing the test if they do not come.
func wait[T any](t *testing.T, c <-chan T, n int) []T {
	t.Helper()
	out := make([]T, 0, n)
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for len(out) < n {
		select {
		case v := <-c:
			out = append(out, v)
		case <-deadline.C:
			t.Fatalf("%d of %d awaited values arrived", len(out), n)
		}
	}
	return out
}

// TestWriterCommitsBeforeDone checks the writer's promise: when a job's
// Done runs without error, its message is in the archive; this holds for
// jobs queued before Run starts and for jobs queued while it runs.
func TestWriterCommitsBeforeDone(t *testing.T) {
	defer goleak.VerifyNone(t)
	a := openStore(t).Archive()
	w := archive.NewWriter(a, 100, slog.Default())
	ids := archive.NewIDClock()
	const n = 50
	errs := make(chan error, 2*n)
	job := func(i int) archive.Job {
		m := message(ids, i)
		return archive.Job{Msg: m, Done: func(err error) {
			if err == nil {
				p, qerr := a.Query(context.Background(), archive.Query{Room: room, IDs: []string{m.ID}, Max: 1})
				if qerr != nil || len(p.Messages) != 1 {
					err = fmt.Errorf("message %s done but not stored: %v %+v", m.ID, qerr, p)
				}
			}
			errs <- err
		}}
	}
	for i := range n {
		w.Queue() <- job(i)
	}
	if w.Len() != n {
		t.Fatalf("queue holds %d, want %d", w.Len(), n)
	}
	stop := run(w)
	defer stop()
	for i := range n {
		w.Queue() <- job(n + i)
	}
	for _, err := range wait(t, errs, 2*n) {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestWriterBatches checks that queued messages share one write, and that
// one write holds at most MaxBatch of them: every job of a batch sees the
// whole batch stored when its Done runs, and nothing of the next batch.
func TestWriterBatches(t *testing.T) {
	defer goleak.VerifyNone(t)
	a := openStore(t).Archive()
	const n = archive.MaxBatch + 10
	w := archive.NewWriter(a, n, slog.Default())
	ids := archive.NewIDClock()
	type seen struct {
		i, count int
		err      error
	}
	c := make(chan seen, n)
	for i := range n {
		w.Queue() <- archive.Job{Msg: message(ids, i), Done: func(err error) {
			count, qerr := stored(a)
			c <- seen{i, count, errors.Join(err, qerr)}
		}}
	}
	stop := run(w)
	defer stop()
	for _, s := range wait(t, c, n) {
		want := archive.MaxBatch
		if s.i >= archive.MaxBatch {
			want = n
		}
		if s.err != nil || s.count != want {
			t.Fatalf("job %d done with %d stored (%v), want %d", s.i, s.count, s.err, want)
		}
	}
}

// TestWriterDrainsOnStop checks that what was accepted before the
// writer's context ended is still written, since nothing of it has been
// delivered yet, and that Run then returns. Run chooses at random between
// a queued job and the ended context, so the test repeats to take both
// paths.
func TestWriterDrainsOnStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	a := openStore(t).Archive()
	ids := archive.NewIDClock()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	const rounds, n = 32, 10
	for r := range rounds {
		w := archive.NewWriter(a, n, slog.Default())
		var results []error // Done runs on Run's goroutine, this one
		for i := range n {
			w.Queue() <- archive.Job{Msg: message(ids, r*n+i), Done: func(err error) { results = append(results, err) }}
		}
		w.Run(ended)
		if len(results) != n || w.Len() != 0 {
			t.Fatalf("round %d: %d of %d jobs done, %d left queued", r, len(results), n, w.Len())
		}
		for _, err := range results {
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		if count, err := stored(a); err != nil || count != (r+1)*n {
			t.Fatalf("round %d: archive holds %d messages (%v), want %d", r, count, err, (r+1)*n)
		}
	}
}

// TestWriterReportsFailureToEveryJob checks that when the archive cannot
// write, every job of the batch hears the error (so no sender is told its
// message is stored) and the failure is logged.
func TestWriterReportsFailureToEveryJob(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := openStore(t)
	a := s.Archive()
	if err := s.Close(); err != nil { // every write now fails
		t.Fatal(err)
	}
	log := errorLog(make(chan string, 10))
	const n = 20
	w := archive.NewWriter(a, n, log)
	ids := archive.NewIDClock()
	errs := make(chan error, n)
	for i := range n {
		w.Queue() <- archive.Job{Msg: message(ids, i), Done: func(err error) { errs <- err }}
	}
	stop := run(w)
	defer stop()
	for i, err := range wait(t, errs, n) {
		if err == nil {
			t.Errorf("job %d of a failed write reported success", i)
		}
	}
	select { // logged before the jobs heard of it
	case msg := <-log:
		if msg != "archive write failed" {
			t.Fatalf("logged %q", msg)
		}
	default:
		t.Fatal("the failed write was not logged")
	}
}

// TestWriterTryEnqueueRefusesWhenFull checks the bound of the queue: a
// sender that must not wait is refused, not queued past it.
func TestWriterTryEnqueueRefusesWhenFull(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := archive.NewWriter(openStore(t).Archive(), 2, slog.Default())
	ids := archive.NewIDClock()
	done := make(chan error, 3)
	for i := range 3 {
		ok := w.TryEnqueue(archive.Job{Msg: message(ids, i), Done: func(err error) { done <- err }})
		if ok != (i < 2) {
			t.Fatalf("job %d: queued %v with %d waiting of 2", i, ok, w.Len())
		}
	}
	if w.Len() != 2 {
		t.Fatalf("queue holds %d, want 2", w.Len())
	}
	stop := run(w)
	defer stop()
	for _, err := range wait(t, done, 2) {
		if err != nil {
			t.Error(err)
		}
	}
}

// errorLog hands each logged error's message to the test (without waiting).
type errorLog chan string

func (l errorLog) Error(msg string, _ ...any) {
	select {
	case l <- msg:
	default:
	}
}

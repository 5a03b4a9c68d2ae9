package archive

import (
	"context"
	"time"
)

// Job is one message on its way into the archive; Done runs after the
// batch holding it is durable (or failed).
type Job struct {
	Msg  Message
	Done func(error)
}

// maxBatch bounds one archive write.
const maxBatch = 512

// WriteTimeout bounds one batch write of the Writer.
const WriteTimeout = 30 * time.Second

// Writer writes queued messages in batches, one durable write per batch,
// so fan-out waits for a shared disk sync, never one of its own.
type Writer struct {
	a     Archive
	queue chan Job
	log   interface{ Error(string, ...any) }
}

// NewWriter makes a writer for a with a queue of queueLen messages.
func NewWriter(a Archive, queueLen int, log interface{ Error(string, ...any) }) *Writer {
	return &Writer{a: a, queue: make(chan Job, queueLen), log: log}
}

// TryEnqueue queues a job unless the queue is full.
func (w *Writer) TryEnqueue(j Job) bool {
	select {
	case w.queue <- j:
		return true
	default:
		return false
	}
}

// Queue is the queue itself, for a caller that waits for room in it.
func (w *Writer) Queue() chan<- Job { return w.queue }

// Len is the number of queued messages.
func (w *Writer) Len() int { return len(w.queue) }

// Run writes until ctx ends, then commits what was queued.
func (w *Writer) Run(ctx context.Context) {
	batch := make([]Job, 0, maxBatch)
	msgs := make([]Message, 0, maxBatch)
	for {
		select {
		case j := <-w.queue:
			batch = append(batch[:0], j)
		case <-ctx.Done():
			// Commit what was accepted; nothing was delivered yet.
			for {
				select {
				case j := <-w.queue:
					w.write(context.Background(), append(batch[:0], j), msgs)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-w.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		w.write(ctx, batch, msgs)
		clear(batch)
	}
}

func (w *Writer) write(ctx context.Context, batch []Job, msgs []Message) {
	msgs = msgs[:0]
	for _, j := range batch {
		msgs = append(msgs, j.Msg)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WriteTimeout)
	err := w.a.Append(wctx, msgs)
	cancel()
	if err != nil {
		w.log.Error("archive write failed", "messages", len(msgs), "err", err)
	}
	for _, j := range batch {
		j.Done(err)
	}
}

package ws

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// corkConn sits between the WebSocket library and the TCP connection so
// that the session writer can send a batch of queued stanzas with one
// write system call: while corked, the library's per-message flushes land
// in a buffer, and Uncork writes the buffer at once. The library flushes
// every message and offers no batching of its own; writing one system
// call per delivery was half the server's CPU under fan-out load.
//
// It also puts a deadline on every write to the raw connection, which the
// library cannot do for the bytes that the cork holds back.
type corkConn struct {
	net.Conn
	timeout time.Duration // WriteTimeout; 0: no deadline

	mu       sync.Mutex
	corked   bool
	buf      *[]byte
	broken   error       // a write failed part-way: the byte stream is unusable
	timedOut atomic.Bool // that failure was the deadline: the peer stopped reading
}

// writeChunk is the most bytes one raw write is given a fresh deadline for.
// Plain TCP resumes after partial progress anyway; TLS cannot resume a write
// that timed out, so there it is the granularity of "no progress".
const writeChunk = 64 << 10

var corkBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Write buffers while corked and writes through otherwise. Frames written
// by other goroutines (pongs, close) keep their place in the byte stream.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	if err := c.writeAll(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeAll writes p under the deadline policy: each chunk gets WriteTimeout
// from now, and a chunk the kernel accepted part of before the deadline is
// progress, so the rest gets a new deadline. Only a whole WriteTimeout in
// which no byte moved fails the write, which marks the connection broken
// (a frame may be half-sent). Called with c.mu held.
func (c *corkConn) writeAll(p []byte) error {
	if c.broken != nil {
		return c.broken
	}
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		if c.timeout > 0 {
			c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		w, err := c.Conn.Write(p[:n])
		p = p[w:]
		if err == nil {
			continue
		}
		timeout := errors.Is(err, os.ErrDeadlineExceeded)
		if timeout && w > 0 {
			continue // slow, not stopped: the reader is merely behind
		}
		if timeout {
			c.timedOut.Store(true)
		}
		c.broken = err
		return err
	}
	return nil
}

// TimedOut reports whether a write failed because the peer accepted nothing
// for WriteTimeout, as opposed to the connection breaking.
func (c *corkConn) TimedOut() bool { return c.timedOut.Load() }

// Cork starts buffering.
func (c *corkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	if c.buf == nil {
		c.buf = corkBufPool.Get().(*[]byte)
	}
	c.mu.Unlock()
}

// Uncork writes what was buffered in one call and stops buffering; the
// buffer goes back to the pool so an idle session holds none.
func (c *corkConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	var err error
	if len(*b) > 0 {
		err = c.writeAll(*b)
	}
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		corkBufPool.Put(b)
	}
	return err
}

// corkingWriter hands the WebSocket library a corkConn when it hijacks the
// HTTP connection.
type corkingWriter struct {
	http.ResponseWriter
	timeout time.Duration // the corkConn's write deadline
	conn    *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Send what net/http still buffers (the 101 response) before the
	// writer is replaced by one that goes through the cork.
	if w.timeout > 0 {
		conn.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn, timeout: w.timeout}
	// The session writer corks around every batch, so the library's write
	// buffer only has to hold control frames and headers: keep it small,
	// it lives as long as the session.
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 512)), nil
}

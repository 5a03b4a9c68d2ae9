package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkConn sits between the WebSocket library and the TCP connection so
// that the session writer can send a batch of queued stanzas with one
// write system call: while corked, the library's per-message flushes land
// in a buffer, and Uncork writes the buffer at once. The library flushes
// every message and offers no batching of its own; writing one system
// call per delivery was half the server's CPU under fan-out load.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

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
	return c.Conn.Write(p)
}

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
		_, err = c.Conn.Write(*b)
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
	conn *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Send what net/http still buffers (the 101 response) before the
	// writer is replaced by one that goes through the cork.
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn}
	// The session writer corks around every batch, so the library's write
	// buffer only has to hold control frames and headers: keep it small,
	// it lives as long as the session.
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 512)), nil
}

// Package client is a small XMPP-over-WebSocket (RFC 7395) client for the
// protocol tests, the end-to-end tests and the load tool of this module. It
// speaks just enough of the protocol to drive the server (stream open, SASL
// SCRAM and PLAIN, resource binding, iq round trips) and leaves everything
// else to the caller as raw elements, so a test can send exactly the bytes it
// means to, including wrong ones.
//
// It is not a general-purpose XMPP library: it keeps every received element
// until the caller takes it, trusts the server it talks to, and gives raw
// access to the WebSocket so tests can misbehave. The server must never
// import it; it lives under e2e/ so that the dependency only points inwards.
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/beevik/etree"
	"github.com/coder/websocket"

	"github.com/wschat/xmppws/xmpp"
)

// Subprotocol is the WebSocket subprotocol of RFC 7395 that Dial offers and
// requires the server to select.
const Subprotocol = "xmpp"

// DefaultReadLimit is the largest message Dial accepts when DialOptions does
// not say otherwise: well above any stanza limit the server enforces, so a
// test sees the server's own refusal rather than the client's.
const DefaultReadLimit = 1 << 20

// DialOptions tunes the WebSocket handshake, for tests that check how the
// server treats unusual clients. The zero value (or nil) is a well-behaved
// client.
type DialOptions struct {
	// Subprotocols replaces the offered list ["xmpp"] when non-nil (an empty,
	// non-nil slice offers none). Dial still fails unless the server selects
	// "xmpp".
	Subprotocols []string
	// HTTPHeader is added to the handshake request (Origin, cookies, ...).
	HTTPHeader http.Header
	// ReadLimit is the largest message accepted from the server, in bytes;
	// 0 means DefaultReadLimit.
	ReadLimit int64
	// HTTPClient makes the handshake instead of http.DefaultClient, for
	// tests that shape the socket (a small receive buffer brings a slow
	// reader's backlog back to the server at once).
	HTTPClient *http.Client
}

// ErrSubprotocol is wrapped by Dial's error when the handshake succeeded but
// the server did not select the "xmpp" subprotocol, which RFC 7395 requires.
var ErrSubprotocol = errors.New("client: server did not select the xmpp subprotocol")

// DialError is returned by Dial so a test can tell an HTTP refusal of the
// handshake (StatusCode 4xx) from a network failure (StatusCode 0) or a
// subprotocol mismatch (StatusCode 101, Err wrapping ErrSubprotocol).
type DialError struct {
	StatusCode int
	Err        error
}

// Error describes the failed dial for test failure messages.
func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("client: dial (HTTP %d): %v", e.StatusCode, e.Err)
	}
	return "client: dial: " + e.Err.Error()
}

// Unwrap gives errors.Is and errors.As access to the cause.
func (e *DialError) Unwrap() error { return e.Err }

// frame is one received WebSocket message: a parsed element or the reason it
// could not be parsed. Frames are queued by pointer so Expect can find the one
// it matched again after running the caller's match function unlocked.
type frame struct {
	el  *etree.Element
	err error
}

// Client is one XMPP-over-WebSocket connection. A single reader goroutine owns
// reading (so a caller's deadline never tears down the WebSocket) and queues
// everything it receives; Next and Expect take elements from that queue.
// Methods may be called from several goroutines.
type Client struct {
	conn *websocket.Conn

	done      chan struct{} // closed when the reader goroutine has exited
	closing   chan struct{} // closed by Close/CloseNow to release a stopped reader
	closeOnce sync.Once
	stopped   atomic.Bool

	idPrefix string
	idSeq    atomic.Uint64

	mu        sync.Mutex
	queue     []*frame
	changed   chan struct{} // closed and replaced whenever queue or ended changes
	ended     bool
	readErr   error        // the reader's final error, once ended
	streamErr *StreamError // first <stream:error/> received, if any
	// closedNormally is set by Close once the close handshake ended with 1000.
	closedNormally bool
	jid            xmpp.JID
	streamID       string
	raw            atomic.Pointer[func([]byte) bool] // SetRawHandler
}

// Dial opens a WebSocket to url offering the "xmpp" subprotocol (or
// opts.Subprotocols) and starts the reader goroutine. It fails, with a
// *DialError, if the handshake fails or the server selects anything but
// "xmpp"; it sends nothing at the XMPP level (see Open and Login).
func Dial(ctx context.Context, url string, opts *DialOptions) (*Client, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	protos := opts.Subprotocols
	if protos == nil {
		protos = []string{Subprotocol}
	}
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: protos,
		HTTPHeader:   opts.HTTPHeader,
		HTTPClient:   opts.HTTPClient,
	})
	if err != nil {
		de := &DialError{Err: err}
		if resp != nil {
			de.StatusCode = resp.StatusCode
		}
		return nil, de
	}
	if got := conn.Subprotocol(); got != Subprotocol {
		conn.CloseNow()
		return nil, &DialError{StatusCode: http.StatusSwitchingProtocols, Err: fmt.Errorf("%w (selected %q)", ErrSubprotocol, got)}
	}
	limit := opts.ReadLimit
	if limit == 0 {
		limit = DefaultReadLimit
	}
	conn.SetReadLimit(limit)

	var p [4]byte
	rand.Read(p[:])
	c := &Client{
		conn:     conn,
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
		idPrefix: hex.EncodeToString(p[:]) + "-",
		changed:  make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// read is the reader goroutine: it owns every call to Conn.Read, queues what
// arrives without ever blocking on the consumer, and records why the stream
// ended.
func (c *Client) read() {
	defer close(c.done)
	for {
		if c.stopped.Load() {
			<-c.closing
			c.end(net.ErrClosed)
			return
		}
		typ, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.end(err)
			// Release the socket if the peer just vanished; a no-op when the
			// close handshake already closed it.
			c.conn.CloseNow()
			return
		}
		if h := c.raw.Load(); h != nil && typ == websocket.MessageText && (*h)(b) {
			continue // consumed unparsed by the raw handler
		}
		f := &frame{}
		if typ != websocket.MessageText {
			f.err = &ParseError{Raw: b, Binary: true, Err: errors.New("binary message")}
		} else if f.el, err = xmpp.ParseElement(b); err != nil {
			f.el, f.err = nil, &ParseError{Raw: b, Err: err}
		}
		c.mu.Lock()
		if se := StreamErrorOf(f.el); se != nil && c.streamErr == nil {
			c.streamErr = se
		}
		c.queue = append(c.queue, f)
		c.notifyLocked()
		c.mu.Unlock()
	}
}

func (c *Client) end(err error) {
	c.mu.Lock()
	c.ended = true
	c.readErr = err
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// endErrLocked is what Next and Expect return once the stream is over: it
// wraps io.EOF and, if the server sent one, the *StreamError that ended it.
func (c *Client) endErrLocked() error {
	status := websocket.CloseStatus(c.readErr)
	if c.streamErr != nil {
		return fmt.Errorf("client: stream ended (close status %d) after %w: %w", status, c.streamErr, io.EOF)
	}
	return fmt.Errorf("client: stream ended (close status %d): %w", status, io.EOF)
}

// Send writes el as one WebSocket text message. It may be called
// concurrently. As with coder/websocket, a ctx that expires during the write
// closes the connection, since a half-written frame cannot be recovered.
func (c *Client) Send(ctx context.Context, el *etree.Element) error {
	return c.write(ctx, websocket.MessageText, xmpp.Marshal(el))
}

// SendRaw writes data verbatim as one text message, for tests that send what
// the element API cannot build: malformed XML, several elements in a frame.
func (c *Client) SendRaw(ctx context.Context, data string) error {
	return c.write(ctx, websocket.MessageText, []byte(data))
}

// SendBinary writes a binary message, which RFC 7395 forbids, so tests can
// check that the server refuses it.
func (c *Client) SendBinary(ctx context.Context, data []byte) error {
	return c.write(ctx, websocket.MessageBinary, data)
}

func (c *Client) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	if err := c.conn.Write(ctx, typ, b); err != nil {
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// Next returns the next received element in order. A frame that could not be
// parsed is returned as a *ParseError in its place. An element already queued
// is returned even if ctx is done; otherwise a done ctx returns ctx.Err()
// and leaves the connection usable. Once the stream has ended and the queue
// is drained, Next returns an error wrapping io.EOF (see CloseStatus).
func (c *Client) Next(ctx context.Context) (*etree.Element, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			f := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return f.el, f.err
		}
		if c.ended {
			err := c.endErrLocked()
			c.mu.Unlock()
			return nil, err
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Expect returns the first received element, queued or still to come, for
// which match is true, and removes only that one: elements that do not match
// (and unparseable frames) stay queued in order for later Next and Expect
// calls, so a test can wait for a reply while unrelated traffic arrives. It
// ends like Next: ctx.Err(), or an error wrapping io.EOF when the stream
// ended without a match.
func (c *Client) Expect(ctx context.Context, match func(*etree.Element) bool) (*etree.Element, error) {
	for {
		c.mu.Lock()
		snapshot := slices.Clone(c.queue)
		ended := c.ended
		changed := c.changed
		c.mu.Unlock()

		// match is the caller's code: run it unlocked so it may use c.
		for _, f := range snapshot {
			if f.el == nil || !match(f.el) {
				continue
			}
			c.mu.Lock()
			i := slices.Index(c.queue, f)
			if i >= 0 {
				c.queue = slices.Delete(c.queue, i, i+1)
			}
			c.mu.Unlock()
			if i >= 0 {
				return f.el, nil
			}
			// Another consumer took it meanwhile; keep looking.
		}
		if ended {
			c.mu.Lock()
			err := c.endErrLocked()
			c.mu.Unlock()
			return nil, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the stream the RFC 7395 way: it sends <close/>, waits for the
// server's <close/> (other elements received meanwhile stay queued), closes
// the WebSocket with status 1000 and waits for the reader goroutine to exit.
// If sending or waiting fails, or ctx ends first, it falls back to CloseNow;
// the WebSocket close handshake itself is bounded by coder/websocket's own
// timeouts (5 s each way), not by ctx. After StopReading the server's
// <close/> cannot arrive, so use CloseNow instead.
func (c *Client) Close(ctx context.Context) error {
	if err := c.Send(ctx, xmpp.Elem("close", xmpp.NSFraming)); err != nil {
		c.CloseNow()
		return fmt.Errorf("client: close: %w", err)
	}
	if _, err := c.Expect(ctx, isClose); err != nil {
		c.CloseNow()
		return fmt.Errorf("client: close: waiting for the server's <close/>: %w", err)
	}
	c.release()
	err := c.conn.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.done:
	case <-ctx.Done():
		c.conn.CloseNow()
		<-c.done
		return fmt.Errorf("client: close: %w", ctx.Err())
	}
	if errors.Is(err, net.ErrClosed) && c.CloseStatus() == websocket.StatusNormalClosure {
		err = nil // the server's close frame crossed ours: a normal end
	}
	if err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	c.mu.Lock()
	c.closedNormally = true
	c.mu.Unlock()
	return nil
}

// CloseNow drops the connection without any closing handshake (what a
// crashed client does) and returns once the reader goroutine has exited.
func (c *Client) CloseNow() error {
	c.release()
	err := c.conn.CloseNow()
	<-c.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("client: close now: %w", err)
	}
	return nil
}

func (c *Client) release() {
	c.closeOnce.Do(func() { close(c.closing) })
}

// StopReading makes the reader goroutine stop calling Read after the message
// it may be reading now, so the server's writes back up into the TCP buffers:
// the way to test slow-consumer handling. It cannot be undone; CloseNow ends
// the connection afterwards.
func (c *Client) StopReading() {
	c.stopped.Store(true)
}

// CloseStatus is the WebSocket close status the peer ended the connection
// with, so tests can check the server closes with 1000 (or a protocol error).
// It is -1 while the connection is open, or if it ended without a close frame
// from the peer.
func (c *Client) CloseStatus() websocket.StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		return -1
	}
	s := websocket.CloseStatus(c.readErr)
	if s == -1 && c.closedNormally {
		// Conn.Close read the server's close frame itself (it succeeds only
		// if the server answered 1000), so the reader saw none.
		return websocket.StatusNormalClosure
	}
	return s
}

// Done is closed when the reader goroutine has exited, which happens when the
// server ends the connection or after Close/CloseNow; tests wait on it.
func (c *Client) Done() <-chan struct{} {
	return c.done
}

// JID is the full JID the server bound (see Bind); zero before binding.
func (c *Client) JID() xmpp.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jid
}

// StreamID is the id of the server's latest <open/>, which tests compare
// across stream restarts.
func (c *Client) StreamID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streamID
}

// Conn gives raw access to the WebSocket for tests that must misbehave. Do
// not Read from it: the reader goroutine owns reading.
func (c *Client) Conn() *websocket.Conn {
	return c.conn
}

// nextID returns an id unique within this client and unlikely to collide
// with another client's, so replies can be matched even when ids are echoed
// across sessions.
func (c *Client) nextID() string {
	return c.idPrefix + strconv.FormatUint(c.idSeq.Add(1), 10)
}

func isClose(e *etree.Element) bool { return xmpp.Is(e, "close", xmpp.NSFraming) }

// SetRawHandler installs f to see every text frame before it is parsed; a
// frame for which f returns true is consumed and never queued. It exists
// for the load tool, which recognises its own messages in the raw bytes and
// would otherwise spend most of its CPU building trees for them. f runs on
// the reader goroutine and must not block; nil removes it.
func (c *Client) SetRawHandler(f func([]byte) bool) {
	if f == nil {
		c.raw.Store(nil)
		return
	}
	c.raw.Store(&f)
}

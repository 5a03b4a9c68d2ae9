package client

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/coder/websocket"
	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// fakeServer is just enough of an RFC 7395 server to exercise the client: one
// account (alice@localhost / pw), PLAIN and SCRAM-SHA-256, bind, ping, and an
// echo of every <message/>. A few message bodies trigger misbehaviour:
// "kick" ends the stream with a stream error, "garbage" sends a malformed
// frame.
type fakeServer struct {
	t            *testing.T
	url          string
	scram        *scram.Server
	rec          account.Record
	badServerSig bool // corrupt the SCRAM server signature
	wg           sync.WaitGroup
}

func newFakeServer(t *testing.T, configure func(*fakeServer)) *fakeServer {
	t.Helper()
	rec, err := account.New(xmpp.MustParseJID("alice@localhost"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, rec: rec}
	f.scram, err = scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		if user != "alice" {
			return scram.StoredCredentials{}, errors.New("no such user")
		}
		sc, _ := rec.Stored(account.SCRAMSHA256)
		return sc, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(f)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.wg.Add(1)
		defer f.wg.Done()
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"xmpp"}})
		if err != nil {
			return
		}
		defer conn.CloseNow()
		f.serve(r.Context(), conn)
	}))
	f.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	t.Cleanup(func() {
		srv.Close()
		f.wg.Wait() // no handler goroutine outlives the test
	})
	return f
}

// serve runs one connection until the client goes away.
func (f *fakeServer) serve(ctx context.Context, conn *websocket.Conn) {
	var (
		authed bool
		conv   *scram.ServerConversation
	)
	send := func(s string) {
		if err := conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
			f.t.Logf("fake server: write: %v", err)
		}
	}
	sendEl := func(e *etree.Element) { send(string(xmpp.Marshal(e))) }
	fail := func() { send(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`) }
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			conn.Close(websocket.StatusUnsupportedData, "binary frames are not XMPP")
			return
		}
		el, err := xmpp.ParseElement(b)
		if err != nil {
			conn.Close(websocket.StatusProtocolError, "bad XML")
			return
		}
		switch {
		case xmpp.Is(el, "open", xmpp.NSFraming):
			send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='stream-1' version='1.0' xml:lang='en'/>`)
			if !authed {
				send(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'>` +
					`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>` +
					`<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>`)
			} else {
				send(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'>` +
					`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`)
			}
		case xmpp.Is(el, "auth", xmpp.NSSASL):
			data, _ := base64.StdEncoding.DecodeString(el.Text())
			switch el.SelectAttrValue("mechanism", "") {
			case "PLAIN":
				parts := strings.Split(string(data), "\x00")
				if len(parts) == 3 && parts[1] == "alice" && f.rec.Verify(parts[1], parts[2]) {
					authed = true
					send(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
				} else {
					fail()
				}
			case "SCRAM-SHA-256":
				conv = f.scram.NewConversation()
				challenge, err := conv.Step(string(data))
				if err != nil {
					fail()
					continue
				}
				c := xmpp.Elem("challenge", xmpp.NSSASL)
				c.SetText(base64.StdEncoding.EncodeToString([]byte(challenge)))
				sendEl(c)
			default:
				send(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>`)
			}
		case xmpp.Is(el, "response", xmpp.NSSASL):
			data, _ := base64.StdEncoding.DecodeString(el.Text())
			if conv == nil {
				fail()
				continue
			}
			final, err := conv.Step(string(data))
			if err != nil || !conv.Valid() {
				fail()
				continue
			}
			if f.badServerSig {
				final = "v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
			}
			authed = true
			s := xmpp.Elem("success", xmpp.NSSASL)
			s.SetText(base64.StdEncoding.EncodeToString([]byte(final)))
			sendEl(s)
		case xmpp.Is(el, "iq", xmpp.NSClient):
			id := el.SelectAttrValue("id", "")
			switch {
			case xmpp.Child(el, "bind", xmpp.NSBind) != nil:
				res := "gen"
				if r := xmpp.Child(xmpp.Child(el, "bind", xmpp.NSBind), "resource", xmpp.NSBind); r != nil {
					res = r.Text()
				}
				send(`<iq xmlns='jabber:client' type='result' id='` + id + `'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/` + res + `</jid></bind></iq>`)
			case xmpp.Child(el, "ping", xmpp.NSPing) != nil:
				send(`<iq xmlns='jabber:client' type='result' id='` + id + `' from='localhost'/>`)
			default:
				send(`<iq xmlns='jabber:client' type='error' id='` + id + `'><error type='cancel'>` +
					`<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
			}
		case xmpp.Is(el, "message", xmpp.NSClient):
			switch body(el) {
			case "kick":
				send(`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>go away</text></stream:error>`)
				send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
				conn.Close(websocket.StatusNormalClosure, "")
				return
			case "garbage":
				send(`<a><b></a>`)
			default:
				sendEl(el)
			}
		case xmpp.Is(el, "close", xmpp.NSFraming):
			send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`)
			conn.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// login logs alice in and makes sure the connection is gone after the test.
func login(t *testing.T, f *fakeServer, resource string) *Client {
	t.Helper()
	jid := xmpp.MustParseJID("alice@localhost")
	if resource != "" {
		jid = jid.WithResource(resource)
	}
	c, err := Login(testCtx(t), f.url, jid, "pw")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func waitDone(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("reader goroutine did not exit")
	}
}

func body(e *etree.Element) string {
	if b := xmpp.Child(e, "body", xmpp.NSClient); b != nil {
		return b.Text()
	}
	return ""
}

func TestLogin(t *testing.T) {
	f := newFakeServer(t, nil)
	for _, tc := range []struct{ resource, want string }{
		{"phone", "alice@localhost/phone"},
		{"", "alice@localhost/gen"},
	} {
		c := login(t, f, tc.resource)
		if got := c.JID().String(); got != tc.want {
			t.Errorf("JID = %q, want %q", got, tc.want)
		}
		if got := c.StreamID(); got != "stream-1" {
			t.Errorf("StreamID = %q, want stream-1", got)
		}
		if err := c.Ping(testCtx(t), ""); err != nil {
			t.Errorf("Ping: %v", err)
		}
	}
}

func TestAuthWrongPassword(t *testing.T) {
	f := newFakeServer(t, nil)
	ctx := testCtx(t)
	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c, err := Dial(ctx, f.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if _, err := c.Open(ctx, "localhost"); err != nil {
				t.Fatal(err)
			}
			if mech == "PLAIN" {
				err = c.AuthPlain(ctx, "alice", "wrong")
			} else {
				err = c.AuthSCRAM(ctx, mech, "alice", "wrong")
			}
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Condition != "not-authorized" {
				t.Fatalf("err = %v, want *AuthError not-authorized", err)
			}
		})
	}

	_, err := Login(ctx, f.url, xmpp.MustParseJID("alice@localhost"), "wrong")
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Condition != "not-authorized" {
		t.Fatalf("Login err = %v, want *AuthError not-authorized", err)
	}
}

func TestAuthPlain(t *testing.T) {
	f := newFakeServer(t, nil)
	ctx := testCtx(t)
	c, err := Dial(ctx, f.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	features, err := c.Open(ctx, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if xmpp.Child(features, "mechanisms", xmpp.NSSASL) == nil {
		t.Fatalf("features without mechanisms: %s", xmpp.String(features))
	}
	if err := c.AuthPlain(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bind(ctx, "web"); err != nil {
		t.Fatal(err)
	}
}

func TestSCRAMRejectsForgedServerSignature(t *testing.T) {
	f := newFakeServer(t, func(f *fakeServer) { f.badServerSig = true })
	ctx := testCtx(t)
	c, err := Dial(ctx, f.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, err := c.Open(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	err = c.AuthSCRAM(ctx, "SCRAM-SHA-256", "alice", "pw")
	if err == nil {
		t.Fatal("AuthSCRAM accepted a forged server signature")
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		t.Fatalf("err = %v, want a verification error, not a SASL failure", err)
	}
}

func TestExpectKeepsOthersQueued(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	ctx := testCtx(t)
	for _, b := range []string{"one", "two", "three"} {
		if err := c.Send(ctx, Message("alice@localhost/r", "chat", b)); err != nil {
			t.Fatal(err)
		}
	}
	el, err := c.Expect(ctx, func(e *etree.Element) bool { return body(e) == "three" })
	if err != nil || body(el) != "three" {
		t.Fatalf("Expect = %v, %v; want the message 'three'", el, err)
	}
	for _, want := range []string{"one", "two"} {
		el, err := c.Next(ctx)
		if err != nil || body(el) != want {
			t.Fatalf("Next = %v, %v; want the message %q", el, err, want)
		}
	}
}

func TestNextExpiredContextKeepsConnection(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Next(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next(expired) err = %v, want context.Canceled", err)
	}
	short, cancel2 := context.WithDeadline(t.Context(), time.Now())
	defer cancel2()
	if _, err := c.Expect(short, func(*etree.Element) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Expect(past deadline) err = %v, want context.DeadlineExceeded", err)
	}

	ctx := testCtx(t)
	if err := c.Send(ctx, Message("alice@localhost/r", "chat", "still here")); err != nil {
		t.Fatal(err)
	}
	el, err := c.Next(ctx)
	if err != nil || body(el) != "still here" {
		t.Fatalf("Next = %v, %v; want the echoed message", el, err)
	}
	if err := c.Ping(ctx, ""); err != nil {
		t.Fatalf("Ping after expired Next: %v", err)
	}
}

func TestIQError(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	el, err := c.IQ(testCtx(t), IQ("get", "localhost", xmpp.Elem("query", "urn:example:unknown")))
	var se *StanzaError
	if !errors.As(err, &se) || se.Condition != "service-unavailable" || se.Type != "cancel" {
		t.Fatalf("IQ err = %v, want *StanzaError cancel/service-unavailable", err)
	}
	if el == nil || se.Element != el {
		t.Fatalf("IQ did not return the error stanza with the error")
	}
}

func TestClose(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	ctx := testCtx(t)
	if err := c.Send(ctx, Message("alice@localhost/r", "chat", "before close")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Close returned before the reader goroutine exited")
	}
	if got := c.CloseStatus(); got != websocket.StatusNormalClosure {
		t.Errorf("CloseStatus after Close = %v, want 1000", got)
	}
	// What arrived before the server's <close/> is still there, then EOF.
	if el, err := c.Next(ctx); err != nil || body(el) != "before close" {
		t.Fatalf("Next = %v, %v; want the message sent before closing", el, err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close err = %v, want io.EOF", err)
	}
}

func TestServerEndsStream(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	ctx := testCtx(t)
	if err := c.Send(ctx, Message("", "chat", "kick")); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if got := c.CloseStatus(); got != websocket.StatusNormalClosure {
		t.Errorf("CloseStatus = %v, want 1000", got)
	}
	el, err := c.Next(ctx)
	if se := StreamErrorOf(el); err != nil || se == nil || se.Condition != "policy-violation" || se.Text != "go away" {
		t.Fatalf("Next = %v, %v; want stream error policy-violation", el, err)
	}
	// A waiter that finds nothing learns the stream ended, and why.
	_, err = c.Expect(ctx, func(e *etree.Element) bool { return xmpp.Is(e, "iq", xmpp.NSClient) })
	var se *StreamError
	if !errors.Is(err, io.EOF) || !errors.As(err, &se) || se.Condition != "policy-violation" {
		t.Fatalf("Expect after end err = %v, want io.EOF wrapping the stream error", err)
	}
	if el, err := c.Next(ctx); err != nil || !isClose(el) {
		t.Fatalf("Next = %v, %v; want <close/>", el, err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next err = %v, want io.EOF", err)
	}
}

func TestUnparseableFrame(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	ctx := testCtx(t)
	if err := c.Send(ctx, Message("", "chat", "garbage")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Next(ctx)
	var pe *ParseError
	if !errors.As(err, &pe) || string(pe.Raw) != "<a><b></a>" {
		t.Fatalf("Next err = %v, want *ParseError with the raw frame", err)
	}
	if err := c.Ping(ctx, ""); err != nil {
		t.Fatalf("Ping after a bad frame: %v", err)
	}
}

func TestSendBinary(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	if err := c.SendBinary(testCtx(t), []byte("<message/>")); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if got := c.CloseStatus(); got != websocket.StatusUnsupportedData {
		t.Fatalf("CloseStatus = %v, want %v", got, websocket.StatusUnsupportedData)
	}
}

func TestStopReadingThenCloseNow(t *testing.T) {
	c := login(t, newFakeServer(t, nil), "r")
	c.StopReading()
	if err := c.CloseNow(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if got := c.CloseStatus(); got != -1 {
		t.Errorf("CloseStatus after CloseNow = %v, want -1", got)
	}
}

func TestDialRequiresSubprotocol(t *testing.T) {
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		conn, err := websocket.Accept(w, r, nil) // ignores the offered subprotocol
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.Read(r.Context()) // until the client hangs up
	}))
	defer srv.Close()

	_, err := Dial(testCtx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	var de *DialError
	if !errors.Is(err, ErrSubprotocol) || !errors.As(err, &de) {
		t.Fatalf("Dial err = %v, want a *DialError wrapping ErrSubprotocol", err)
	}
	select {
	case <-handlerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not drop the connection")
	}
}

func TestDialHTTPRefusal(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Dial(testCtx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	var de *DialError
	if !errors.As(err, &de) || de.StatusCode != http.StatusNotFound {
		t.Fatalf("Dial err = %v, want *DialError with HTTP 404", err)
	}
}

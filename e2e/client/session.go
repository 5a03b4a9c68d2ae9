package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/xmpp"
)

// Login is the usual way a test gets a ready session: Dial, Open, SCRAM-SHA-256
// as jid's localpart, the stream restart RFC 7395 requires after SASL, and
// Bind with jid's resource (server-generated when empty). The connection is
// closed on any failure.
func Login(ctx context.Context, url string, jid xmpp.JID, password string) (*Client, error) {
	c, err := Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if err := c.login(ctx, jid, password); err != nil {
		c.CloseNow()
		return nil, fmt.Errorf("client: login as %s: %w", jid, err)
	}
	return c, nil
}

func (c *Client) login(ctx context.Context, jid xmpp.JID, password string) error {
	if _, err := c.Open(ctx, jid.Domain); err != nil {
		return err
	}
	if err := c.AuthSCRAM(ctx, "SCRAM-SHA-256", jid.Local, password); err != nil {
		return err
	}
	if _, err := c.Open(ctx, jid.Domain); err != nil {
		return err
	}
	_, err := c.Bind(ctx, jid.Resource)
	return err
}

// Open starts (or, after SASL, restarts) the stream: it sends the RFC 7395
// <open/>, waits for the server's <open/> (whose id StreamID then reports)
// and returns the <stream:features/> that follows. A stream error from the
// server is returned as *StreamError.
func (c *Client) Open(ctx context.Context, domain string) (features *etree.Element, err error) {
	open := xmpp.Elem("open", xmpp.NSFraming)
	open.CreateAttr("to", domain)
	open.CreateAttr("version", "1.0")
	if err := c.Send(ctx, open); err != nil {
		return nil, fmt.Errorf("client: open: %w", err)
	}
	el, err := c.Expect(ctx, func(e *etree.Element) bool {
		return xmpp.Is(e, "open", xmpp.NSFraming) || isStreamEnd(e)
	})
	if err != nil {
		return nil, fmt.Errorf("client: open: waiting for the server's <open/>: %w", err)
	}
	if err := streamEndError(el); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.streamID = el.SelectAttrValue("id", "")
	c.mu.Unlock()

	el, err = c.Expect(ctx, func(e *etree.Element) bool {
		return xmpp.Is(e, "features", xmpp.NSStream) || isStreamEnd(e)
	})
	if err != nil {
		return nil, fmt.Errorf("client: open: waiting for stream features: %w", err)
	}
	if err := streamEndError(el); err != nil {
		return nil, err
	}
	return el, nil
}

// isStreamEnd reports whether e ends the stream: a stream error or <close/>.
func isStreamEnd(e *etree.Element) bool {
	return xmpp.Is(e, "error", xmpp.NSStream) || isClose(e)
}

// streamEndError turns a stream-ending element into the error to return, and
// anything else into nil.
func streamEndError(e *etree.Element) error {
	if se := StreamErrorOf(e); se != nil {
		return se
	}
	if isClose(e) {
		if uri := e.SelectAttrValue("see-other-uri", ""); uri != "" {
			return fmt.Errorf("client: server closed the stream, see-other-uri %q", uri)
		}
		return errors.New("client: server closed the stream")
	}
	return nil
}

// AuthSCRAM authenticates with SCRAM-SHA-256 or SCRAM-SHA-1 (without channel
// binding) and checks the server's signature, so a test passes only against
// a server that really holds the user's keys. A SASL <failure/> is returned
// as *AuthError. The caller restarts the stream afterwards (Open).
func (c *Client) AuthSCRAM(ctx context.Context, mech, username, password string) error {
	var hash scram.HashGeneratorFcn
	switch mech {
	case "SCRAM-SHA-256":
		hash = scram.SHA256
	case "SCRAM-SHA-1":
		hash = scram.SHA1
	default:
		return fmt.Errorf("client: unsupported SASL mechanism %q", mech)
	}
	sc, err := hash.NewClient(username, password, "")
	if err != nil {
		return fmt.Errorf("client: %s: %w", mech, err)
	}
	return c.AuthSCRAMWith(ctx, mech, sc)
}

// AuthSCRAMWith is AuthSCRAM with a SCRAM client the caller keeps, which
// caches the salted password between logins as real clients do.
func (c *Client) AuthSCRAMWith(ctx context.Context, mech string, sc *scram.Client) error {
	conv := sc.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		return fmt.Errorf("client: %s: %w", mech, err)
	}
	if err := c.Send(ctx, saslAuth(mech, first)); err != nil {
		return fmt.Errorf("client: %s: %w", mech, err)
	}
	for {
		el, data, err := c.saslNext(ctx)
		if err != nil {
			return fmt.Errorf("client: %s: %w", mech, err)
		}
		switch el.Tag {
		case "challenge":
			resp, err := conv.Step(data)
			if err != nil {
				return fmt.Errorf("client: %s: server challenge: %w", mech, err)
			}
			r := xmpp.Elem("response", xmpp.NSSASL)
			if resp != "" {
				r.SetText(base64.StdEncoding.EncodeToString([]byte(resp)))
			}
			if err := c.Send(ctx, r); err != nil {
				return fmt.Errorf("client: %s: %w", mech, err)
			}
		case "success":
			if !conv.Done() {
				if data == "" {
					return fmt.Errorf("client: %s: success without the server's final message, cannot verify the server", mech)
				}
				if _, err := conv.Step(data); err != nil {
					return fmt.Errorf("client: %s: verifying the server: %w", mech, err)
				}
			}
			if !conv.Valid() {
				return fmt.Errorf("client: %s: server signature not valid", mech)
			}
			return nil
		}
	}
}

// AuthPlain authenticates with SASL PLAIN, for tests of the PLAIN policy
// (allowed on loopback, refused elsewhere). A <failure/> is returned as
// *AuthError.
func (c *Client) AuthPlain(ctx context.Context, username, password string) error {
	if err := c.Send(ctx, saslAuth("PLAIN", "\x00"+username+"\x00"+password)); err != nil {
		return fmt.Errorf("client: PLAIN: %w", err)
	}
	el, _, err := c.saslNext(ctx)
	if err != nil {
		return fmt.Errorf("client: PLAIN: %w", err)
	}
	if el.Tag != "success" {
		return fmt.Errorf("client: PLAIN: unexpected <%s/> from the server", el.Tag)
	}
	return nil
}

func saslAuth(mech, initial string) *etree.Element {
	a := xmpp.Elem("auth", xmpp.NSSASL)
	a.CreateAttr("mechanism", mech)
	if initial == "" {
		a.SetText("=") // RFC 6120 §6.4.2: an empty initial response
	} else {
		a.SetText(base64.StdEncoding.EncodeToString([]byte(initial)))
	}
	return a
}

// saslNext waits for the server's next SASL step (<challenge/> or
// <success/>) and decodes its data; a <failure/> or a stream error is
// returned as the error.
func (c *Client) saslNext(ctx context.Context) (*etree.Element, string, error) {
	el, err := c.Expect(ctx, func(e *etree.Element) bool {
		return xmpp.Is(e, "challenge", xmpp.NSSASL) || xmpp.Is(e, "success", xmpp.NSSASL) ||
			xmpp.Is(e, "failure", xmpp.NSSASL) || isStreamEnd(e)
	})
	if err != nil {
		return nil, "", err
	}
	if err := streamEndError(el); err != nil {
		return nil, "", err
	}
	if el.Tag == "failure" {
		return nil, "", authErrorOf(el)
	}
	text := strings.TrimSpace(el.Text())
	if text == "" || text == "=" {
		return el, "", nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, "", fmt.Errorf("server sent invalid base64 in <%s/>: %w", el.Tag, err)
	}
	return el, string(b), nil
}

// Bind binds a resource (RFC 6120 §7; empty asks the server to generate one)
// and returns the full JID the server assigned, which JID reports from then
// on. An iq error is returned as *StanzaError.
func (c *Client) Bind(ctx context.Context, resource string) (xmpp.JID, error) {
	bind := xmpp.Elem("bind", xmpp.NSBind)
	if resource != "" {
		bind.CreateElement("resource").SetText(resource)
	}
	res, err := c.IQ(ctx, IQ("set", "", bind))
	if err != nil {
		return xmpp.JID{}, fmt.Errorf("client: bind: %w", err)
	}
	j := xmpp.Child(xmpp.Child(res, "bind", xmpp.NSBind), "jid", xmpp.NSBind)
	if j == nil {
		return xmpp.JID{}, errors.New("client: bind: result carries no <jid/>")
	}
	jid, err := xmpp.ParseJID(strings.TrimSpace(j.Text()))
	if err != nil || jid.IsBare() {
		return xmpp.JID{}, fmt.Errorf("client: bind: server returned %q, not a full JID", j.Text())
	}
	c.mu.Lock()
	c.jid = jid
	c.mu.Unlock()
	return jid, nil
}

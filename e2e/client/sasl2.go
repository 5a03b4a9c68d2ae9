package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/xmpp"
)

// SASL2 describes one XEP-0388 login: the mechanism and its credentials,
// the client's user-agent, and what to ask for in the same round trip
// (a Bind2 resource, inline features, a FAST token).
type SASL2 struct {
	// Mechanism is SCRAM-SHA-256 (the default), SCRAM-SHA-1, PLAIN or
	// HT-SHA-256-NONE (a FAST token login with Token).
	Mechanism string
	Username  string
	Password  string
	Token     string
	// UserAgentID, Software and Device make the <user-agent/>; FAST needs
	// the id.
	UserAgentID, Software, Device string
	// Bind asks for a Bind2 resource with BindTag (may be empty); BindInline
	// are features to enable inline, placed inside <bind/>.
	Bind       bool
	BindTag    string
	BindInline []*etree.Element
	// RequestToken asks for a FAST token for that mechanism.
	RequestToken string
	// Invalidate ends the token used for this login (XEP-0484 §3.6).
	Invalidate bool
	// Extra elements go into <authenticate/> as they are.
	Extra []*etree.Element
	// SCRAM, when set, is the SCRAM client to use (it must match
	// Mechanism, Username and Password): it keeps the salted password
	// between logins, as real clients do, so a benchmark measures the
	// server and not the client's key derivation.
	SCRAM *scram.Client
}

// SASL2Result is what a successful SASL2 login returned.
type SASL2Result struct {
	Success *etree.Element
	// AuthzID is <authorization-identifier/>: the full JID when Bind2
	// bound one, the bare JID otherwise.
	AuthzID string
	Bound   *etree.Element // the Bind2 <bound/>, nil without one
	// Token and TokenExpiry are a FAST <token/>, "" without one.
	Token       string
	TokenExpiry time.Time
	// Features are the stream features that follow <success/>.
	Features *etree.Element
	// RoundTrips counts the client's waits for the server, from
	// <authenticate/> to <success/>.
	RoundTrips int
}

// AuthSASL2 runs a SASL2 login on an opened stream (Open's features must
// have offered <authentication/>). It checks the server's final message
// (SCRAM signature, HT responder proof), so it passes only against a
// server that holds the credentials. A <failure/> is returned as
// *AuthError; the stream is not restarted either way.
func (c *Client) AuthSASL2(ctx context.Context, o SASL2) (*SASL2Result, error) {
	if o.Mechanism == "" {
		o.Mechanism = "SCRAM-SHA-256"
	}
	auth := xmpp.Elem("authenticate", xmpp.NSSASL2)
	auth.CreateAttr("mechanism", o.Mechanism)
	var conv *scram.ClientConversation
	var initial string
	switch o.Mechanism {
	case "SCRAM-SHA-256", "SCRAM-SHA-1":
		hash := scram.SHA256
		if o.Mechanism == "SCRAM-SHA-1" {
			hash = scram.SHA1
		}
		sc := o.SCRAM
		if sc == nil {
			var err error
			if sc, err = hash.NewClient(o.Username, o.Password, ""); err != nil {
				return nil, fmt.Errorf("client: SASL2 %s: %w", o.Mechanism, err)
			}
		}
		conv = sc.NewConversation()
		var err error
		if initial, err = conv.Step(""); err != nil {
			return nil, fmt.Errorf("client: SASL2 %s: %w", o.Mechanism, err)
		}
	case "PLAIN":
		initial = "\x00" + o.Username + "\x00" + o.Password
	case "HT-SHA-256-NONE":
		initial = o.Username + "\x00" + string(HTProof(o.Token, "Initiator"))
	default:
		return nil, fmt.Errorf("client: unsupported SASL2 mechanism %q", o.Mechanism)
	}
	auth.CreateElement("initial-response").SetText(base64.StdEncoding.EncodeToString([]byte(initial)))
	if o.UserAgentID != "" || o.Software != "" || o.Device != "" {
		ua := auth.CreateElement("user-agent")
		if o.UserAgentID != "" {
			ua.CreateAttr("id", o.UserAgentID)
		}
		if o.Software != "" {
			ua.CreateElement("software").SetText(o.Software)
		}
		if o.Device != "" {
			ua.CreateElement("device").SetText(o.Device)
		}
	}
	if o.Bind {
		b := xmpp.Elem("bind", xmpp.NSBind2)
		if o.BindTag != "" {
			b.CreateElement("tag").SetText(o.BindTag)
		}
		for _, e := range o.BindInline {
			b.AddChild(e.Copy())
		}
		auth.AddChild(b)
	}
	if o.RequestToken != "" {
		rt := xmpp.Elem("request-token", xmpp.NSFAST)
		rt.CreateAttr("mechanism", o.RequestToken)
		auth.AddChild(rt)
	}
	if o.Mechanism == "HT-SHA-256-NONE" {
		f := xmpp.Elem("fast", xmpp.NSFAST)
		if o.Invalidate {
			f.CreateAttr("invalidate", "true")
		}
		auth.AddChild(f)
	}
	for _, e := range o.Extra {
		auth.AddChild(e.Copy())
	}
	if err := c.Send(ctx, auth); err != nil {
		return nil, fmt.Errorf("client: SASL2: %w", err)
	}
	res := &SASL2Result{}
	for {
		el, err := c.Expect(ctx, func(e *etree.Element) bool {
			return xmpp.Is(e, "challenge", xmpp.NSSASL2) || xmpp.Is(e, "success", xmpp.NSSASL2) ||
				xmpp.Is(e, "failure", xmpp.NSSASL2) || isStreamEnd(e)
		})
		if err != nil {
			return nil, fmt.Errorf("client: SASL2: %w", err)
		}
		res.RoundTrips++
		if err := streamEndError(el); err != nil {
			return nil, err
		}
		switch el.Tag {
		case "failure":
			cond, text := condition(el, xmpp.NSSASL)
			if t := xmpp.Child(el, "text", xmpp.NSSASL2); t != nil {
				text = strings.TrimSpace(t.Text())
			}
			return nil, &AuthError{Condition: cond, Text: text}
		case "challenge":
			if conv == nil {
				return nil, fmt.Errorf("client: SASL2 %s: unexpected challenge", o.Mechanism)
			}
			data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
			if err != nil {
				return nil, fmt.Errorf("client: SASL2: challenge: %w", err)
			}
			resp, err := conv.Step(string(data))
			if err != nil {
				return nil, fmt.Errorf("client: SASL2 %s: server challenge: %w", o.Mechanism, err)
			}
			r := xmpp.Elem("response", xmpp.NSSASL2)
			r.SetText(base64.StdEncoding.EncodeToString([]byte(resp)))
			if err := c.Send(ctx, r); err != nil {
				return nil, fmt.Errorf("client: SASL2: %w", err)
			}
		case "success":
			if err := res.verify(el, o, conv); err != nil {
				return nil, err
			}
			feats, err := c.Expect(ctx, func(e *etree.Element) bool {
				return xmpp.Is(e, "features", xmpp.NSStream) || isStreamEnd(e)
			})
			if err != nil {
				return nil, fmt.Errorf("client: SASL2: waiting for the features after success: %w", err)
			}
			if err := streamEndError(feats); err != nil {
				return nil, err
			}
			res.Features = feats
			if j, err := xmpp.ParseJID(res.AuthzID); err == nil && !j.IsBare() {
				c.mu.Lock()
				c.jid = j
				c.mu.Unlock()
			}
			return res, nil
		}
	}
}

// verify checks the server's final message and reads <success/>.
func (r *SASL2Result) verify(el *etree.Element, o SASL2, conv *scram.ClientConversation) error {
	r.Success = el
	var final []byte
	if ad := xmpp.Child(el, "additional-data", xmpp.NSSASL2); ad != nil {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
		if err != nil {
			return fmt.Errorf("client: SASL2: additional-data: %w", err)
		}
		final = b
	}
	switch {
	case conv != nil:
		if !conv.Done() {
			if _, err := conv.Step(string(final)); err != nil {
				return fmt.Errorf("client: SASL2 %s: verifying the server: %w", o.Mechanism, err)
			}
		}
		if !conv.Valid() {
			return fmt.Errorf("client: SASL2 %s: server signature not valid", o.Mechanism)
		}
	case o.Mechanism == "HT-SHA-256-NONE":
		if !hmac.Equal(final, HTProof(o.Token, "Responder")) {
			return errors.New("client: SASL2 HT: the server's responder message does not match the token")
		}
	}
	if a := xmpp.Child(el, "authorization-identifier", xmpp.NSSASL2); a != nil {
		r.AuthzID = strings.TrimSpace(a.Text())
	}
	r.Bound = xmpp.Child(el, "bound", xmpp.NSBind2)
	if t := xmpp.Child(el, "token", xmpp.NSFAST); t != nil {
		r.Token = t.SelectAttrValue("token", "")
		exp, err := time.Parse(time.RFC3339, t.SelectAttrValue("expiry", ""))
		if err != nil || r.Token == "" {
			return fmt.Errorf("client: SASL2: malformed FAST token %s", xmpp.String(t))
		}
		r.TokenExpiry = exp
	}
	return nil
}

// HTProof is the Hashed Token SASL mechanism's HMAC-SHA-256(token, label),
// label "Initiator" (the client's message) or "Responder" (the server's),
// without channel binding data.
func HTProof(token, label string) []byte {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

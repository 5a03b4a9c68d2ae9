package ws

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// XEP-0388 SASL2 and XEP-0386 Bind2: the same mechanisms and checks as the
// RFC 6120 profile in sasl.go (which this file reuses step for step), in
// another syntax that carries requests beside the authentication: a
// resource to bind, features to enable on the new session, a FAST token to
// issue. A failure leaves the stream as it was, so the client may try
// again (counted against MaxAuthFailures like any SASL failure); a success
// is followed by new stream features without a stream restart.

// sasl2Request is what an <authenticate/> asked for besides authentication;
// the reader keeps it until the exchange ends.
type sasl2Request struct {
	agent userAgent
	bind  *etree.Element // the Bind2 <bind/>, nil without one
	// tokenMech is the mechanism of a FAST <request-token/>, "" without one.
	tokenMech string
	// fast is the FAST <fast/> of a token login; invalidate its attribute.
	fast       *etree.Element
	invalidate bool
	// rotate is set by a token login whose token is due for rotation.
	rotate bool
	// used is the token a FAST login matched, so the new one replaces it.
	used string
	// resume is an inline XEP-0198 <resume/>, tried before Bind2.
	resume *etree.Element
}

// userAgent is SASL2's <user-agent/>: id names the client installation (a
// token is issued to one), software and device describe it to people.
type userAgent struct{ id, software, device string }

// Bounds on what a client may make the server keep of its user-agent and
// tag, in bytes.
const (
	maxUserAgentID = 128
	maxAgentText   = 64
	maxBindTag     = 64
)

// bind2Feature is one session feature Bind2 can enable in the login's round
// trip: the namespace its request element has inside <bind/>, whether it is
// offered on this session, and what enables it, returning the element that
// goes into <bound/> (nil for none).
type bind2Feature struct {
	ns      string
	offered func(*session) bool
	enable  func(*session, *etree.Element) *etree.Element
}

// bind2Features lists the inline features, advertised in this order.
var bind2Features = []bind2Feature{
	// XEP-0198: <enable/> inside <bind/>, <enabled/> (or <failed/>) in
	// <bound/>, through the same enableSM as a separate <enable/>.
	{ns: nsSM, offered: (*session).smFeature, enable: func(s *session, req *etree.Element) *etree.Element {
		if req.Tag != "enable" {
			return nil
		}
		maxSecs, _ := strconv.Atoi(xmpp.Attr(req, "max"))
		r := xmpp.Attr(req, "resume")
		return s.enableSM(r == "true" || r == "1", maxSecs)
	}},
}

// smInline reports whether SASL2 offers XEP-0198 resumption inline.
func (s *session) smInline() bool { return s.smFeature() && s.srv.cfg.SMResumeTimeout > 0 }

func (s *session) sasl2Feature() *etree.Element {
	auth := xmpp.Elem("authentication", xmpp.NSSASL2)
	for _, m := range s.mechanisms() {
		if m == mechOAuthBearer {
			continue // RFC 6120 SASL only; under SASL2 an application token goes as the PLAIN password
		}
		auth.CreateElement("mechanism").SetText(m)
	}
	inline := auth.CreateElement("inline")
	bind := xmpp.Elem("bind", xmpp.NSBind2)
	feats := bind.CreateElement("inline")
	for _, f := range bind2Features {
		if f.offered(s) {
			feats.CreateElement("feature").CreateAttr("var", f.ns)
		}
	}
	inline.AddChild(bind)
	if s.smInline() {
		inline.AddChild(smElem("sm"))
	}
	if s.fastOffered() {
		inline.AddChild(s.fastFeature())
	}
	return auth
}

// handleSASL2 processes one element of the SASL2 namespace.
func (s *session) handleSASL2(el *etree.Element) *xmpp.StreamError {
	switch el.Tag {
	case "authenticate":
		return s.sasl2Authenticate(el)
	case "response", "abort":
		if s.sasl.v2 == nil {
			s.sasl.v2 = &sasl2Request{}
			if el.Tag == "response" {
				return s.saslFail(saslMalformedRequest, "no exchange in progress")
			}
		}
		return s.handleSASL(el) // the same steps; answers go out in SASL2's namespace
	}
	return &xmpp.StreamError{Condition: xmpp.UnsupportedStanzaType, Text: "unknown SASL2 element"}
}

func (s *session) sasl2Authenticate(el *etree.Element) *xmpp.StreamError {
	req := parseSASL2(el)
	s.sasl.conv, s.sasl.storeErr, s.sasl.epoch = nil, nil, nil
	s.sasl.v2 = req
	s.sasl.mech = xmpp.Attr(el, "mechanism")
	var initial []byte
	ir := xmpp.Child(el, "initial-response", xmpp.NSSASL2)
	if ir != nil {
		var ok bool
		// SASL2 has no "=": an empty element is an empty response.
		if initial, ok = decodeSASL2(ir.Text()); !ok {
			return s.saslFail(saslIncorrectEncoding, "")
		}
	}
	if strings.HasPrefix(s.sasl.mech, "HT-") {
		if !s.fastOffered() || s.sasl.mech != mechHTSHA256None {
			return s.saslFail(saslInvalidMechanism, "")
		}
		if ir == nil {
			return s.saslFail(saslMalformedRequest, "HT needs an initial response")
		}
		return s.fastAuth(initial)
	}
	return s.saslStart(initial, ir != nil)
}

func decodeSASL2(text string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	return b, err == nil
}

func parseSASL2(el *etree.Element) *sasl2Request {
	req := &sasl2Request{}
	if ua := xmpp.Child(el, "user-agent", xmpp.NSSASL2); ua != nil {
		if id := xmpp.Attr(ua, "id"); len(id) <= maxUserAgentID {
			req.agent.id = id
		}
		req.agent.software = clip(textOf(ua, "software"), maxAgentText)
		req.agent.device = clip(textOf(ua, "device"), maxAgentText)
	}
	req.bind = xmpp.Child(el, "bind", xmpp.NSBind2)
	req.resume = xmpp.Child(el, "resume", nsSM)
	if rt := xmpp.Child(el, "request-token", xmpp.NSFAST); rt != nil {
		req.tokenMech = xmpp.Attr(rt, "mechanism")
	}
	if f := xmpp.Child(el, "fast", xmpp.NSFAST); f != nil {
		req.fast = f
		v := xmpp.Attr(f, "invalidate")
		req.invalidate = v == "true" || v == "1"
	}
	return req
}

func textOf(el *etree.Element, local string) string {
	if c := xmpp.Child(el, local, el.NamespaceURI()); c != nil {
		return strings.TrimSpace(c.Text())
	}
	return ""
}

// clip cuts s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// sasl2Success completes a SASL2 login: an inline XEP-0198 resumption
// first (which, when it works, replaces the bind), then Bind2 (so a refused
// bind fails the exchange before a token exists), then the token, then
// <success/> and the features of the authenticated stream, without a
// stream restart.
func (s *session) sasl2Success(user xmpp.JID, final []byte) *xmpp.StreamError {
	req, epoch, failures := s.sasl.v2, s.sasl.epoch, s.sasl.failures
	success := func(authz string, children ...*etree.Element) *etree.Element {
		ok := xmpp.Elem("success", xmpp.NSSASL2)
		if len(final) > 0 {
			ok.CreateElement("additional-data").SetText(base64.StdEncoding.EncodeToString(final))
		}
		ok.CreateElement("authorization-identifier").SetText(authz)
		for _, c := range children {
			if c != nil {
				ok.AddChild(c)
			}
		}
		if tok := s.fastAfterLogin(user, req, epoch); tok != nil {
			ok.AddChild(tok)
		}
		s.sasl = saslState{}
		return ok
	}
	var resumeFailed *etree.Element
	if req.resume != nil && s.smInline() {
		h, err := strconv.ParseUint(xmpp.Attr(req.resume, "h"), 10, 32)
		if err != nil {
			resumeFailed = smFailed(xmpp.BadRequest)
		} else {
			resumed := false
			// resumeSM queues the stanzas it resends right after its answer,
			// so <success/> and the features must be queued from inside it.
			s.resumeSM(xmpp.Attr(req.resume, "previd"), uint32(h), func(el *etree.Element) bool {
				if el.Tag != "resumed" {
					resumeFailed = el
					return true
				}
				resumed = true
				ok := s.sendElement(success(s.jid.Load().String(), el))
				s.sendElement(s.sasl2Features(true))
				return ok
			})
			if resumed {
				return nil
			}
		}
	}
	authz := user.String()
	var bound *etree.Element
	if req.bind != nil {
		full, serr := s.bindResource(bind2Resource(req.bind))
		if serr != nil {
			// Authenticated, but no session can be had: the client is told
			// why and stays unauthenticated, free to try again later.
			s.user = xmpp.JID{}
			f := xmpp.Elem("failure", xmpp.NSSASL2)
			f.AddChild(xmpp.Elem(saslTemporaryFailure, xmpp.NSSASL))
			f.AddChild(xmpp.Elem(string(serr.Condition), xmpp.NSStanzas))
			t := f.CreateElement("text")
			t.CreateAttr("xml:lang", "en")
			t.SetText(serr.Text)
			s.sasl = saslState{failures: failures}
			s.sendElement(f)
			return nil
		}
		authz = full.String()
		bound = xmpp.Elem("bound", xmpp.NSBind2)
		for _, c := range req.bind.ChildElements() {
			if r := s.bind2Enable(c); r != nil {
				bound.AddChild(r)
			}
		}
	}
	s.sendElement(success(authz, resumeFailed, bound))
	if bound == nil {
		s.st = stateBind
		s.setLog(s.log.With("user", user.String()))
	}
	s.sendElement(s.sasl2Features(bound != nil))
	return nil
}

// sasl2Features are the features after a SASL2 success: the RFC 6120 bind
// when Bind2 did not bind, and stream management while it is not on.
func (s *session) sasl2Features(bound bool) *etree.Element {
	feats := xmpp.Elem("stream:features", "")
	feats.CreateAttr("xmlns:stream", xmpp.NSStream)
	if !bound {
		feats.AddChild(xmpp.Elem("bind", xmpp.NSBind))
		sess := feats.CreateElement("session")
		sess.CreateAttr("xmlns", xmpp.NSSession)
		sess.CreateElement("optional")
	}
	if s.smFeature() && s.sm.Load() == nil {
		feats.AddChild(smElem("sm"))
	}
	return feats
}

// bind2Resource is XEP-0386's "[tag]/[server generated]", or only the
// generated part when the tag is missing or unusable.
func bind2Resource(bind *etree.Element) string {
	id := randomID()[:16]
	tag := ""
	if t := xmpp.Child(bind, "tag", xmpp.NSBind2); t != nil {
		tag = strings.TrimSpace(t.Text())
	}
	if tag == "" || len(tag) > maxBindTag {
		return id
	}
	if _, err := xmpp.NewJID("x", "localhost", tag); err != nil {
		return id
	}
	return tag + "/" + id
}

// bind2Enable runs the inline feature that req asks for, if it is one this
// session offers; anything else in <bind/> is ignored, as XEP-0386 has
// the server do with requests it does not understand.
func (s *session) bind2Enable(req *etree.Element) *etree.Element {
	ns := req.NamespaceURI()
	if ns == xmpp.NSBind2 {
		return nil // <tag/>
	}
	i := slices.IndexFunc(bind2Features, func(f bind2Feature) bool { return f.ns == ns })
	if i < 0 || !bind2Features[i].offered(s) {
		return nil
	}
	return bind2Features[i].enable(s, req)
}

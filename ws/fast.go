package ws

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"time"

	"github.com/beevik/etree"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// XEP-0484 FAST with the HT-SHA-256-NONE mechanism of the Hashed Token SASL
// draft: the client proves it holds a token with HMAC-SHA-256(token,
// "Initiator") in one message, and the server proves the same with
// "Responder" in its <success/>. Channel binding (-ENDP, -EXPR) is not
// offered: behind a TLS-terminating proxy, and in every browser, neither
// side can see the TLS channel, so NONE is the mechanism that works.
//
// The server keeps no token. A token is longer than SHA-256's block size,
// so RFC 2104 keys HMAC with SHA-256(token) instead of the token itself:
// that digest is all a check needs, and the store holds it masked with a
// pad derived from the server secret (tokenMask), so the token records
// alone let nobody log in.

// mechHTSHA256None is the one FAST mechanism offered.
const mechHTSHA256None = "HT-SHA-256-NONE"

// tokenBytes is the random part of a token: 60 bytes, 80 characters of
// base64, above the 64-byte block of SHA-256 so that the stored digest is
// an equivalent HMAC key (the test TestTokenKeyEquivalent holds it there).
const tokenBytes = 60

// touchEvery is how stale a token's LastUsed may get: a reconnect storm
// should not be a storm of store writes, and the first use (which decides
// rotation) is always written.
const touchEvery = time.Hour

// fastMetrics count what happens to tokens; token logins themselves are
// xmpp_auth_total{mechanism="HT-SHA-256-NONE"}.
type fastMetrics struct {
	issued, invalidated prometheus.Counter
}

func newFastMetrics(reg prometheus.Registerer) *fastMetrics {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xmpp_fast_tokens_total",
		Help: "FAST tokens issued (on request or by rotation) and invalidated by their client (XEP-0484 invalidate).",
	}, []string{"event"})
	m := &fastMetrics{issued: v.WithLabelValues("issued"), invalidated: v.WithLabelValues("invalidated")}
	if reg != nil {
		reg.MustRegister(v)
	}
	return m
}

// fastOffered reports whether this connection may use FAST: tokens are
// bearer secrets, so they follow the PLAIN policy.
func (s *session) fastOffered() bool {
	return s.srv.cfg.FAST && s.srv.tokens != nil && s.plain
}

func (s *session) fastFeature() *etree.Element {
	f := xmpp.Elem("fast", xmpp.NSFAST)
	f.CreateElement("mechanism").SetText(mechHTSHA256None)
	return f
}

// tokenMask is the pad over a token's stored digest: an HMAC of the
// account and token id under the server secret, unique to each token.
func tokenMask(secret []byte, user xmpp.JID, id string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("xmppws fast token\x00"))
	mac.Write([]byte(user.Bare().String()))
	mac.Write([]byte{0})
	mac.Write([]byte(id))
	return mac.Sum(nil)
}

func xorBytes(a, b []byte) []byte {
	out := make([]byte, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// htMessage is the HT draft's HMAC(token, label || cb-data) with empty
// cb-data, computed from the token's digest.
func htMessage(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// fastAuth checks an HT initiator message, "authcid NUL HMAC". Every
// failure, whatever its cause (no such user, no token, wrong, expired,
// another client's, older than the password), is not-authorized: one
// answer, one counter, one failure against MaxAuthFailures, as for a
// wrong password.
func (s *session) fastAuth(data []byte) *xmpp.StreamError {
	req := s.sasl.v2
	i := bytes.IndexByte(data, 0)
	if i <= 0 {
		return s.saslFail(saslMalformedRequest, "")
	}
	s.sasl.attempt = string(data[:i])
	proof := data[i+1:]
	user, err := xmpp.NewJID(string(data[:i]), s.host, "")
	if err != nil {
		return s.saslFail(saslNotAuthorized, "")
	}
	// The same store reads whether or not the account exists.
	rec, err := s.srv.accounts.Account(s.ctx, user)
	known := err == nil
	if errors.Is(err, account.ErrNotFound) {
		err = nil
	}
	var toks []account.Token
	var secret []byte
	if err == nil {
		toks, err = s.srv.tokens.Tokens(s.ctx, user)
	}
	if err == nil {
		secret, err = s.srv.serverSecret(s.ctx)
	}
	if err != nil {
		s.srv.throttle.Log(s.log, slog.LevelError, "account-lookup", "token lookup failed", "err", err)
		return s.saslFail(saslTemporaryFailure, "")
	}
	now := s.srv.now()
	var match *account.Token
	var key []byte
	for i := range toks {
		t := &toks[i]
		k := xorBytes(t.Key, tokenMask(secret, user, t.ID))
		if hmac.Equal(htMessage(k, "Initiator"), proof) && req.agent.id != "" &&
			t.UserAgent == req.agent.id && t.Mechanism == s.sasl.mech {
			match, key = t, k
		}
	}
	if match == nil || !known || !hmac.Equal(match.Epoch, account.RecordEpoch(rec)) {
		return s.saslFail(saslNotAuthorized, "")
	}
	if !now.Before(match.Expires) {
		s.deleteTokens(user, match.ID)
		return s.saslFail(saslNotAuthorized, "")
	}
	// XEP-0484 §3.5: a token used ends its client's older ones; an
	// invalidating login ends all of that client's.
	var stale []string
	for _, t := range toks {
		if t.UserAgent == match.UserAgent && t.ID != match.ID && (req.invalidate || t.Expires.Before(match.Expires)) {
			stale = append(stale, t.ID)
		}
	}
	if req.invalidate {
		stale = append(stale, match.ID)
		s.srv.fm.invalidated.Inc()
	} else if match.LastUsed.IsZero() || now.Sub(match.LastUsed) >= touchEvery {
		if err := s.srv.tokens.TouchToken(s.ctx, user, match.ID, now); err != nil && !errors.Is(err, account.ErrNotFound) {
			s.srv.throttle.Log(s.log, slog.LevelWarn, "token-write", "token write failed", "err", err)
		}
	}
	s.deleteTokens(user, stale...)
	req.rotate = match.Expires.Sub(now) < s.srv.cfg.FASTTokenTTL/2
	req.used = match.ID
	s.sasl.epoch = match.Epoch
	return s.saslSuccess(user, htMessage(key, "Responder"))
}

func (s *session) deleteTokens(user xmpp.JID, ids ...string) {
	if len(ids) == 0 {
		return
	}
	if _, err := s.srv.tokens.DeleteTokens(s.ctx, user, ids...); err != nil {
		s.srv.throttle.Log(s.log, slog.LevelWarn, "token-write", "token write failed", "err", err)
	}
}

// fastAfterLogin issues the token a successful SASL2 login asked for
// (<request-token/>) or that a token login is due (rotation, unless the
// client invalidated its token), and returns the <token/> for <success/>.
// A token that cannot be stored is left out: the login itself stands.
func (s *session) fastAfterLogin(user xmpp.JID, req *sasl2Request, epoch []byte) *etree.Element {
	mech := req.tokenMech
	if mech == "" && req.rotate && !req.invalidate {
		mech = mechHTSHA256None
	}
	if mech != mechHTSHA256None || !s.fastOffered() || req.agent.id == "" || epoch == nil {
		return nil
	}
	tok, el, err := s.srv.issueToken(s.ctx, user, req.agent, mech, epoch)
	if err != nil {
		s.srv.throttle.Log(s.log, slog.LevelWarn, "token-write", "token not issued", "err", err)
		return nil
	}
	s.log.Info("token issued", "token_id", tok.ID, "expires", tok.Expires)
	return el
}

// issueToken makes, stores and describes a new token for one client. The
// client's tokens that were never used go (XEP-0484 §3.5: only the newest
// offer stands); its token in use stays until the new one is used.
func (srv *Server) issueToken(ctx context.Context, user xmpp.JID, ua userAgent, mech string, epoch []byte) (account.Token, *etree.Element, error) {
	secret, err := srv.serverSecret(ctx)
	if err != nil {
		return account.Token{}, nil, err
	}
	old, err := srv.tokens.Tokens(ctx, user)
	if err != nil {
		return account.Token{}, nil, err
	}
	raw := make([]byte, tokenBytes)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	digest := sha256.Sum256([]byte(token))
	now := srv.now().UTC().Truncate(time.Millisecond)
	t := account.Token{
		ID:        randomID()[:16],
		Mechanism: mech,
		UserAgent: ua.id,
		Software:  ua.software,
		Device:    ua.device,
		Epoch:     epoch,
		Created:   now,
		Expires:   now.Add(srv.cfg.FASTTokenTTL),
	}
	t.Key = xorBytes(digest[:], tokenMask(secret, user, t.ID))
	var unused []string
	for _, o := range old {
		if o.UserAgent == ua.id && o.LastUsed.IsZero() {
			unused = append(unused, o.ID)
		}
	}
	if len(unused) > 0 {
		if _, err := srv.tokens.DeleteTokens(ctx, user, unused...); err != nil {
			return account.Token{}, nil, err
		}
	}
	if err := srv.tokens.AddToken(ctx, user, t, srv.cfg.MaxFASTTokens); err != nil {
		return account.Token{}, nil, err
	}
	srv.fm.issued.Inc()
	el := xmpp.Elem("token", xmpp.NSFAST)
	el.CreateAttr("expiry", t.Expires.Format(time.RFC3339))
	el.CreateAttr("token", token)
	return t, el, nil
}

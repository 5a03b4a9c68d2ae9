package ws

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"

	"github.com/beevik/etree"
	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// SASL failure conditions of RFC 6120 §6.5.
const (
	saslAborted           = "aborted"
	saslIncorrectEncoding = "incorrect-encoding"
	saslInvalidAuthzid    = "invalid-authzid"
	saslInvalidMechanism  = "invalid-mechanism"
	saslMalformedRequest  = "malformed-request"
	saslNotAuthorized     = "not-authorized"
	saslTemporaryFailure  = "temporary-auth-failure"
)

// saslState is the reader goroutine's view of a SASL exchange in progress.
type saslState struct {
	mech     string
	conv     *scram.ServerConversation
	storeErr error  // a store failure during the credential lookup
	attempt  string // the user name the client gave, for "login failed"
	failures int
	epoch    []byte        // account.RecordEpoch of the record the login is checked against
	v2       *sasl2Request // non-nil while the exchange is SASL2 (sasl2.go)
}

func (s *session) mechanisms() []string {
	m := []string{account.SCRAMSHA256, account.SCRAMSHA1}
	if s.plain {
		m = append(m, "PLAIN")
	}
	if s.plain && s.srv.apps.on() {
		m = append(m, mechOAuthBearer)
	}
	return m
}

// handleSASL processes one element of the SASL namespace.
func (s *session) handleSASL(el *etree.Element) *xmpp.StreamError {
	switch el.Tag {
	case "auth":
		return s.saslAuth(el)
	case "response":
		if done, serr := s.oauthResponse(el); done {
			return serr
		}
		if s.sasl.mech == "PLAIN-wait" {
			data, ok := decodeSASL(el.Text())
			if !ok {
				return s.saslFail(saslIncorrectEncoding, "")
			}
			return s.plainAuth(data)
		}
		if s.sasl.conv == nil {
			return s.saslFail(saslMalformedRequest, "no exchange in progress")
		}
		data, ok := decodeSASL(el.Text())
		if !ok {
			return s.saslFail(saslIncorrectEncoding, "")
		}
		return s.scramStep(data)
	case "abort":
		return s.saslFail(saslAborted, "")
	}
	return &xmpp.StreamError{Condition: xmpp.UnsupportedStanzaType, Text: "unknown SASL element"}
}

func (s *session) saslAuth(el *etree.Element) *xmpp.StreamError {
	s.sasl.conv, s.sasl.storeErr, s.sasl.v2 = nil, nil, nil
	s.sasl.mech = xmpp.Attr(el, "mechanism")
	text := el.Text()
	var initial []byte
	if text != "" {
		var ok bool
		if initial, ok = decodeSASL(text); !ok {
			return s.saslFail(saslIncorrectEncoding, "")
		}
	}
	return s.saslStart(initial, text != "")
}

// saslStart begins the exchange of s.sasl.mech, for SASL and SASL2 alike.
func (s *session) saslStart(initial []byte, hasInitial bool) *xmpp.StreamError {
	switch s.sasl.mech {
	case "PLAIN":
		if !s.plain {
			return s.saslFail(saslInvalidMechanism, "PLAIN is offered only over TLS")
		}
		if !hasInitial {
			s.sendElement(xmpp.Elem("challenge", s.saslNS())) // ask for the initial response
			s.sasl.mech = "PLAIN-wait"
			return nil
		}
		return s.plainAuth(initial)
	case account.SCRAMSHA256, account.SCRAMSHA1:
		hash := scram.SHA256
		if s.sasl.mech == account.SCRAMSHA1 {
			hash = scram.SHA1
		}
		srv, err := hash.NewServer(s.credentialLookup)
		if err != nil {
			return s.saslFail(saslTemporaryFailure, "")
		}
		s.sasl.conv = srv.NewConversation()
		if !hasInitial {
			s.sendElement(xmpp.Elem("challenge", s.saslNS()))
			return nil
		}
		return s.scramStep(initial)
	case mechOAuthBearer:
		if s.sasl.v2 != nil {
			break // not offered under SASL2 (sasl2Feature)
		}
		return s.oauthAuth(initial, !hasInitial)
	}
	return s.saslFail(saslInvalidMechanism, "")
}

// decodeSASL decodes base64 content; "=" stands for an empty response.
func decodeSASL(text string) ([]byte, bool) {
	text = strings.TrimSpace(text)
	if text == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(text)
	return b, err == nil
}

// credentialLookup feeds the SCRAM conversation. An unknown user gets
// credentials derived from the store's server secret, so the exchange fails
// at the proof exactly like a wrong password and, because the secret is the
// same after a restart and on every node, offers the same salt and
// iteration count every time: nothing reveals which users exist.
func (s *session) credentialLookup(username string) (scram.StoredCredentials, error) {
	s.sasl.attempt = username
	j, err := xmpp.NewJID(username, s.host, "")
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	rec, err := s.srv.accounts.Account(s.ctx, j)
	if errors.Is(err, account.ErrNotFound) {
		rec, err = s.srv.fakeRecord(s.ctx, j)
	}
	if err != nil {
		s.sasl.storeErr = err
		return scram.StoredCredentials{}, err
	}
	s.sasl.epoch = account.RecordEpoch(rec)
	sc, _ := rec.Stored(s.sasl.mech)
	return sc, nil
}

// fakeRecord is the record an unknown account appears to have: salt and keys
// are HMACs of its JID under the server secret, and the iteration count is
// that of real records, so both the challenge and the work done look alike.
func (srv *Server) fakeRecord(ctx context.Context, j xmpp.JID) (account.Record, error) {
	secret, err := srv.serverSecret(ctx)
	if err != nil {
		return account.Record{}, err
	}
	sum := func(label string) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(label))
		mac.Write([]byte{0})
		mac.Write([]byte(j.String()))
		return mac.Sum(nil)
	}
	k := account.Keys{StoredKey: sum("stored-key"), ServerKey: sum("server-key")}
	return account.Record{JID: j.String(), Salt: sum("salt")[:16], Iters: account.Iterations, SHA1: k, SHA256: k}, nil
}

// verifyPassword checks a PLAIN password; a variable so that tests can count
// the key derivations it runs.
var verifyPassword = account.Record.Verify

func (s *session) scramStep(data []byte) *xmpp.StreamError {
	conv := s.sasl.conv
	resp, err := conv.Step(string(data))
	if err != nil {
		if s.sasl.storeErr != nil {
			s.srv.throttle.Log(s.log, slog.LevelError, "account-lookup", "account lookup failed", "err", s.sasl.storeErr)
			return s.saslFail(saslTemporaryFailure, "")
		}
		return s.saslFail(saslNotAuthorized, "")
	}
	if !conv.Done() {
		c := xmpp.Elem("challenge", s.saslNS())
		c.SetText(base64.StdEncoding.EncodeToString([]byte(resp)))
		s.sendElement(c)
		return nil
	}
	if !conv.Valid() {
		return s.saslFail(saslNotAuthorized, "")
	}
	user, err := xmpp.NewJID(conv.Username(), s.host, "")
	if err != nil {
		return s.saslFail(saslNotAuthorized, "")
	}
	if z := conv.AuthzID(); z != "" && !authzMatches(z, user) {
		return s.saslFail(saslInvalidAuthzid, "")
	}
	return s.saslSuccess(user, []byte(resp))
}

// plainAuth checks "authzid NUL authcid NUL password" (RFC 4616).
func (s *session) plainAuth(data []byte) *xmpp.StreamError {
	parts := bytes.Split(data, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return s.saslFail(saslMalformedRequest, "")
	}
	s.sasl.attempt = string(parts[1])
	user, err := xmpp.NewJID(string(parts[1]), s.host, "")
	if err != nil {
		return s.saslFail(saslNotAuthorized, "")
	}
	if len(parts[0]) > 0 && !authzMatches(string(parts[0]), user) {
		return s.saslFail(saslInvalidAuthzid, "")
	}
	if done, serr := s.plainToken(user, string(parts[2])); done {
		return serr
	}
	rec, err := s.srv.accounts.Account(s.ctx, user)
	known := err == nil
	if errors.Is(err, account.ErrNotFound) {
		// Derive the key anyway, with the same cost: a failure that skipped
		// it would come back measurably sooner for a user who does not exist.
		rec, err = s.srv.fakeRecord(s.ctx, user)
	}
	if err != nil {
		s.srv.throttle.Log(s.log, slog.LevelError, "account-lookup", "account lookup failed", "err", err)
		return s.saslFail(saslTemporaryFailure, "")
	}
	if !verifyPassword(rec, user.Local, string(parts[2])) || !known {
		return s.saslFail(saslNotAuthorized, "")
	}
	s.sasl.epoch = account.RecordEpoch(rec)
	return s.saslSuccess(user, nil)
}

// authzMatches accepts an authorisation identity only when it names the
// authenticated account itself: this server has no proxy authorisation.
func authzMatches(authz string, user xmpp.JID) bool {
	j, err := xmpp.ParseJID(authz)
	return err == nil && j.Bare() == user
}

func (s *session) saslSuccess(user xmpp.JID, final []byte) *xmpp.StreamError {
	mech := s.mechLabel()
	s.srv.m.auth.WithLabelValues(mech, "success").Inc()
	s.log.Info("login", "jid", user.String(), "mechanism", mech)
	s.user = user
	if s.sasl.v2 != nil {
		return s.sasl2Success(user, final)
	}
	s.sasl = saslState{}
	ok := xmpp.Elem("success", xmpp.NSSASL)
	if len(final) > 0 {
		ok.SetText(base64.StdEncoding.EncodeToString(final))
	}
	s.sendElement(ok)
	s.st = stateWaitOpen2
	s.setLog(s.log.With("user", user.String()))
	return nil
}

// saslFail reports a failure; the client may retry (RFC 6120 §6.4.5) until
// MaxAuthFailures, after which the stream is closed.
// Each failure is logged as "login failed" with the condition as its
// reason, never the library's text nor anything of the exchange itself.
func (s *session) saslFail(cond, text string) *xmpp.StreamError {
	mech := s.mechLabel()
	s.srv.m.auth.WithLabelValues(mech, "failure").Inc()
	s.log.Info("login failed", "user", truncateUser(s.sasl.attempt), "mechanism", mech, "reason", cond)
	fails := s.sasl.failures + 1
	f := xmpp.Elem("failure", s.saslNS())
	if s.sasl.v2 != nil {
		f.AddChild(xmpp.Elem(cond, xmpp.NSSASL)) // SASL2 too carries the RFC 6120 condition
	} else {
		f.CreateElement(cond)
	}
	s.sasl = saslState{failures: fails}
	if text != "" {
		t := f.CreateElement("text")
		t.CreateAttr("xml:lang", "en")
		t.SetText(text)
	}
	s.sendElement(f)
	if cond != saslAborted && fails >= s.srv.cfg.MaxAuthFailures {
		return &xmpp.StreamError{Condition: xmpp.PolicyViolation, Text: "too many failed authentication attempts"}
	}
	return nil
}

// saslNS is the namespace of the exchange in progress: SASL2's elements
// answer SASL2's.
func (s *session) saslNS() string {
	if s.sasl.v2 != nil {
		return xmpp.NSSASL2
	}
	return xmpp.NSSASL
}

func (s *session) mechLabel() string {
	switch s.sasl.mech {
	case account.SCRAMSHA256, account.SCRAMSHA1, "PLAIN":
		return s.sasl.mech
	case "PLAIN-wait":
		return "PLAIN"
	case mechOAuthBearer, oauthWait, oauthFailed:
		return mechOAuthBearer
	case mechHTSHA256None:
		return mechHTSHA256None
	}
	return "other"
}

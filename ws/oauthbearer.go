package ws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/apptoken"
	"github.com/wschat/xmppws/xmpp"
)

// TokenVerifier checks an application-issued token and names its user's
// bare JID (apptoken.Verifier is one). Its errors never quote the token.
type TokenVerifier interface {
	Verify(token string) (xmpp.JID, error)
}

// TokenAuth turns on logins with application-issued tokens: as the SASL
// PLAIN password, and with OAUTHBEARER (RFC 7628), both only where PLAIN
// is offered (TLS or loopback), since a bearer token is as good as a
// password to whoever sees it.
type TokenAuth struct {
	Verifier TokenVerifier
	// AutoCreate accepts a token for a user the account store does not
	// hold; otherwise the account must exist.
	AutoCreate bool
}

func (t TokenAuth) on() bool { return t.Verifier != nil }

// SASL mechanism state names of OAUTHBEARER.
const (
	mechOAuthBearer = "OAUTHBEARER"
	oauthWait       = "OAUTHBEARER-wait"   // an empty initial response: the client's message comes next
	oauthFailed     = "OAUTHBEARER-failed" // the error challenge was sent: the client's dummy response comes next
)

// tokenUser verifies a token for a login on this stream's host. want, when
// set, is the user the client named: the token must be theirs. ok false
// is a failed login; err a store failure (temporary-auth-failure).
func (s *session) tokenUser(token string, want xmpp.JID) (user xmpp.JID, ok bool, err error) {
	j, verr := s.srv.apps.Verifier.Verify(token)
	if verr != nil {
		s.log.Debug("token refused", "reason", verr.Error())
		return xmpp.JID{}, false, nil
	}
	if j.Domain != s.host || (!want.IsZero() && want != j) {
		return xmpp.JID{}, false, nil
	}
	if !s.srv.apps.AutoCreate {
		if _, err := s.srv.accounts.Account(s.ctx, j); errors.Is(err, account.ErrNotFound) {
			return xmpp.JID{}, false, nil
		} else if err != nil {
			return xmpp.JID{}, false, err
		}
	}
	return j, true, nil
}

// plainToken accepts a PLAIN password that is a good token for user. done
// false: it is no token, or not a good one, and the password check goes
// on (a wrong token then fails exactly like a wrong password).
func (s *session) plainToken(user xmpp.JID, password string) (done bool, serr *xmpp.StreamError) {
	if !s.srv.apps.on() || !apptoken.LooksLikeToken(password) {
		return false, nil
	}
	j, ok, err := s.tokenUser(password, user)
	if err != nil {
		s.srv.throttle.Log(s.log, slog.LevelError, "account-lookup", "account lookup failed", "err", err)
		return true, s.saslFail(saslTemporaryFailure, "")
	}
	if !ok {
		return false, nil
	}
	return true, s.saslSuccess(j, nil)
}

// oauthAuth starts OAUTHBEARER with the client's initial response.
func (s *session) oauthAuth(initial []byte, empty bool) *xmpp.StreamError {
	if !s.plain || !s.srv.apps.on() {
		return s.saslFail(saslInvalidMechanism, "")
	}
	if empty {
		s.sendElement(xmpp.Elem("challenge", xmpp.NSSASL))
		s.sasl.mech = oauthWait
		return nil
	}
	return s.oauthMessage(initial)
}

// oauthResponse handles a <response/> during OAUTHBEARER; done false: the
// exchange in progress is another mechanism's.
func (s *session) oauthResponse(el *etree.Element) (done bool, serr *xmpp.StreamError) {
	switch s.sasl.mech {
	case oauthWait:
		data, ok := decodeSASL(el.Text())
		if !ok {
			return true, s.saslFail(saslIncorrectEncoding, "")
		}
		return true, s.oauthMessage(data)
	case oauthFailed:
		// RFC 7628 §3.2.3: the client acknowledges the error with a lone
		// kvsep; whatever it sent, the exchange fails now.
		return true, s.saslFail(saslNotAuthorized, "")
	}
	return false, nil
}

// oauthMessage checks the client's message (RFC 7628 §3.1): a GS2 header
// without channel binding, then key=value pairs of which auth carries the
// bearer token.
func (s *session) oauthMessage(data []byte) *xmpp.StreamError {
	authz, token, ok := parseOAuthBearer(data)
	if !ok {
		return s.saslFail(saslMalformedRequest, "")
	}
	var want xmpp.JID
	if authz != "" {
		j, err := xmpp.ParseJID(authz)
		if err != nil || !j.IsBare() || j.Local == "" {
			return s.saslFail(saslInvalidAuthzid, "")
		}
		want = j
		s.sasl.attempt = j.Local
	}
	j, good, err := s.tokenUser(token, want)
	if err != nil {
		s.srv.throttle.Log(s.log, slog.LevelError, "account-lookup", "account lookup failed", "err", err)
		return s.saslFail(saslTemporaryFailure, "")
	}
	if !good {
		// §3.2.2: the failure is a challenge with the error as JSON; the
		// SASL failure follows the client's dummy response.
		c := xmpp.Elem("challenge", xmpp.NSSASL)
		c.SetText(base64.StdEncoding.EncodeToString([]byte(`{"status":"invalid_token","schemes":"bearer"}`)))
		s.sendElement(c)
		s.sasl.mech = oauthFailed
		return nil
	}
	return s.saslSuccess(j, nil)
}

// parseOAuthBearer splits an OAUTHBEARER client message into the GS2
// authorisation identity (unescaped; empty when absent) and the token.
func parseOAuthBearer(data []byte) (authz, token string, ok bool) {
	head, rest, found := bytes.Cut(data, []byte{1})
	if !found {
		return "", "", false
	}
	// gs2-header: cb-flag "," [ "a=" saslname ] ","
	parts := strings.Split(string(head), ",")
	if len(parts) != 3 || parts[2] != "" || (parts[0] != "n" && parts[0] != "y") {
		return "", "", false // "p=…" asks for channel binding, which is not offered
	}
	if a := parts[1]; a != "" {
		if !strings.HasPrefix(a, "a=") {
			return "", "", false
		}
		authz = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a[2:])
	}
	if !bytes.HasSuffix(rest, []byte{1}) {
		return "", "", false
	}
	for _, kv := range strings.Split(string(rest[:len(rest)-1]), "\x01") {
		if kv == "" {
			continue
		}
		k, v, found := strings.Cut(kv, "=")
		if !found {
			return "", "", false
		}
		if k == "auth" {
			scheme, tok, found := strings.Cut(v, " ")
			if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", "", false
			}
			token = strings.TrimSpace(tok)
		}
	}
	return authz, token, token != ""
}

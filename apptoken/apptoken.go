// Package apptoken verifies the JSON Web Tokens an application issues to
// its users so that they log in with the application's own accounts: the
// token names the user's bare JID, an expiry and an audience, and is signed
// with a shared secret (HS256) or a private key whose public half the
// server holds (RS256, EdDSA).
//
// It only says whether a token is good and whose it is. It must never log
// or return a token, never accept an algorithm other than the configured
// one (no "none", no HMAC keyed with a public key), and never decide how a
// failure is shown to the client: the caller makes it look like a wrong
// password.
package apptoken

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wschat/xmppws/xmpp"
)

// The algorithms a deployment may pin.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat unless the
// configuration says otherwise.
const DefaultLeeway = 30 * time.Second

// Config is [auth.jwt] as the verifier needs it.
type Config struct {
	// Algorithm is the one signing algorithm accepted.
	Algorithm string
	// Secret is the HS256 key; PublicKeyPEM the RS256 or EdDSA public key
	// (PEM, PKIX or PKCS#1).
	Secret       []byte
	PublicKeyPEM []byte
	// Audience must be among the token's aud; Issuer, when set, must be
	// its iss.
	Audience string
	Issuer   string
	// Leeway is the clock skew allowed (zero: none).
	Leeway time.Duration
	// JIDClaim names the claim holding the user's bare JID ("sub").
	JIDClaim string
	// Hosts are the served domains a token's JID must belong to.
	Hosts []string
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
}

// Verifier checks tokens against one Config. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	key    any
	parser *jwt.Parser
	hosts  map[string]bool
}

// Errors a caller may tell apart (for metrics); each is a failed login.
var (
	// ErrInvalid is any token that is not good: bad signature, wrong
	// algorithm, expired, wrong audience or issuer, malformed.
	ErrInvalid = errors.New("apptoken: invalid token")
	// ErrSubject is a good token whose JID claim is not a served user's
	// bare JID.
	ErrSubject = errors.New("apptoken: the token does not name a served user")
)

// New builds a verifier; it fails on a configuration that cannot verify
// anything (unknown algorithm, missing or unreadable key).
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{cfg: cfg, hosts: map[string]bool{}}
	for _, h := range cfg.Hosts {
		v.hosts[h] = true
	}
	if v.cfg.JIDClaim == "" {
		v.cfg.JIDClaim = "sub"
	}
	switch cfg.Algorithm {
	case HS256:
		if len(cfg.Secret) < 32 {
			return nil, errors.New("apptoken: an HS256 secret must be at least 32 bytes")
		}
		v.key = cfg.Secret
	case RS256:
		k, err := jwt.ParseRSAPublicKeyFromPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("apptoken: RS256 public key: %w", err)
		}
		v.key = k
	case EdDSA:
		k, err := jwt.ParseEdPublicKeyFromPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("apptoken: EdDSA public key: %w", err)
		}
		v.key = k
	default:
		return nil, fmt.Errorf("apptoken: algorithm %q is not supported (HS256, RS256 or EdDSA)", cfg.Algorithm)
	}
	if cfg.Audience == "" {
		return nil, errors.New("apptoken: an audience is required")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// ReadKeyFile reads a secret or a public key file for Config.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apptoken: %w", err)
	}
	return b, nil
}

// LooksLikeToken reports whether a SASL PLAIN password has the shape of a
// compact JWS (three base64url parts, a JSON header), so that passwords
// are not run through the parser.
func LooksLikeToken(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Verify checks a token and returns the user's bare JID. Every failure
// wraps ErrInvalid or ErrSubject; none includes the token.
func (v *Verifier) Verify(token string) (xmpp.JID, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused any other alg; this pins the
		// key type too, so a public key is never used as an HMAC secret.
		switch v.key.(type) {
		case []byte:
			if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
				return nil, ErrInvalid
			}
		case crypto.PublicKey:
			if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
				return nil, ErrInvalid
			}
		}
		return v.key, nil
	})
	if err != nil {
		return xmpp.JID{}, fmt.Errorf("%w: %s", ErrInvalid, reason(err))
	}
	raw, _ := claims[v.cfg.JIDClaim].(string)
	j, err := xmpp.ParseJID(raw)
	if err != nil || j.Local == "" || !j.IsBare() || !v.hosts[j.Domain] {
		return xmpp.JID{}, ErrSubject
	}
	return j, nil
}

// reason names a parser failure without quoting the token.
func reason(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{jwt.ErrTokenExpired, "expired"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenRequiredClaimMissing, "a required claim is missing"},
		{jwt.ErrTokenSignatureInvalid, "bad signature"},
		{jwt.ErrTokenUnverifiable, "unverifiable (algorithm)"},
		{jwt.ErrTokenMalformed, "malformed"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "rejected"
}

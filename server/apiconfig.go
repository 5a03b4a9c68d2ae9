package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wschat/xmppws/apptoken"
	"github.com/wschat/xmppws/ws"
)

// APIConfig is [api]: the admin HTTP API on a listener of its own.
type APIConfig struct {
	// Address is where the API listens; empty: the API is off.
	Address string `toml:"address"`
	// Tokens are the bearer tokens accepted, each named in the log.
	Tokens []APIToken `toml:"tokens"`
	// MaxInFlight bounds the API requests waiting for a room's answer at
	// once; past it a request is answered 503 at once.
	MaxInFlight int `toml:"max_in_flight"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// Timeout bounds one request's wait for the rooms.
	Timeout duration `toml:"timeout"`
}

// APIToken is one [[api.tokens]] entry.
type APIToken struct {
	Name  string `toml:"name"`
	Token string `toml:"token"`
}

// minAPITokenLen refuses guessable tokens.
const minAPITokenLen = 32

func defaultAPI() APIConfig {
	return APIConfig{MaxInFlight: 256, MaxBodyBytes: 1 << 20, Timeout: duration{10 * time.Second}}
}

func (c *APIConfig) validate() error {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("api.address: %w", err)
		}
		if len(c.Tokens) == 0 {
			return errors.New("api.tokens: the API is on (api.address) but no token is configured")
		}
	}
	names := map[string]bool{}
	for i, t := range c.Tokens {
		switch {
		case t.Name == "" || strings.ContainsAny(t.Name, " \t\n"):
			return fmt.Errorf("api.tokens[%d].name: must be a non-empty word", i)
		case names[t.Name]:
			return fmt.Errorf("api.tokens[%d].name: %q is used twice", i, t.Name)
		case len(t.Token) < minAPITokenLen:
			return fmt.Errorf("api.tokens[%d].token (%s): must be at least %d characters", i, t.Name, minAPITokenLen)
		}
		names[t.Name] = true
	}
	switch {
	case c.MaxInFlight < 1:
		return errors.New("api.max_in_flight: must be at least 1")
	case c.MaxBodyBytes < 1024:
		return errors.New("api.max_body_bytes: must be at least 1024")
	case c.Timeout.Duration <= 0:
		return errors.New("api.timeout: must be positive")
	}
	return nil
}

// AuthConfig is [auth]: login methods besides the stored passwords.
type AuthConfig struct {
	JWT JWTConfig `toml:"jwt"`
}

// JWTConfig is [auth.jwt]: tokens the application signs for its users.
type JWTConfig struct {
	Enabled   bool   `toml:"enabled"`
	Algorithm string `toml:"algorithm"`
	// Secret or SecretFile is the HS256 key; PublicKeyFile the RS256 or
	// EdDSA public key (PEM).
	Secret        string   `toml:"secret"`
	SecretFile    string   `toml:"secret_file"`
	PublicKeyFile string   `toml:"public_key_file"`
	Audience      string   `toml:"audience"`
	Issuer        string   `toml:"issuer"`
	Leeway        duration `toml:"leeway"`
	JIDClaim      string   `toml:"jid_claim"`
	AutoCreate    bool     `toml:"auto_create"`
}

func defaultAuth() AuthConfig {
	return AuthConfig{JWT: JWTConfig{Algorithm: apptoken.HS256, Leeway: duration{apptoken.DefaultLeeway}, JIDClaim: "sub"}}
}

// validate checks [auth.jwt] and builds the verifier the endpoint uses.
func (c *Config) validateAuth() error {
	j := c.Auth.JWT
	c.tokens = ws.TokenAuth{}
	if !j.Enabled {
		return nil
	}
	const sec = "auth.jwt."
	cfg := apptoken.Config{Algorithm: j.Algorithm, Audience: j.Audience, Issuer: j.Issuer, Leeway: j.Leeway.Duration,
		JIDClaim: j.JIDClaim, Hosts: c.General.Hosts}
	switch {
	case j.Leeway.Duration < 0:
		return errors.New(sec + "leeway: must not be negative")
	case j.Audience == "":
		return errors.New(sec + "audience: required (the application's tokens name this server)")
	case j.JIDClaim == "":
		return errors.New(sec + "jid_claim: must name a claim")
	}
	switch j.Algorithm {
	case apptoken.HS256:
		if (j.Secret == "") == (j.SecretFile == "") || j.PublicKeyFile != "" {
			return errors.New(sec + "secret, secret_file: HS256 needs exactly one of them, and no public_key_file")
		}
		cfg.Secret = []byte(j.Secret)
		if j.SecretFile != "" {
			b, err := apptoken.ReadKeyFile(j.SecretFile)
			if err != nil {
				return fmt.Errorf(sec+"secret_file: %w", err)
			}
			cfg.Secret = []byte(strings.TrimSpace(string(b)))
		}
	case apptoken.RS256, apptoken.EdDSA:
		if j.PublicKeyFile == "" || j.Secret != "" || j.SecretFile != "" {
			return fmt.Errorf(sec+"public_key_file: %s needs it, and no secret", j.Algorithm)
		}
		b, err := apptoken.ReadKeyFile(j.PublicKeyFile)
		if err != nil {
			return fmt.Errorf(sec+"public_key_file: %w", err)
		}
		cfg.PublicKeyPEM = b
	default:
		return fmt.Errorf(sec+"algorithm: %q is not supported (HS256, RS256 or EdDSA)", j.Algorithm)
	}
	v, err := apptoken.New(cfg)
	if err != nil {
		return fmt.Errorf(sec[:len(sec)-1]+": %w", err)
	}
	c.tokens = ws.TokenAuth{Verifier: v, AutoCreate: j.AutoCreate}
	return nil
}

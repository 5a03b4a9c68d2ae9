package ws_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/ws"
)

// The reconnect benchmarks: what one login costs, from a new WebSocket to
// a bound session, over loopback against the embedded store. Reported
// besides ns/op: round-trips/op (waits of the client for the server,
// <open/> included) and cpu-µs/op (the process's user+system CPU per
// login, client included: the SCRAM client keeps its salted password, as
// real clients do, so no PBKDF2 runs on either side).
//
//	go test ./ws -run '^$' -bench 'Login' -benchtime 2s

// loginBenchServer is benchServer without the session and
// unauthenticated-connection limits, which back-to-back logins from one
// address could run into.
func loginBenchServer(b *testing.B) (url string) {
	b.Helper()
	_, url = benchServer(b, func(cfg *ws.Config) {
		cfg.MaxSessionsPerAccount = 0
		cfg.MaxUnauthenticatedPerAddress = 0
		cfg.MaxUnauthenticated = 0
	})
	return url
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLogins runs login b.N times on fresh connections and reports the
// figures; login returns the round trips after <open/>.
func benchLogins(b *testing.B, url string, login func(ctx context.Context, c *client.Client) (int, error)) {
	ctx := context.Background()
	trips := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		c, err := client.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Open(ctx, "localhost"); err != nil {
			b.Fatal(err)
		}
		n, err := login(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		trips += 1 + n
		c.Close(ctx)
	}
	b.StopTimer()
	b.ReportMetric(float64(trips)/float64(b.N), "round-trips/op")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkLoginSCRAM is a password login: the RFC 6120 profile (SCRAM,
// stream restart, bind) and SASL2 with Bind2.
func BenchmarkLoginSCRAM(b *testing.B) {
	url := loginBenchServer(b)
	sc, err := scram.SHA256.NewClient("alice", "pw-alice", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rfc6120", func(b *testing.B) {
		benchLogins(b, url, func(ctx context.Context, c *client.Client) (int, error) {
			if err := c.AuthSCRAMWith(ctx, "SCRAM-SHA-256", sc); err != nil {
				return 0, err
			}
			if _, err := c.Open(ctx, "localhost"); err != nil {
				return 0, err
			}
			_, err := c.Bind(ctx, "")
			return 4, err
		})
	})
	// A client that keeps no salted password (a browser that keeps only a
	// FAST token, or nothing) derives it again each time: PBKDF2 with 4,096
	// iterations, on the client's side.
	b.Run("sasl2-bind2-uncached", func(b *testing.B) {
		benchLogins(b, url, func(ctx context.Context, c *client.Client) (int, error) {
			res, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, Bind: true})
			if err != nil {
				return 0, err
			}
			return res.RoundTrips, nil
		})
	})
	b.Run("sasl2-bind2", func(b *testing.B) {
		benchLogins(b, url, func(ctx context.Context, c *client.Client) (int, error) {
			res, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", SCRAM: sc, UserAgentID: uaID, Bind: true})
			if err != nil {
				return 0, err
			}
			return res.RoundTrips, nil
		})
	})
}

// BenchmarkLoginFAST is a token login (HT-SHA-256-NONE) with Bind2.
func BenchmarkLoginFAST(b *testing.B) {
	url := loginBenchServer(b)
	ctx := context.Background()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Open(ctx, "localhost"); err != nil {
		b.Fatal(err)
	}
	res, err := c.AuthSASL2(ctx, client.SASL2{Username: "alice", Password: "pw-alice", UserAgentID: uaID, Bind: true, RequestToken: "HT-SHA-256-NONE"})
	if err != nil || res.Token == "" {
		b.Fatalf("token: %v", err)
	}
	c.Close(ctx)
	benchLogins(b, url, func(ctx context.Context, c *client.Client) (int, error) {
		r, err := c.AuthSASL2(ctx, client.SASL2{Mechanism: "HT-SHA-256-NONE", Username: "alice", Token: res.Token, UserAgentID: uaID, Bind: true})
		if err != nil {
			return 0, err
		}
		return r.RoundTrips, nil
	})
}

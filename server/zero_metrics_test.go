package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/wschat/xmppws/rooms"
)

// TestCountersStartAtZero scrapes a server that has seen no client: every
// counter whose label values are known in advance already has its series at
// 0, so a dashboard shows a flat line and an alert's rate() has a series to
// work on before the first event.
func TestCountersStartAtZero(t *testing.T) {
	cfg := testConfig(t)
	cfg.limits = rooms.DefaultLimits()
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	text := scrape(t, a)
	var want []string
	for _, c := range []string{"bad-namespace-prefix", "conflict", "connection-timeout", "host-unknown", "invalid-from",
		"invalid-namespace", "not-authorized", "not-well-formed", "policy-violation", "restricted-xml",
		"unsupported-encoding", "unsupported-stanza-type", "unsupported-version"} {
		want = append(want, `xmpp_stream_errors_total{condition="`+c+`"}`)
	}
	for _, r := range []string{"write_timeout", "max_pending"} {
		want = append(want, `xmpp_slow_consumer_closes_total{reason="`+r+`"}`)
	}
	for _, b := range []string{"stanzas", "bytes"} {
		want = append(want, `xmpp_shaper_delays_total{bucket="`+b+`"}`, `xmpp_shaper_delay_seconds_total{bucket="`+b+`"}`)
	}
	for _, r := range []string{"unauthenticated_total", "unauthenticated_per_address"} {
		want = append(want, `xmpp_ws_connections_refused_total{reason="`+r+`"}`)
	}
	for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "OAUTHBEARER"} {
		for _, r := range []string{"success", "failure"} {
			want = append(want, `xmpp_auth_total{mechanism="`+m+`",result="`+r+`"}`)
		}
	}
	for _, r := range []string{"rate", "too_long", "too_many_lines", "nick_too_long"} {
		want = append(want, `muc_light_limiter_refusals_total{host_type="localhost",reason="`+r+`"}`)
	}
	for _, s := range []string{"room", "server"} {
		want = append(want, `muc_light_mam_query_refusals_total{scope="`+s+`"}`)
	}
	for _, fn := range rooms.StoreFunctions {
		want = append(want, `mod_muc_light_db_embedded_errors_total{function="`+fn+`",host_type="localhost"}`)
	}
	for _, fn := range rooms.ArchiveFunctions {
		want = append(want, `mod_mam_muc_light_db_embedded_count{function="`+fn+`",host_type="localhost"}`,
			`mod_mam_muc_light_db_embedded_errors_total{function="`+fn+`",host_type="localhost"}`,
			`mod_mam_muc_light_db_embedded_time_count{function="`+fn+`",host_type="localhost"}`)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[l] = true
	}
	for _, series := range want {
		if !lines[series+" 0"] {
			t.Errorf("a fresh server's /metrics lacks %s 0", series)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
)

// The Grafana dashboard and the Prometheus alerts in deploy/ may only name
// metrics the server exports: these tests collect the names from the
// /metrics of real servers, one per backend, and check every expression.

// promSynthetic are series Prometheus makes itself for every target.
var promSynthetic = map[string]bool{"up": true}

var (
	exportedOnce sync.Once
	exported     map[string]bool
)

// exportedMetrics returns every metric name the server exports, from the
// /metrics of an embedded-store server with the flood limiter and history
// on and of a MongoDB one (FerretDB when MONGODB_URI is unset), each after
// a little traffic, so that labelled series exist. A histogram counts as
// its _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	exportedOnce.Do(func() {
		names := map[string]bool{}
		embedded := testConfig(t)
		embedded.limits = rooms.DefaultLimits()
		mongo := mongoConfig(t, mongotest.URI(t))
		for _, cfg := range []Config{embedded, mongo} {
			a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			exerciseStore(t, cfg, a)
			text := scrape(t, a)
			a.Shutdown(context.Background())
			for _, line := range strings.Split(text, "\n") {
				f := strings.Fields(line)
				if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
					switch f[3] {
					case "histogram":
						names[f[2]+"_bucket"], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
					case "summary":
						names[f[2]], names[f[2]+"_sum"], names[f[2]+"_count"] = true, true, true
					default:
						names[f[2]] = true
					}
				}
			}
		}
		exported = names
	})
	if exported == nil {
		t.Fatal("the metrics of an earlier test's servers could not be collected")
	}
	return exported
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promWord     = regexp.MustCompile(`[A-Za-z0-9_:.]+`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are not numbers, keywords or function calls.
func promqlMetrics(expr string) []string {
	s := promString.ReplaceAllString(expr, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promWord.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		if w[0] >= '0' && w[0] <= '9' || w[0] == '.' || promKeywords[w] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	return names
}

func TestPromqlMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`xmpp_sessions`, []string{"xmpp_sessions"}},
		{`sum by (kind) (rate(xmpp_stanzas_in_total{kind="iq"}[5m]))`, []string{"xmpp_stanzas_in_total"}},
		{`histogram_quantile(0.99, sum by (le, function) (rate(mod_muc_light_db_embedded_time_bucket{host_type=~"a|b"}[$__rate_interval])))`,
			[]string{"mod_muc_light_db_embedded_time_bucket"}},
		{`(sum(rate(a_total[5m])) or sum (rate(b_total[1h] offset 5m))) > 0.5e3`, []string{"a_total", "b_total"}},
		{`up{job="x y"} == 0 and on (instance) foo:rule unless bar`, []string{"up", "foo:rule", "bar"}},
		{`-sum without (le) (c) / ignoring(x) group_left(y) d`, []string{"c", "d"}},
	} {
		if got := promqlMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Query   any    `json:"query"`
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"` // a row's
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 30 || d.Title == "" || d.UID == "" {
		t.Errorf("schemaVersion %d, title %q, uid %q: not a current Grafana dashboard", d.SchemaVersion, d.Title, d.UID)
	}
	// ${backend} names the store in the metric names: each option must give
	// exported names.
	var backends []string
	for _, v := range d.Templating.List {
		if v.Name == "backend" {
			for _, o := range v.Options {
				backends = append(backends, o.Value)
			}
		}
	}
	if !slices.Equal(backends, []string{"embedded", "mongodb"}) {
		t.Errorf("the backend variable offers %q, want embedded and mongodb", backends)
	}
	var exprs []string
	ids := map[int]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || len(p.Targets) == 0 {
				t.Errorf("panel %q: no Prometheus targets", p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("panel %q: target %q with refId %q", p.Title, tg.Expr, tg.RefID)
				}
				refs[tg.RefID] = true
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	if len(exprs) < 20 {
		t.Fatalf("%d expressions in the dashboard", len(exprs))
	}

	names := exportedMetrics(t)
	used := map[string]bool{}
	for _, expr := range exprs {
		variants := []string{"embedded"}
		if strings.Contains(expr, "${backend}") {
			variants = backends
		}
		for _, backend := range variants {
			e := strings.ReplaceAll(expr, "${backend}", backend)
			for _, m := range promqlMetrics(e) {
				used[m] = true
				if !names[m] {
					t.Errorf("the dashboard's %s names %s, which the server does not export", e, m)
				}
			}
		}
	}
	// What an operator must see is on it.
	for _, m := range []string{
		"xmpp_sessions", "xmpp_stanzas_in_total", "xmpp_stanzas_out_total", "muc_light_fanout_deliveries_total",
		"xmpp_send_pending_bytes", "xmpp_send_pending_max_bytes", "xmpp_send_stalls_total", "muc_light_limiter_refusals_total",
		"xmpp_shaper_delays_total", "mod_muc_light_db_embedded_time_bucket", "mod_muc_light_db_mongodb_time_bucket",
		"mod_mam_muc_light_db_embedded_time_bucket", "muc_light_archive_queue_depth", "xmpp_slow_consumer_closes_total",
		"muc_light_mailbox_waits_total", "mod_muc_light_db_embedded_errors_total",
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// prometheusRules is the rule-file format.
type prometheusRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	path := filepath.Join(deployDir, "alerts.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf prometheusRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatal(err)
	}
	names := exportedMetrics(t)
	used := map[string]bool{}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert name, expr, severity and summary are required", r.Alert)
			}
			for _, m := range promqlMetrics(r.Expr) {
				used[m] = true
				if !names[m] && !promSynthetic[m] {
					t.Errorf("alert %s names %s, which the server does not export", r.Alert, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	for _, m := range []string{
		"mod_muc_light_db_embedded_errors_total", "mod_muc_light_db_mongodb_errors_total", "xmpp_slow_consumer_closes_total",
		"muc_light_archive_queue_full_total", "muc_light_mailbox_full_total", "muc_light_internal_errors_total",
	} {
		if !used[m] {
			t.Errorf("no alert watches %s", m)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: promtool check rules and test rules skipped")
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
	cmd.Dir = deployDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/push"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

const hookSecret = "test-webhook-secret"

// hookRequest is one webhook POST as the test receiver saw it.
type hookRequest struct {
	ID      string   `json:"id"`
	Room    string   `json:"room"`
	Sender  string   `json:"sender"`
	Body    *string  `json:"body"`
	Members []string `json:"members"`
	Time    string   `json:"time"`
}

// signedHook is an HTTP receiver on 127.0.0.1 that checks every request's
// signature and timestamp as the README tells applications to, then hands
// the request to handle (nil: answer 204).
func signedHook(t *testing.T, handle func(w http.ResponseWriter, r hookRequest)) (url string, got chan hookRequest, bad *atomic.Int64) {
	got, bad = make(chan hookRequest, 100), &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get(push.HeaderTimestamp)
		sec, err := strconv.ParseInt(ts, 10, 64)
		want := push.Sign(hookSecret, ts, body)
		var req hookRequest
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute ||
			!hmac.Equal([]byte(r.Header.Get(push.HeaderSignature)), []byte(want)) || json.Unmarshal(body, &req) != nil {
			bad.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		got <- req
		if handle != nil {
			handle(w, req)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got, bad
}

// metricValue reads one series from /metrics (0 when absent).
func metricValue(t *testing.T, a *app, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, a), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// waitFor polls cond until it holds or ctx ends: for state the server
// changes on its own goroutines (a metric, a session gone).
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitMetric waits for a counter to reach want, failing at once if it
// passes it (one notification too many).
func waitMetric(ctx context.Context, t *testing.T, a *app, series string, want float64) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%s = %v", series, want), func() bool {
		v := metricValue(t, a, series)
		if v > want {
			t.Fatalf("%s is %v, more than %v", series, v, want)
		}
		return v == want
	})
}

func notifications(kind, outcome string) string {
	return `xmppws_push_notifications_total{kind="` + kind + `",outcome="` + outcome + `"}`
}

func enableEl(jid, node string, opts ...string) *etree.Element {
	e := xmpp.Elem("enable", push.NS)
	e.CreateAttr("jid", jid)
	if node != "" {
		e.CreateAttr("node", node)
	}
	if len(opts) > 0 {
		x := e.CreateElement("x")
		x.CreateAttr("xmlns", xmpp.NSDataForm)
		x.CreateAttr("type", "submit")
		f := x.CreateElement("field")
		f.CreateAttr("var", "FORM_TYPE")
		f.CreateElement("value").SetText(push.FormPublishOpt)
		for i := 0; i+1 < len(opts); i += 2 {
			f := x.CreateElement("field")
			f.CreateAttr("var", opts[i])
			f.CreateElement("value").SetText(opts[i+1])
		}
	}
	return e
}

// pushEnv is a server with push on, its users and the test app server.
type pushEnv struct {
	t   *testing.T
	cfg Config
	a   *app
	log *slog.Logger
}

func (e *pushEnv) start() {
	var err error
	if e.a, err = start(e.cfg, e.log); err != nil {
		e.t.Fatal(err)
	}
	a := e.a
	e.t.Cleanup(func() { a.Shutdown(context.Background()) })
}

func (e *pushEnv) login(ctx context.Context, full string) *client.Client {
	e.t.Helper()
	c, err := client.Login(ctx, "ws://"+e.a.Addr()+e.cfg.WebSocket.Path, xmpp.MustParseJID(full), "pw")
	if err != nil {
		e.t.Fatalf("login %s: %v", full, err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

// logout closes c and waits until the server no longer counts it online.
func (e *pushEnv) logout(ctx context.Context, c *client.Client) {
	e.t.Helper()
	user := c.JID().Bare()
	c.Close(ctx)
	waitFor(ctx, e.t, user.String()+" offline", func() bool { return !e.a.ws.Router().OnlineAnywhere(user) })
}

// publishes takes the pubsub publishes the app server has received for
// node: a ping answered by the server first makes sure everything sent to
// the app server before it has arrived.
func publishes(ctx context.Context, t *testing.T, app *client.Client, node string) []*etree.Element {
	t.Helper()
	if err := app.Ping(ctx, "localhost"); err != nil {
		t.Fatal(err)
	}
	var out []*etree.Element
	done, cancel := context.WithCancel(ctx)
	cancel()
	for {
		el, err := app.Expect(done, func(el *etree.Element) bool {
			pub := xmpp.Child(xmpp.Child(el, "pubsub", push.NSPubSub), "publish", push.NSPubSub)
			return el.Tag == "iq" && pub != nil && xmpp.Attr(pub, "node") == node
		})
		if err != nil {
			return out
		}
		out = append(out, el)
	}
}

// formFields reads a data form's fields.
func formFields(x *etree.Element) map[string]string {
	out := map[string]string{}
	for _, f := range xmpp.Children(x, "field", xmpp.NSDataForm) {
		v := ""
		if ve := xmpp.Child(f, "value", xmpp.NSDataForm); ve != nil {
			v = ve.Text()
		}
		out[xmpp.Attr(f, "var")] = v
	}
	return out
}

func createRoom(ctx context.Context, t *testing.T, owner *client.Client, rm string, members ...string) {
	t.Helper()
	inner := "<occupants>"
	for _, m := range members {
		inner += "<user affiliation='member'>" + m + "</user>"
	}
	if _, err := owner.IQ(ctx, client.IQ("set", rm, mucQuery(rooms.NSCreate, inner+"</occupants>"))); err != nil {
		t.Fatalf("create %s: %v", rm, err)
	}
}

// burst sends bodies to rm and waits until reader has every one; it
// returns the stanza-ids the reader saw, by body.
func burst(ctx context.Context, t *testing.T, sender, reader *client.Client, rm string, bodies ...string) map[string]string {
	t.Helper()
	for _, b := range bodies {
		if err := sender.Send(ctx, client.Message(rm, "groupchat", b)); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]string{}
	for _, b := range bodies {
		el, err := reader.Expect(ctx, func(el *etree.Element) bool {
			bd := xmpp.Child(el, "body", xmpp.NSClient)
			return el.Tag == "message" && bd != nil && bd.Text() == b && strings.HasPrefix(xmpp.Attr(el, "from"), rm+"/")
		})
		if err != nil {
			t.Fatalf("%s did not get %q: %v", reader.JID(), b, err)
		}
		ids[b] = stanzaID(el)
	}
	return ids
}

// TestPushToOfflineMembers: on both stores, an offline member with a
// XEP-0357 registration gets exactly one notification per burst at its app
// server (a local user on a real WebSocket), and the webhook exactly one
// signed POST naming only the offline member; an online member with a
// registration gets none; the registration survives a restart; disable
// stops the notifications.
func TestPushToOfflineMembers(t *testing.T) {
	for _, backend := range []string{"embedded", "mongodb"} {
		t.Run(backend, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			hookURL, hooks, bad := signedHook(t, nil)
			cfg := testConfig(t)
			if backend == "mongodb" {
				cfg = mongoConfig(t, mongotest.URI(t))
			}
			cfg.Push.XEP0357 = true
			cfg.Push.Interval = duration{time.Hour} // a burst is never longer
			cfg.Push.Webhook.URL, cfg.Push.Webhook.Secret = hookURL, hookSecret
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			e := &pushEnv{t: t, cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			e.start()
			for _, u := range []string{"alice", "bob", "carol", "pusher"} {
				if _, errOut, code := userCmd(t, cfg, "pw\n", "add", "-create-database", u+"@localhost"); code != 0 {
					t.Fatalf("user add %s: %s", u, errOut)
				}
			}
			alice, bob, carol := e.login(ctx, "alice@localhost/a"), e.login(ctx, "bob@localhost/b"), e.login(ctx, "carol@localhost/c")
			pusher := e.login(ctx, "pusher@localhost/app")

			// The account advertises push; bad enables get their errors.
			info, err := carol.IQ(ctx, client.IQ("get", "carol@localhost", client.Query(xmpp.NSDiscoInfo, "")))
			if err != nil || !strings.Contains(xmpp.String(info), push.NS) {
				t.Errorf("account disco#info lacks %s: %v %v", push.NS, err, info)
			}
			for _, tc := range []struct {
				el   *etree.Element
				cond string
			}{
				{enableEl("push.example.net", "n"), "remote-server-not-found"},
				{enableEl("pusher@localhost", ""), "bad-request"},
				{enableEl("not a jid@@", "n"), "jid-malformed"},
			} {
				_, err := carol.IQ(ctx, client.IQ("set", "", tc.el))
				if se, ok := err.(*client.StanzaError); !ok || se.Condition != tc.cond {
					t.Errorf("enable %s: %v, want %s", xmpp.String(tc.el), err, tc.cond)
				}
			}
			// The cap: five registrations, a sixth refused.
			for i := range 4 {
				if _, err := carol.IQ(ctx, client.IQ("set", "", enableEl("pusher@localhost", fmt.Sprint("spare", i)))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := carol.IQ(ctx, client.IQ("set", "", enableEl("pusher@localhost", "carol-phone", "secret", "s3cr3t"))); err != nil {
				t.Fatalf("enable: %v", err)
			}
			if _, err := carol.IQ(ctx, client.IQ("set", "", enableEl("pusher@localhost", "one-too-many"))); err == nil ||
				err.(*client.StanzaError).Condition != "resource-constraint" {
				t.Errorf("sixth registration: %v, want resource-constraint", err)
			}
			for i := range 4 {
				dis := enableEl("pusher@localhost", fmt.Sprint("spare", i))
				dis.Tag = "disable"
				if _, err := carol.IQ(ctx, client.IQ("set", "", dis)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := bob.IQ(ctx, client.IQ("set", "", enableEl("pusher@localhost", "bob-phone"))); err != nil {
				t.Fatal(err)
			}
			e.logout(ctx, carol)

			createRoom(ctx, t, alice, "burst@muclight.localhost", "bob@localhost", "carol@localhost")
			ids := burst(ctx, t, alice, bob, "burst@muclight.localhost", "first", "second", "third", "fourth", "fifth")
			waitMetric(ctx, t, e.a, notifications("xep0357", "suppressed"), 4)
			waitMetric(ctx, t, e.a, notifications("webhook", "sent"), 1)
			waitMetric(ctx, t, e.a, notifications("webhook", "suppressed"), 4)

			got := publishes(ctx, t, pusher, "carol-phone")
			if len(got) != 1 {
				t.Fatalf("carol's app server got %d notifications for a burst of 5, want 1", len(got))
			}
			ps := xmpp.Child(got[0], "pubsub", push.NSPubSub)
			n := xmpp.Child(xmpp.Child(xmpp.Child(ps, "publish", push.NSPubSub), "item", push.NSPubSub), "notification", push.NS)
			f := formFields(xmpp.Child(n, "x", xmpp.NSDataForm))
			if xmpp.Attr(got[0], "type") != "set" || xmpp.Attr(got[0], "from") != "carol@localhost" ||
				f["FORM_TYPE"] != push.FormSummary || f["message-count"] != "1" ||
				f["last-message-sender"] != "burst@muclight.localhost/alice@localhost" || f["last-message-body"] != "first" {
				t.Errorf("notification: %s", xmpp.String(got[0]))
			}
			if po := formFields(xmpp.Child(xmpp.Child(ps, "publish-options", push.NSPubSub), "x", xmpp.NSDataForm)); po["secret"] != "s3cr3t" {
				t.Errorf("publish-options not sent back: %s", xmpp.String(got[0]))
			}
			if got := publishes(ctx, t, pusher, "bob-phone"); len(got) != 0 {
				t.Errorf("bob is online and got %d notifications", len(got))
			}
			if len(hooks) != 1 {
				t.Fatalf("%d webhook requests for one burst, want 1", len(hooks))
			}
			h := <-hooks
			if h.Room != "burst@muclight.localhost" || h.Sender != "alice@localhost" || h.Body == nil || *h.Body != "first" ||
				len(h.Members) != 1 || h.Members[0] != "carol@localhost" || h.ID != ids["first"] || h.Time == "" {
				t.Errorf("webhook request %+v, want carol alone woken by the first message %s", h, ids["first"])
			}
			if bad.Load() != 0 {
				t.Errorf("%d webhook requests failed the signature check", bad.Load())
			}

			// The registration survives a restart.
			alice.Close(ctx)
			bob.Close(ctx)
			pusher.Close(ctx)
			if err := e.a.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			e.start()
			alice, pusher = e.login(ctx, "alice@localhost/a"), e.login(ctx, "pusher@localhost/app")
			createRoom(ctx, t, alice, "later@muclight.localhost", "carol@localhost")
			burst(ctx, t, alice, alice, "later@muclight.localhost", "after the restart")
			waitMetric(ctx, t, e.a, notifications("webhook", "sent"), 1)
			if got := publishes(ctx, t, pusher, "carol-phone"); len(got) != 1 {
				t.Errorf("after a restart carol's app server got %d notifications, want 1", len(got))
			}
			<-hooks

			// Disable stops them; the webhook, which needs no
			// registration, marks when the post was handled.
			carol = e.login(ctx, "carol@localhost/c")
			dis := xmpp.Elem("disable", push.NS)
			dis.CreateAttr("jid", "pusher@localhost")
			if _, err := carol.IQ(ctx, client.IQ("set", "", dis)); err != nil {
				t.Fatal(err)
			}
			e.logout(ctx, carol)
			createRoom(ctx, t, alice, "quiet@muclight.localhost", "carol@localhost")
			burst(ctx, t, alice, alice, "quiet@muclight.localhost", "after disable")
			waitMetric(ctx, t, e.a, notifications("webhook", "sent"), 2)
			if got := publishes(ctx, t, pusher, "carol-phone"); len(got) != 0 {
				t.Errorf("after disable carol's app server got %d notifications", len(got))
			}

			// Deleting an account deletes its registrations.
			bobJID := xmpp.MustParseJID("bob@localhost")
			if regs, err := e.a.store.push.PushRegistrations(ctx, []xmpp.JID{bobJID}); err != nil || len(regs[bobJID]) != 1 {
				t.Fatalf("bob's registration before user del: %v %v", regs, err)
			}
			if _, errOut, code := userCmd(t, cfg, "", "del", "bob@localhost"); code != 0 {
				t.Fatalf("user del: %s", errOut)
			}
			if regs, err := e.a.store.push.PushRegistrations(ctx, []xmpp.JID{bobJID}); err != nil || len(regs) != 0 {
				t.Errorf("bob's registrations after user del: %v %v", regs, err)
			}
		})
	}
}

// TestPushWebhookNeverSlowsFanout: while the webhook endpoint hangs, a
// room's burst is delivered in full to its online member and new
// notifications past the queue are dropped and counted; once the endpoint
// answers, it answers 500, and each notification is retried, then dropped
// and counted.
func TestPushWebhookNeverSlowsFanout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once, releaseOnce sync.Once
	var attempts atomic.Int64
	hookURL, _, bad := signedHook(t, func(w http.ResponseWriter, _ hookRequest) {
		attempts.Add(1)
		once.Do(func() { close(entered) })
		<-release
		http.Error(w, "down", http.StatusInternalServerError)
	})
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	cfg := testConfig(t)
	cfg.Push.Interval = duration{time.Hour}
	cfg.Push.Webhook = WebhookConfig{URL: hookURL, Secret: hookSecret, Timeout: duration{time.Minute}, MaxQueue: 1,
		MaxRetries: 2, RetryBackoff: duration{time.Millisecond}, Workers: 1}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	e := &pushEnv{t: t, cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.start()
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, errOut, code := userCmd(t, cfg, "pw\n", "add", "-create-database", u+"@localhost"); code != 0 {
			t.Fatalf("user add %s: %s", u, errOut)
		}
	}
	alice, bob := e.login(ctx, "alice@localhost/a"), e.login(ctx, "bob@localhost/b")
	rm := "busy@muclight.localhost"
	createRoom(ctx, t, alice, rm, "bob@localhost", "carol@localhost")
	burst(ctx, t, alice, bob, rm, "wake carol")
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the webhook was never called")
	}
	// The endpoint now hangs on the first request. The rest of the burst
	// still reaches bob, every message.
	var bodies []string
	for i := range 60 {
		bodies = append(bodies, fmt.Sprint("while the hook hangs ", i))
	}
	burst(ctx, t, alice, bob, rm, bodies...)
	// Two more rooms: one notification waits in the queue (bound 1), the
	// next is dropped.
	for _, other := range []string{"second@muclight.localhost", "third@muclight.localhost"} {
		createRoom(ctx, t, alice, other, "carol@localhost")
		burst(ctx, t, alice, alice, other, "wake carol in "+other)
	}
	waitMetric(ctx, t, e.a, `xmppws_push_dropped_total{kind="webhook",reason="queue_full"}`, 1)
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d webhook attempts while the first hangs, want 1", n)
	}
	releaseOnce.Do(func() { close(release) })
	// Two notifications, three attempts each, all 500: both dropped.
	waitMetric(ctx, t, e.a, `xmppws_push_dropped_total{kind="webhook",reason="retries"}`, 2)
	waitMetric(ctx, t, e.a, notifications("webhook", "failed"), 6)
	if n := attempts.Load(); n != 6 {
		t.Errorf("%d webhook attempts, want 3 for each of 2 notifications", n)
	}
	if v := metricValue(t, e.a, "xmppws_push_webhook_retries_total"); v != 4 {
		t.Errorf("retries counted %v, want 4", v)
	}
	if v := metricValue(t, e.a, notifications("webhook", "suppressed")); v != 60 {
		t.Errorf("suppressed %v, want the 60 later messages of the burst", v)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests failed the signature check", bad.Load())
	}
}

// TestPushInCluster: the room's owner node decides with the cluster's
// session directory, so a member online only on another node gets nothing,
// an offline one gets one notification per burst, and it reaches an app
// server whose session is on another node.
func TestPushInCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a two-node cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startCluster(t, "[push]\nxep0357 = true\ninterval = \"1h\"\n", "n1", "n2")
	n1, n2 := nodes[0], nodes[1]
	rm := roomsOwnedBy(nodes)["n1"]
	alice := clusterLogin(ctx, t, nodes, n1, "alice@localhost/a")
	bob := clusterLogin(ctx, t, nodes, n2, "bob@localhost/b")
	kate := clusterLogin(ctx, t, nodes, n2, "kate@localhost/k")
	mike := clusterLogin(ctx, t, nodes, n2, "mike@localhost/app") // the app server
	for c, node := range map[*client.Client]string{bob: "bob-phone", kate: "kate-phone"} {
		if _, err := c.IQ(ctx, client.IQ("set", "", enableEl("mike@localhost", node))); err != nil {
			t.Fatal(err)
		}
	}
	kate.Close(ctx)
	waitFor(ctx, t, "kate offline everywhere", func() bool {
		return !n1.app.ws.Router().OnlineAnywhere(xmpp.MustParseJID("kate@localhost"))
	})
	createRoom(ctx, t, alice, rm, "bob@localhost", "kate@localhost")
	burst(ctx, t, alice, bob, rm, "one", "two", "three")
	waitMetric(ctx, t, n1.app, notifications("xep0357", "suppressed"), 2)
	waitMetric(ctx, t, n1.app, notifications("xep0357", "sent"), 1)
	waitMetric(ctx, t, n1.app, "xmppws_push_members_online_total", 3) // bob, three times
	el, err := mike.Expect(ctx, func(el *etree.Element) bool {
		pub := xmpp.Child(xmpp.Child(el, "pubsub", push.NSPubSub), "publish", push.NSPubSub)
		return el.Tag == "iq" && pub != nil
	})
	if err != nil {
		t.Fatalf("the app server on the other node got no notification: %v", err)
	}
	pub := xmpp.Child(xmpp.Child(el, "pubsub", push.NSPubSub), "publish", push.NSPubSub)
	if xmpp.Attr(pub, "node") != "kate-phone" || xmpp.Attr(el, "from") != "kate@localhost" {
		t.Errorf("notification %s, want kate's", xmpp.String(el))
	}
	if v := metricValue(t, n2.app, notifications("xep0357", "sent")); v != 0 {
		t.Errorf("the node that does not own the room sent %v notifications", v)
	}
}

// TestPushConfigRejected: each invalid [push] value stops the server at
// start with a message naming its key.
func TestPushConfigRejected(t *testing.T) {
	for _, tc := range []struct{ toml, key string }{
		{"[push]\ninterval = '0s'", "push.interval"},
		{"[push]\nmax_registrations = 0", "push.max_registrations"},
		{"[push]\nqueue_len = 0", "push.queue_len"},
		{"[push]\nmax_throttle_entries = 0", "push.max_throttle_entries"},
		{"[push.webhook]\nurl = 'ftp://x/y'\nsecret = 's'", "push.webhook.url"},
		{"[push.webhook]\nurl = '/hook'\nsecret = 's'", "push.webhook.url"},
		{"[push.webhook]\nurl = 'https://app.example.com/hook'", "push.webhook.secret"},
		{"[push.webhook]\ntimeout = '0s'", "push.webhook.timeout"},
		{"[push.webhook]\nmax_queue = 0", "push.webhook.max_queue"},
		{"[push.webhook]\nmax_retries = -1", "push.webhook.max_retries"},
		{"[push.webhook]\nretry_backoff = '0s'", "push.webhook.retry_backoff"},
		{"[push.webhook]\nworkers = 0", "push.webhook.workers"},
		{"[push]\nxep0357 = 'yes'", "xep0357"},
	} {
		_, err := loadConfig(writeTemp(t, tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
	}
	// A secret never appears in what the server says about its config.
	cfg, err := loadConfig(writeTemp(t, "[push.webhook]\nurl = 'https://app.example.com/hook?token=t0ken'\nsecret = 'very-secret-value'"))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cfg.HTTP.Address, cfg.Storage.DataDir = "127.0.0.1:0", t.TempDir()
	a, err := start(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	a.Shutdown(context.Background())
	if strings.Contains(logs.String(), "very-secret-value") || strings.Contains(logs.String(), "t0ken") {
		t.Errorf("the webhook's secret or URL token was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "name=push") {
		t.Errorf("the push module's start line is missing:\n%s", logs.String())
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

var mucQuery = client.Query

// exerciseStore drives every store function through the protocol and the
// admin commands of a running server.
func exerciseStore(t *testing.T, cfg Config, a *app) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, e, c := userCmd(t, cfg, "pw\n", "add", "-create-database", u+"@localhost"); c != 0 {
			t.Fatalf("add %s: %s", u, e)
		}
	}
	url := "ws://" + a.Addr() + cfg.WebSocket.Path
	alice, err := client.Login(ctx, url, xmpp.MustParseJID("alice@localhost/m"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.CloseNow()
	room := "metrics@muclight.localhost"
	must := func(el *etree.Element, err error) *etree.Element {
		t.Helper()
		if err != nil {
			t.Fatalf("%v: %v", el, err)
		}
		return el
	}
	// create_room, get_config (load), get_blocking
	must(alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))))
	// set_config, modify_aff_users, get_aff_users (groupchat rereads occupants without cache_affs)
	must(alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSConfiguration, "<subject>s</subject>"))))
	must(alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSAffiliations, "<user affiliation='member'>carol@localhost</user>"))))
	alice.Send(ctx, client.Message(room, "groupchat", "hi"))
	// get_user_rooms, room_exists, set_blocking
	must(alice.IQ(ctx, client.IQ("get", "muclight.localhost", xmpp.Elem("query", xmpp.NSDiscoItems))))
	must(alice.IQ(ctx, client.IQ("get", room, xmpp.Elem("query", xmpp.NSDiscoInfo))))
	must(alice.IQ(ctx, client.IQ("set", "muclight.localhost", mucQuery(rooms.NSBlocking, "<user action='deny'>carol@localhost</user>"))))
	// destroy_room
	must(alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSDestroy, ""))))
	// remove_user, remove_domain
	if _, e, c := userCmd(t, cfg, "", "del", "bob@localhost"); c != 0 {
		t.Fatalf("del: %s", e)
	}
	var out, errb strings.Builder
	if c := domainCommand(cfg, []string{"purge", "localhost"}, &out, &errb); c != 0 {
		t.Fatalf("purge: %s", errb.String())
	}
}

func scrape(t *testing.T, a *app) string {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkBackendMetrics asserts that every store function has a count and a
// time series for the backend, labelled with the served domain.
func checkBackendMetrics(t *testing.T, text, backend string) {
	t.Helper()
	for _, fn := range rooms.StoreFunctions {
		for _, series := range []string{
			"mod_muc_light_db_" + backend + `_count{function="` + fn + `",host_type="localhost"}`,
			"mod_muc_light_db_" + backend + `_time_count{function="` + fn + `",host_type="localhost"}`,
		} {
			if !strings.Contains(text, series) {
				t.Errorf("/metrics lacks %s", series)
			}
		}
	}
}

func TestBackendMetricsEmbedded(t *testing.T) {
	cfg := testConfig(t)
	cfg.rooms.RoomsPerUser = 10 // the store checks it in create_room and modify_aff_users
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	exerciseStore(t, cfg, a)
	checkBackendMetrics(t, scrape(t, a), "embedded")
}

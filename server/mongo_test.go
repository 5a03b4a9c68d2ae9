package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/mongo/mongotest"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

var dbSeq atomic.Int64

func mongoConfig(t *testing.T, uri string) Config {
	t.Helper()
	cfg := defaultConfig()
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Storage.DataDir = filepath.Join(t.TempDir(), "not-yet") // the server creates it
	cfg.Storage.Backend = "mongodb"
	cfg.Storage.MongoDB.URI = uri
	cfg.Storage.MongoDB.Database = fmt.Sprintf("srv%d_%d", os.Getpid(), dbSeq.Add(1))
	cfg.Storage.MongoDB.OpTimeout = duration{2 * time.Second}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBackendMetricsMongoDB(t *testing.T) {
	cfg := mongoConfig(t, mongotest.URI(t))
	cfg.rooms.RoomsPerUser = 10
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	exerciseStore(t, cfg, a)
	text := scrape(t, a)
	checkBackendMetrics(t, text, "mongodb")
	if strings.Contains(text, "mod_muc_light_db_embedded_count") {
		t.Error("embedded backend metrics with the mongodb backend configured")
	}
}

// TestDatabaseOutage stops the database under a running server: requests
// get internal-server-error (logged and counted), nothing hangs, and once
// the database is back the server serves again with every acknowledged
// change intact.
func TestDatabaseOutage(t *testing.T) {
	if os.Getenv("MONGODB_URI") != "" {
		t.Skip("needs the embedded FerretDB, which the test can stop and restart")
	}
	f := mongotest.Start(t, t.TempDir(), "127.0.0.1:0")
	t.Cleanup(f.Stop)
	cfg := mongoConfig(t, f.URI())
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	for _, u := range []string{"alice", "bob"} {
		if _, e, c := userCmd(t, cfg, "pw\n", "add", "-create-database", u+"@localhost"); c != 0 {
			t.Fatalf("add %s: %s", u, e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alice, err := client.Login(ctx, "ws://"+a.Addr()+cfg.WebSocket.Path, xmpp.MustParseJID("alice@localhost/o"), "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.CloseNow()
	room := "outage@muclight.localhost"
	subject := func(s string) error {
		_, err := alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSConfiguration, "<subject>"+s+"</subject>")))
		return err
	}
	if _, err := alice.IQ(ctx, client.IQ("set", room, mucQuery(rooms.NSCreate, "<occupants><user affiliation='member'>bob@localhost</user></occupants>"))); err != nil {
		t.Fatal(err)
	}
	if err := subject("before"); err != nil {
		t.Fatal(err)
	}

	f.Stop()
	err = subject("during")
	var se *client.StanzaError
	if !errors.As(err, &se) || se.Condition != "internal-server-error" {
		t.Fatalf("with the database down: %v, want internal-server-error", err)
	}
	m := client.Message(room, "groupchat", "anyone?")
	m.CreateAttr("id", "down")
	alice.Send(ctx, m)
	el, err := alice.Expect(ctx, func(el *etree.Element) bool { return el.SelectAttrValue("id", "") == "down" })
	if err != nil || client.ErrorOf(el) == nil || client.ErrorOf(el).Condition != "internal-server-error" {
		t.Fatalf("groupchat with the database down: %v %v", el, err)
	}
	text := scrape(t, a)
	for _, want := range []string{`mod_muc_light_db_mongodb_errors_total{function="set_config",host_type="localhost"}`, "muc_light_internal_errors_total"} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	f.Restart()
	for {
		err := subject("after")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server did not recover: %v", err)
		}
	}
	cfgRes, err := alice.IQ(ctx, client.IQ("get", room, mucQuery(rooms.NSConfiguration, "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := xmpp.String(cfgRes); !strings.Contains(got, "<subject>after</subject>") {
		t.Errorf("config after recovery: %s", got)
	}
	affs, err := alice.IQ(ctx, client.IQ("get", room, mucQuery(rooms.NSAffiliations, "")))
	if err != nil || !strings.Contains(xmpp.String(affs), ">bob@localhost</user>") {
		t.Errorf("occupants after recovery: %v %v", affs, err)
	}
}

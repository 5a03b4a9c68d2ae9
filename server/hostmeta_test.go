package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
)

// TestHostMetaAlternateURLs: http.alternate_urls reaches host-meta, after
// the URL derived from the request, in the order written.
func TestHostMetaAlternateURLs(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.AlternateURLs = []string{"ws://127.0.0.1:5301/xmpp-websocket", "wss://c.example.com/xmpp-websocket"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	a, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	resp, err := http.Get("http://" + a.Addr() + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jrd struct {
		Links []struct{ Href string } `json:"links"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jrd); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range jrd.Links {
		got = append(got, l.Href)
	}
	want := append([]string{"ws://" + a.Addr() + cfg.WebSocket.Path}, cfg.HTTP.AlternateURLs...)
	if !slices.Equal(got, want) {
		t.Errorf("host-meta.json links %q, want %q", got, want)
	}
}

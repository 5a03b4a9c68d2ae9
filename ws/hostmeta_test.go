package ws_test

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wschat/xmppws/ws"
)

// hostMetaLinks fetches both forms of host-meta from the endpoint at wsURL
// and returns the WebSocket links of each, in document order.
func hostMetaLinks(t *testing.T, wsURL string) (xrd, jrd []string) {
	t.Helper()
	base := strings.TrimSuffix(strings.Replace(wsURL, "ws://", "http://", 1), "/xmpp-websocket")
	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const rel = "urn:xmpp:alt-connections:websocket"
	var x struct {
		Links []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"Link"`
	}
	if err := xml.Unmarshal(get("/.well-known/host-meta"), &x); err != nil {
		t.Fatalf("XRD: %v", err)
	}
	for _, l := range x.Links {
		if l.Rel == rel {
			xrd = append(xrd, l.Href)
		}
	}
	var j struct {
		Links []struct{ Rel, Href string } `json:"links"`
	}
	if err := json.Unmarshal(get("/.well-known/host-meta.json"), &j); err != nil {
		t.Fatalf("JRD: %v", err)
	}
	for _, l := range j.Links {
		if l.Rel == rel {
			jrd = append(jrd, l.Href)
		}
	}
	return xrd, jrd
}

// TestHostMetaAlternates: the node's own URL (public_url, or derived from
// the request) comes first, then the alternates in their order, in both
// forms; an alternate equal to the main URL is not listed twice.
func TestHostMetaAlternates(t *testing.T) {
	alts := []string{"wss://b.example.com/xmpp-websocket", "ws://127.0.0.1:5299/xmpp-websocket?node=c&x='y'"}
	t.Run("derived", func(t *testing.T) {
		e := newEnv(t, func(c *ws.Config) { c.AlternateURLs = alts })
		want := append([]string{e.url}, alts...)
		xrd, jrd := hostMetaLinks(t, e.url)
		if !slices.Equal(xrd, want) || !slices.Equal(jrd, want) {
			t.Errorf("XRD %q\nJRD %q\nwant %q", xrd, jrd, want)
		}
	})
	t.Run("public_url", func(t *testing.T) {
		const public = "wss://a.example.com/xmpp-websocket"
		e := newEnv(t, func(c *ws.Config) {
			c.PublicURL = public
			c.AlternateURLs = append([]string{public}, alts...) // the same list on every node
		})
		want := append([]string{public}, alts...)
		xrd, jrd := hostMetaLinks(t, e.url)
		if !slices.Equal(xrd, want) || !slices.Equal(jrd, want) {
			t.Errorf("XRD %q\nJRD %q\nwant %q", xrd, jrd, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		e := newEnv(t, nil)
		xrd, jrd := hostMetaLinks(t, e.url)
		if want := []string{e.url}; !slices.Equal(xrd, want) || !slices.Equal(jrd, want) {
			t.Errorf("XRD %q JRD %q, want only %q", xrd, jrd, e.url)
		}
	})
}

package ws

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// HostMeta serves XEP-0156 discovery: /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD). Each lists, with rel
// urn:xmpp:alt-connections:websocket, this node's WebSocket URL first and
// then Config.AlternateURLs in order, which clients try when the first
// fails. Browsers fetch it cross-origin, so it carries
// Access-Control-Allow-Origin: *.
func (s *Server) HostMeta(jsonForm bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		main := s.cfg.PublicURL
		if main == "" {
			scheme := "ws"
			if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
				scheme = "wss"
			}
			main = scheme + "://" + r.Host + s.cfg.Path
		}
		urls := []string{main}
		for _, u := range s.cfg.AlternateURLs {
			if u != main {
				urls = append(urls, u)
			}
		}
		const rel = "urn:xmpp:alt-connections:websocket"
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if jsonForm {
			links := make([]map[string]string, len(urls))
			for i, u := range urls {
				links[i] = map[string]string{"rel": rel, "href": u}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"links": links})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		var b strings.Builder
		b.WriteString(xml.Header)
		b.WriteString("<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
		for _, u := range urls {
			fmt.Fprintf(&b, "  <Link rel='%s' href='%s'/>\n", rel, attrEscaper.Replace(u))
		}
		b.WriteString("</XRD>\n")
		w.Write([]byte(b.String()))
	})
}

var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;")

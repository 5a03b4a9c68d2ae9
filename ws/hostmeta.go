package ws

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// HostMeta serves XEP-0156 discovery: /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD), each with one link whose rel is
// urn:xmpp:alt-connections:websocket. Browsers fetch it cross-origin, so it
// carries Access-Control-Allow-Origin: *.
func (s *Server) HostMeta(jsonForm bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		url := s.cfg.PublicURL
		if url == "" {
			scheme := "ws"
			if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
				scheme = "wss"
			}
			url = scheme + "://" + r.Host + s.cfg.Path
		}
		const rel = "urn:xmpp:alt-connections:websocket"
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if jsonForm {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"links": []map[string]string{{"rel": rel, "href": url}},
			})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml")
		fmt.Fprintf(w, "%s<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='%s' href='%s'/>\n</XRD>\n",
			xml.Header, rel, attrEscaper.Replace(url))
	})
}

var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;")

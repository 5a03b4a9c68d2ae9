// Package frontend is the browser client served at "/": static HTML, CSS
// and JavaScript modules embedded in the binary, which speak XMPP to the
// server's WebSocket endpoint like any other client.
//
// It must never hold server logic: nothing here may read the configuration,
// the stores or the sessions, and the server must not depend on anything
// the pages do. It only hands out files.
package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

//go:embed index.html app.js xmpp.js muclight.js style.css
var files embed.FS

// contentTypes are fixed here rather than taken from the system's MIME
// table, which may lack or misname .js on some hosts.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// csp lets the pages load only their own files and open WebSockets to any
// server (the sign-in form accepts another endpoint).
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the client: index.html at "/", the other files under their
// own names, anything else 404. Responses carry Cache-Control: no-cache with
// an ETag, so a browser revalidates and picks up a new build at once.
func Handler() http.Handler {
	assets := make(map[string]asset)
	entries, err := files.ReadDir(".")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		assets["/"+e.Name()] = asset{body: b, ctype: contentTypes[path.Ext(e.Name())], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	assets["/"] = assets["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if a.ctype == contentTypes[".html"] {
			h.Set("Content-Security-Policy", csp)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

package room

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The import rules of docs/07_room_core.md, read from the source with
// go/build (no go command, no network): the core and the packages below it
// speak no XML and know no dialect; codecs reach the store only through
// the core.

const module = "github.com/wschat/xmppws/"

const etree = "github.com/beevik/etree"

var (
	codecs   = []string{module + "muclight", module + "muc", module + "mam"}
	above    = []string{module + "rooms", module + "ws", module + "server"}
	backends = []string{module + "boltstore", module + "mongo"}
)

// imports is the direct, non-test imports of the module package rel
// ("room", "archive", …), read from its directory.
func imports(t *testing.T, rel string) []string {
	t.Helper()
	p, err := build.ImportDir(filepath.Join("..", filepath.FromSlash(rel)), 0)
	if err != nil {
		t.Fatalf("reading package %s: %v", rel, err)
	}
	if len(p.GoFiles) == 0 {
		t.Fatalf("package %s has no Go files", rel)
	}
	return p.Imports
}

// closure is rel and every module package it imports, directly or not.
func closure(t *testing.T, rel string) map[string][]string {
	t.Helper()
	seen := map[string][]string{} // package → how it is reached
	var walk func(rel string, via []string)
	walk = func(rel string, via []string) {
		if _, ok := seen[rel]; ok {
			return
		}
		seen[rel] = via
		for _, imp := range imports(t, rel) {
			if r, ok := strings.CutPrefix(imp, module); ok {
				walk(r, append(slices.Clone(via), rel))
			}
		}
	}
	walk(rel, nil)
	return seen
}

// forbidden returns the imports of rel that are in banned.
func forbidden(t *testing.T, rel string, banned []string) []string {
	var out []string
	for _, imp := range imports(t, rel) {
		if slices.Contains(banned, imp) {
			out = append(out, imp)
		}
	}
	return out
}

func TestCoreImports(t *testing.T) {
	banned := slices.Concat([]string{etree}, codecs, above, backends)
	// room is the data the codecs share; roomhub, the actors, sits on it.
	for _, core := range []string{"room", "roomhub"} {
		for _, imp := range forbidden(t, core, banned) {
			t.Errorf("%s imports %s: the core must not speak XML or know a codec, the façade or a backend", core, imp)
		}
		// Nothing the core reaches may pull a codec or the layers above back in.
		for pkg, via := range closure(t, core) {
			if slices.Contains(banned[1:], module+pkg) {
				t.Errorf("%s reaches %s through %v", core, pkg, via)
			}
		}
	}
	// The data knows nothing of the actors.
	if slices.Contains(imports(t, "room"), module+"roomhub") {
		t.Error("room imports roomhub: the codecs would depend on the actors")
	}
}

func TestBelowCoreImports(t *testing.T) {
	banned := slices.Concat([]string{etree, module + "room"}, codecs, above, backends)
	for _, pkg := range []string{"archive", "limits", "roomstore"} {
		for _, imp := range forbidden(t, pkg, banned) {
			t.Errorf("%s imports %s: it sits below the core and must not speak XML, know a codec or a backend", pkg, imp)
		}
	}
}

func TestCodecImports(t *testing.T) {
	banned := slices.Concat([]string{module + "roomstore", module + "roomhub"}, above, backends)
	for _, pkg := range []string{"muclight", "muc", "mam"} {
		for _, imp := range forbidden(t, pkg, banned) {
			t.Errorf("%s imports %s: a codec decodes and renders; it reaches neither the store nor the actors", pkg, imp)
		}
	}
}

// TestImportRulesSeeImports keeps the rules from passing by reading
// nothing: the façade does import etree and the codecs.
func TestImportRulesSeeImports(t *testing.T) {
	got := forbidden(t, "rooms", slices.Concat([]string{etree}, codecs))
	if len(got) != 1+len(codecs) {
		t.Fatalf("rooms' imports of etree and the codecs read as %v; the rules above may be reading nothing", got)
	}
	if c := closure(t, "muc"); c["room"] == nil || c["muclight"] == nil {
		t.Fatalf("closure of muc misses room or muclight: %v", c)
	}
}

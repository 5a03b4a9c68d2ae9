package main

import (
	"encoding"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/wschat/xmppws/rooms"
)

// exampleConfig is the repository's example configuration.
const exampleConfig = "../server.example.toml"

// notYetInStruct lists example keys that the configuration struct does not
// have yet: they are left out of the loader's input and of the "every example
// key exists" check, and nowhere else.
var notYetInStruct = map[string]bool{}

// commentedSetting is a commented-out setting of the example: "#[" or
// "#key =" with no space after the hash (prose is "# ").
var commentedSetting = regexp.MustCompile(`^#(\[|[a-z_]+ =)`)

// readExample returns the example as written and with every commented-out
// setting uncommented, each without the keys in notYetInStruct.
func readExample(t *testing.T) (asIs, uncommented string) {
	t.Helper()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var plain, full []string
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		on := line
		if commentedSetting.MatchString(line) {
			on = line[1:]
		}
		if strings.HasPrefix(on, "[") {
			section = strings.Trim(strings.Fields(on)[0], "[]")
		}
		if k, _, ok := strings.Cut(on, "="); ok && !strings.HasPrefix(on, "#") && notYetInStruct[section+"."+strings.TrimSpace(k)] {
			continue
		}
		plain, full = append(plain, line), append(full, on)
	}
	return strings.Join(plain, "\n"), strings.Join(full, "\n")
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExampleConfigLoads: the example, as written and with its optional
// sections uncommented, passes the server's own loader and validation.
func TestExampleConfigLoads(t *testing.T) {
	asIs, full := readExample(t)
	if _, err := loadConfig(writeTemp(t, asIs)); err != nil {
		t.Errorf("as written: %v", err)
	}
	cfg, err := loadConfig(writeTemp(t, full))
	if err != nil {
		t.Fatalf("uncommented: %v", err)
	}
	// The commented sections, once present, do what their comments say.
	if !cfg.rooms.CacheAffs || cfg.rooms.CacheAffsTTL != defaultCacheTTL*time.Second {
		t.Errorf("cache_affs uncommented: %v %v, want on with the default time_to_live", cfg.rooms.CacheAffs, cfg.rooms.CacheAffsTTL)
	}
	schema := append(rooms.DefaultSchema(),
		rooms.SchemaField{Name: "max_guests", InternalKey: "max_guests", Type: rooms.IntegerField, Default: "5"},
		rooms.SchemaField{Name: "score", InternalKey: "score", Type: rooms.FloatField, Default: "0.5"})
	if !reflect.DeepEqual(cfg.rooms.Schema, schema) {
		t.Errorf("config_schema uncommented is %+v, want the default schema written out and the two examples", cfg.rooms.Schema)
	}
	want := rooms.DefaultLimits()
	got := cfg.limits
	if !got.Enabled || len(got.Rooms) != 1 {
		t.Errorf("mod_muc_limits uncommented: enabled %v, %d room overrides", got.Enabled, len(got.Rooms))
	}
	got.Rooms, got.ExemptAffiliations = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mod_muc_limits uncommented: %+v, want the defaults %+v", got, want)
	}
}

// TestExampleConfigIsDefault: every value the example sets uncommented is
// the default, so the file documents the defaults and nothing else.
func TestExampleConfigIsDefault(t *testing.T) {
	asIs, _ := readExample(t)
	cfg := defaultConfig()
	if err := decodeConfig(asIs, &cfg); err != nil {
		t.Fatal(err)
	}
	nilEmptySlices(reflect.ValueOf(&cfg))
	for _, d := range differences(reflect.ValueOf(cfg), reflect.ValueOf(defaultConfig()), "") {
		t.Errorf("the example differs from defaultConfig(): %s", d)
	}
}

// differences lists the exported fields (by Go path) where a and b differ.
func differences(a, b reflect.Value, path string) []string {
	if a.Kind() == reflect.Struct && !leaf(a.Type()) {
		var out []string
		for i := range a.NumField() {
			if f := a.Type().Field(i); f.IsExported() {
				out = append(out, differences(a.Field(i), b.Field(i), path+"."+f.Name)...)
			}
		}
		return out
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return []string{fmt.Sprintf("%s is %v, the default %v", path, a.Interface(), b.Interface())}
	}
	return nil
}

// TestExampleConfigListsEveryKey walks the configuration struct by its toml
// tags and the example's keys (uncommented): each set must hold the other,
// so a new option cannot be added without its line in the example.
func TestExampleConfigListsEveryKey(t *testing.T) {
	want := map[string]bool{}
	structKeys(reflect.TypeFor[Config](), "", want)
	for k := range notYetInStruct {
		want[k] = true // the example has them; the struct gets them at merge
	}
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var full []string
	for _, line := range strings.Split(string(b), "\n") {
		if commentedSetting.MatchString(line) {
			line = line[1:]
		}
		full = append(full, line)
	}
	var doc map[string]any
	if _, err := toml.Decode(strings.Join(full, "\n"), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	exampleKeys(doc, reflect.TypeFor[Config](), "", got)
	for _, k := range sortedKeys(want) {
		if !got[k] {
			t.Errorf("the example lacks %s", k)
		}
	}
	for _, k := range sortedKeys(got) {
		if !want[k] {
			t.Errorf("the example has %s, which the configuration struct does not", k)
		}
	}
	if len(want) < 60 {
		t.Errorf("only %d keys found in the struct: the walk is broken", len(want))
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
var tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()

// leaf reports whether values of t are written as one TOML value.
func leaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(tomlUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return leaf(t.Elem())
	case reflect.Slice:
		return leaf(t.Elem())
	case reflect.Struct, reflect.Map:
		return false
	}
	return true
}

// tableOf returns the struct type that a table-valued t holds, and whether
// its keys are free (a map: written "*").
func tableOf(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map {
		e, _ := tableOf(t.Elem())
		return e, true
	}
	return t, false
}

func tomlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name != "" && f.IsExported() {
			fields[name] = f.Type
		}
	}
	return fields
}

func structKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for name, ft := range tomlFields(t) {
		if leaf(ft) {
			keys[prefix+name] = true
			continue
		}
		st, free := tableOf(ft)
		p := prefix + name + "."
		if free {
			p += "*."
		}
		structKeys(st, p, keys)
	}
}

func exampleKeys(doc map[string]any, t reflect.Type, prefix string, keys map[string]bool) {
	fields := map[string]reflect.Type{}
	if t != nil {
		fields = tomlFields(t)
	}
	for name, v := range doc {
		ft, known := fields[name]
		var st reflect.Type
		free := false
		if known && !leaf(ft) {
			st, free = tableOf(ft)
		}
		switch v := v.(type) {
		case map[string]any:
			if free {
				for _, sub := range v {
					if m, ok := sub.(map[string]any); ok {
						exampleKeys(m, st, prefix+name+".*.", keys)
					}
				}
				continue
			}
			exampleKeys(v, st, prefix+name+".", keys)
		case []map[string]any:
			for _, m := range v {
				exampleKeys(m, st, prefix+name+".", keys)
			}
		default:
			keys[prefix+name] = true
		}
	}
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// nilEmptySlices sets every empty slice reachable through v's exported
// fields to nil: "key = []" in TOML is the default's nil slice.
func nilEmptySlices(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			nilEmptySlices(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				nilEmptySlices(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 && !v.IsNil() {
			v.SetZero()
		}
		for i := range v.Len() {
			nilEmptySlices(v.Index(i))
		}
	}
}

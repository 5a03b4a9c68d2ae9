package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wschat/xmppws/rooms"
)

func loadTOML(t *testing.T, text string) (Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadConfig(path)
}

func TestMucLightDefaults(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.rooms
	d := rooms.DefaultOptions()
	if o.Host != "muclight.@HOST@" || !o.Blocking || o.RoomsPerPage != 10 || o.RoomsPerUser != 0 || o.MaxOccupants != d.MaxOccupants ||
		o.CreateRate != d.CreateRate || o.CreateBurst != d.CreateBurst || o.MailboxWait != d.MailboxWait || o.MaxConfigValueSize != d.MaxConfigValueSize ||
		o.EqualOccupants || o.AllCanConfigure || o.AllCanInvite || o.RoomsInRosters || o.CacheAffs || len(o.Schema) != len(d.Schema) {
		t.Errorf("defaults: %+v", o)
	}
	if o.ServiceDomain("example.com") != "muclight.example.com" {
		t.Errorf("@HOST@ expansion: %s", o.ServiceDomain("example.com"))
	}
}

func TestMucLightOptions(t *testing.T) {
	cfg, err := loadTOML(t, `
[modules.mod_muc_light]
host = "rooms.@HOST@"
equal_occupants = true
rooms_per_user = 5
blocking = false
all_can_configure = true
all_can_invite = true
max_occupants = 50
rooms_per_page = "infinity"
rooms_in_rosters = true
[modules.mod_muc_light.cache_affs]
time_to_live = 30
[[modules.mod_muc_light.config_schema]]
field = "roomname"
string_value = "Chat"
[[modules.mod_muc_light.config_schema]]
field = "display-lines"
integer_value = 30
internal_key = "display_lines"
[[modules.mod_muc_light.config_schema]]
field = "zoom"
float_value = 1.5
`)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.rooms
	want := rooms.Schema{
		{Name: "roomname", InternalKey: "roomname", Type: rooms.StringField, Default: "Chat"},
		{Name: "display-lines", InternalKey: "display_lines", Type: rooms.IntegerField, Default: "30"},
		{Name: "zoom", InternalKey: "zoom", Type: rooms.FloatField, Default: "1.5"},
	}
	if o.Host != "rooms.@HOST@" || !o.EqualOccupants || o.RoomsPerUser != 5 || o.Blocking || !o.AllCanConfigure ||
		!o.AllCanInvite || o.MaxOccupants != 50 || o.RoomsPerPage != 0 || !o.RoomsInRosters || !o.CacheAffs || o.CacheAffsTTL != 30*time.Second {
		t.Errorf("options: %+v", o)
	}
	if len(o.Schema) != len(want) {
		t.Fatalf("schema %+v", o.Schema)
	}
	for i := range want {
		if o.Schema[i] != want[i] {
			t.Errorf("schema[%d] = %+v, want %+v", i, o.Schema[i], want[i])
		}
	}
}

func TestMucLightBadOptions(t *testing.T) {
	const sec = "[modules.mod_muc_light]\n"
	for _, tc := range []struct{ toml, key string }{
		{sec + "rooms_per_user = 0", "rooms_per_user"},
		{sec + "rooms_per_user = 'lots'", "rooms_per_user"},
		{sec + "max_occupants = -3", "max_occupants"},
		{sec + "create_rate = -1", "create_rate"},
		{sec + "create_burst = 0", "create_burst"},
		{sec + "mailbox_wait = '0s'", "mailbox_wait"},
		{sec + "mailbox_wait = 'soon'", "mailbox_wait"},
		{sec + "max_config_value_size = 0", "max_config_value_size"},
		{"[modules.mod_mam]\nmax_mam_queries = 0", "max_mam_queries"},
		{"[modules.mod_mam]\nmax_mam_queries_per_room = 100", "max_mam_queries_per_room"},
		{sec + "rooms_per_page = 'all'", "rooms_per_page"},
		{sec + "backend = 'mnesia'", "backend"},
		{sec + "blocking = 'yes'", "blocking"},
		{sec + "host = ''", "host"},
		{sec + "colour = 'red'", "colour"},
		{sec + "[modules.mod_muc_light.cache_affs]\ntime_to_live = -1", "time_to_live"},
		{sec + "[modules.mod_muc_light.cache_affs]\nsize = 10", "size"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'\nstring_value = 'x'\ninteger_value = 1", "config_schema[0]"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'", "config_schema[0]"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = ''\nstring_value = 'x'", "config_schema[0].field"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'version'\nstring_value = 'x'", "config_schema[0].field"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'\nstring_value = 'x'\n[[modules.mod_muc_light.config_schema]]\nfield = 'a'\nstring_value = 'y'", "config_schema[1].field"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'\nstring_value = 'x'\nkind = 'y'", "kind"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'\nboolean_value = true", "boolean_value"},
		{sec + "[[modules.mod_muc_light.config_schema]]\nfield = 'a'\ninteger_value = 'x'", "integer_value"},
	} {
		_, err := loadTOML(t, tc.toml)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.toml, err, tc.key)
		}
	}
}

func TestMucLimitsOptions(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.limits.Enabled {
		t.Error("limiter on without its section")
	}
	cfg, err = loadTOML(t, "[modules.mod_muc_limits]\n")
	if err != nil {
		t.Fatal(err)
	}
	d := rooms.DefaultLimits()
	if l := cfg.limits; !l.Enabled || l.EventRate != d.EventRate || l.BurstFactor != d.BurstFactor || l.MaxNickLength != 23 ||
		l.MaxCharCount != 5664 || l.MaxLineCount != 23 || l.BaseCost != 1 || l.LineCountMultiplier != 0.1 {
		t.Errorf("defaults with the section present: %+v", l)
	}
	cfg, err = loadTOML(t, `
[modules.mod_muc_limits]
muc_event_rate = 2.0
muc_burst_factor = 3.0
muc_max_char_count = 100
exempt_affiliations = ["owner"]
[modules.mod_muc_limits.rooms."lobby@muclight.localhost"]
muc_event_rate = 20.0
`)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.limits
	if l.EventRate != 2 || l.BurstFactor != 3 || l.MaxCharCount != 100 || len(l.ExemptAffiliations) != 1 ||
		l.Rooms["lobby@muclight.localhost"] != (rooms.RateOverride{EventRate: 20, BurstFactor: 3}) {
		t.Errorf("options: %+v", l)
	}
	for _, tc := range []struct{ toml, key string }{
		{"[modules.mod_muc_limits]\nmuc_event_rate = -1.0", "muc_event_rate"},
		{"[modules.mod_muc_limits]\nmuc_burst_factor = 0.5", "muc_burst_factor"},
		{"[modules.mod_muc_limits]\nmuc_max_char_count = 0", "muc_max_char_count"},
		{"[modules.mod_muc_limits]\nexempt_affiliations = ['admin']", "exempt_affiliations"},
		{"[modules.mod_muc_limits]\nmuc_rate = 1.0", "muc_rate"},
		{"[modules.mod_muc_limits.rooms.\"not a jid\"]\nmuc_event_rate = 1.0", "rooms"},
	} {
		if _, err := loadTOML(t, tc.toml); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v, want an error naming %s", tc.toml, err, tc.key)
		}
	}
}

package room

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options are the module options of MUC Light, as MongooseIM names them. The
// server decodes them from [modules.mod_muc_light]; DefaultOptions holds the
// defaults.
type Options struct {
	// Host is the service domain pattern; "@HOST@" stands for each served
	// domain.
	Host string
	// EqualOccupants makes every occupant a member: no owners at all.
	EqualOccupants bool
	// LegacyMode serves the XEP-0045 subset instead of the native protocol.
	LegacyMode bool
	// RoomsPerUser caps the rooms one user may occupy (0: unlimited).
	RoomsPerUser int
	// Blocking enables the #blocking requests and their effect on additions.
	Blocking bool
	// AllCanConfigure lets members change the configuration.
	AllCanConfigure bool
	// AllCanInvite lets members add new members.
	AllCanInvite bool
	// MaxOccupants caps a room's size (0: unlimited).
	MaxOccupants int
	// RoomsPerPage caps a disco#items page (0: no paging).
	RoomsPerPage int
	// RoomsInRosters adds the user's rooms to their roster.
	RoomsInRosters bool
	// CacheAffs keeps a loaded room's affiliations in memory for
	// CacheAffsTTL; without it they are read from the store for every
	// message (changes through this node always update the cache).
	CacheAffs    bool
	CacheAffsTTL time.Duration
	// Schema is the room configuration schema.
	Schema Schema
	// CreateRate is the rooms one user may create per minute (native
	// create and legacy join-to-create alike), with bursts of CreateBurst;
	// 0 turns the cap off.
	CreateRate  float64
	CreateBurst int
	// MailboxWait is how long a sender waits for room in a full room
	// mailbox (and a room for room in the full archive queue, and a history
	// query for a free place) before the request is refused with
	// resource-constraint.
	MailboxWait time.Duration
	// MaxConfigValueSize bounds one configuration value, in bytes (0:
	// unlimited).
	MaxConfigValueSize int
}

// DefaultOptions are MongooseIM's defaults, plus the caps MongooseIM leaves
// unlimited and this server bounds (README, MUC Light options):
//   - max_occupants 10,000: every message costs one delivery per
//     occupant and, without cache_affs, one decode of the whole list; a
//     10,000-entry list is about 600 KB stored, far below MongoDB's 16 MiB
//     document limit, and twenty times the 500-member rooms of the load
//     tests.
//   - create_rate 10 per minute, bursts of 10: more than a person creates,
//     far less than the 1,500 rooms a script made in 2.7 s.
//   - mailbox_wait 5 s: a full 1,024-request mailbox of a 500-member room
//     drains in well under a second, so a sender waits through any burst;
//     5 s is the default store op_timeout and below common client iq
//     timeouts, so a refusal still comes before the client gives up.
//   - max_config_value_size 1,024 bytes: room names and subjects are
//     short; the stored room document is read for every listing.
func DefaultOptions() Options {
	return Options{
		Host:               "muclight.@HOST@",
		Blocking:           true,
		RoomsPerPage:       10,
		MaxOccupants:       10000,
		CreateRate:         10,
		CreateBurst:        10,
		MailboxWait:        5 * time.Second,
		MaxConfigValueSize: 1024,
		Schema:             DefaultSchema(),
	}
}

// ServiceDomain expands the Host pattern for one served domain.
func (o Options) ServiceDomain(host string) string {
	return strings.ReplaceAll(o.Host, "@HOST@", host)
}

// Validate checks the options that the decoder cannot, naming the key.
func (o Options) Validate() error {
	if o.Host == "" {
		return errors.New("host: must not be empty")
	}
	if o.RoomsPerUser < 0 {
		return errors.New("rooms_per_user: must be positive or \"infinity\"")
	}
	if o.MaxOccupants < 0 {
		return errors.New("max_occupants: must be positive or \"infinity\"")
	}
	if o.RoomsPerPage < 0 {
		return errors.New("rooms_per_page: must be positive or \"infinity\"")
	}
	if o.CacheAffs && o.CacheAffsTTL <= 0 {
		return errors.New("cache_affs.time_to_live: must be positive")
	}
	if o.CreateRate < 0 {
		return errors.New("create_rate: must be positive or \"infinity\"")
	}
	if o.CreateRate > 0 && o.CreateBurst < 1 {
		return errors.New("create_burst: must be at least 1")
	}
	if o.MailboxWait <= 0 {
		return errors.New("mailbox_wait: must be positive")
	}
	if o.MaxConfigValueSize < 0 {
		return errors.New("max_config_value_size: must be positive or \"infinity\"")
	}
	return o.Schema.validate()
}

// FieldType is the type of a configuration field, fixed by its default.
type FieldType int

// The field types config_schema allows.
const (
	StringField FieldType = iota
	IntegerField
	FloatField
)

func (t FieldType) String() string {
	switch t {
	case IntegerField:
		return "integer"
	case FloatField:
		return "float"
	}
	return "string"
}

// SchemaField is one configuration field: its name on the wire, the key it
// is stored under, its type and its default (canonical text).
type SchemaField struct {
	Name        string
	InternalKey string
	Type        FieldType
	Default     string
}

// Schema is the ordered list of a room's configuration fields.
type Schema []SchemaField

// DefaultSchema is MUC Light's default: a room name and a subject.
func DefaultSchema() Schema {
	return Schema{
		{Name: "roomname", InternalKey: "roomname", Type: StringField, Default: "Untitled"},
		{Name: "subject", InternalKey: "subject", Type: StringField, Default: ""},
	}
}

// reservedFields are names the protocol uses itself.
var reservedFields = map[string]bool{"version": true, "prev-version": true}

func (s Schema) validate() error {
	names, keys := map[string]bool{}, map[string]bool{}
	for i, f := range s {
		switch {
		case f.Name == "":
			return fmt.Errorf("config_schema[%d].field: must not be empty", i)
		case reservedFields[f.Name]:
			return fmt.Errorf("config_schema[%d].field: %q is reserved by the protocol", i, f.Name)
		case names[f.Name]:
			return fmt.Errorf("config_schema[%d].field: %q is defined twice", i, f.Name)
		case f.InternalKey == "":
			return fmt.Errorf("config_schema[%d].internal_key: must not be empty", i)
		case keys[f.InternalKey]:
			return fmt.Errorf("config_schema[%d].internal_key: %q is used twice", i, f.InternalKey)
		case strings.Contains(f.InternalKey, ".") || strings.HasPrefix(f.InternalKey, "$"):
			// Stores keep the configuration as a document whose field names these are.
			return fmt.Errorf("config_schema[%d].internal_key: %q may not contain '.' or start with '$'", i, f.InternalKey)
		}
		if _, err := f.parse(f.Default); err != nil {
			return fmt.Errorf("config_schema[%d]: default %q is not a %s", i, f.Default, f.Type)
		}
		names[f.Name], keys[f.InternalKey] = true, true
	}
	return nil
}

// field finds a field by its wire name.
func (s Schema) Lookup(name string) (SchemaField, bool) {
	for _, f := range s {
		if f.Name == name {
			return f, true
		}
	}
	return SchemaField{}, false
}

// byKey finds a field by its internal key.
func (s Schema) byKey(key string) (SchemaField, bool) {
	for _, f := range s {
		if f.InternalKey == key {
			return f, true
		}
	}
	return SchemaField{}, false
}

// defaults returns a full configuration of default values.
func (s Schema) Defaults() Config {
	c := make(Config, len(s))
	for _, f := range s {
		c[f.InternalKey] = f.Default
	}
	return c
}

package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wschat/xmppws/rooms"
)

// ModulesConfig holds the [modules.*] sections, named as in MongooseIM.
type ModulesConfig struct {
	MucLight  MucLightConfig  `toml:"mod_muc_light"`
	MucLimits MucLimitsConfig `toml:"mod_muc_limits"`
	MAM       MAMConfig       `toml:"mod_mam"`
}

// MAMConfig is [modules.mod_mam]: room history (XEP-0313) for MUC Light.
type MAMConfig struct {
	// MucLight archives MUC Light rooms (on by default: history exists
	// only in the archive).
	MucLight bool `toml:"muc_light"`
	// Backend is the archive's store; empty: mod_muc_light.backend.
	Backend            string `toml:"backend"`
	DefaultResultLimit int    `toml:"default_result_limit"`
	MaxResultLimit     int    `toml:"max_result_limit"`
	// RetentionDays deletes older entries (0: keep forever).
	RetentionDays int `toml:"retention_days"`
	// QueueLen bounds the messages waiting for the archive writer.
	QueueLen int `toml:"queue_len"`
	// MaxQueries and MaxQueriesPerRoom cap the history queries running at
	// once on the server and in one room.
	MaxQueries        int `toml:"max_mam_queries"`
	MaxQueriesPerRoom int `toml:"max_mam_queries_per_room"`
}

func defaultMAM() MAMConfig {
	return MAMConfig{MucLight: true, DefaultResultLimit: 50, MaxResultLimit: 50, QueueLen: 10000,
		MaxQueries: rooms.DefaultMaxQueries, MaxQueriesPerRoom: rooms.DefaultMaxQueriesPerRoom}
}

func (c *MAMConfig) validate(roomsBackend string) error {
	const sec = "modules.mod_mam."
	if c.Backend == "" {
		c.Backend = roomsBackend
	}
	switch {
	case !validBackend(c.Backend):
		return fmt.Errorf(sec+"backend: %q is not supported (use \"embedded\" or \"mongodb\")", c.Backend)
	case c.DefaultResultLimit < 1:
		return errors.New(sec + "default_result_limit: must be at least 1")
	case c.MaxResultLimit < c.DefaultResultLimit:
		return errors.New(sec + "max_result_limit: must be at least default_result_limit")
	case c.RetentionDays < 0:
		return errors.New(sec + "retention_days: must not be negative")
	case c.QueueLen < 1:
		return errors.New(sec + "queue_len: must be at least 1")
	case c.MaxQueries < 1:
		return errors.New(sec + "max_mam_queries: must be at least 1")
	case c.MaxQueriesPerRoom < 1 || c.MaxQueriesPerRoom > c.MaxQueries:
		return errors.New(sec + "max_mam_queries_per_room: must be at least 1 and at most max_mam_queries")
	}
	return nil
}

// MucLimitsConfig is [modules.mod_muc_limits], with Prosody's option names.
// Like a Prosody module, the limiter is on when its section is present.
type MucLimitsConfig struct {
	EventRate           float64                 `toml:"muc_event_rate"`
	BurstFactor         float64                 `toml:"muc_burst_factor"`
	MaxNickLength       int                     `toml:"muc_max_nick_length"`
	MaxCharCount        int                     `toml:"muc_max_char_count"`
	MaxLineCount        int                     `toml:"muc_max_line_count"`
	BaseCost            float64                 `toml:"muc_limit_base_cost"`
	LineCountMultiplier float64                 `toml:"muc_line_count_multiplier"`
	ExemptAffiliations  []string                `toml:"exempt_affiliations"`
	Rooms               map[string]RoomOverride `toml:"rooms"`

	present bool // the section appeared in the file
}

// RoomOverride is [modules.mod_muc_limits.rooms."room@service"].
type RoomOverride struct {
	EventRate   float64 `toml:"muc_event_rate"`
	BurstFactor float64 `toml:"muc_burst_factor"`
}

func defaultMucLimits() MucLimitsConfig {
	d := rooms.DefaultLimits()
	return MucLimitsConfig{
		EventRate: d.EventRate, BurstFactor: d.BurstFactor, MaxNickLength: d.MaxNickLength,
		MaxCharCount: d.MaxCharCount, MaxLineCount: d.MaxLineCount, BaseCost: d.BaseCost,
		LineCountMultiplier: d.LineCountMultiplier,
	}
}

// limits converts and validates the section; errors name the key.
func (c MucLimitsConfig) limits() (rooms.Limits, error) {
	l := rooms.Limits{
		Enabled: c.present, EventRate: c.EventRate, BurstFactor: c.BurstFactor, MaxNickLength: c.MaxNickLength,
		MaxCharCount: c.MaxCharCount, MaxLineCount: c.MaxLineCount, BaseCost: c.BaseCost,
		LineCountMultiplier: c.LineCountMultiplier,
	}
	for _, a := range c.ExemptAffiliations {
		l.ExemptAffiliations = append(l.ExemptAffiliations, rooms.Affiliation(a))
	}
	for room, o := range c.Rooms {
		if l.Rooms == nil {
			l.Rooms = map[string]rooms.RateOverride{}
		}
		if o.BurstFactor == 0 {
			o.BurstFactor = c.BurstFactor
		}
		l.Rooms[room] = rooms.RateOverride{EventRate: o.EventRate, BurstFactor: o.BurstFactor}
	}
	if err := l.Validate(); err != nil {
		return l, errors.New("modules.mod_muc_limits." + err.Error())
	}
	return l, nil
}

// MucLightConfig is [modules.mod_muc_light].
type MucLightConfig struct {
	Host            string           `toml:"host"`
	Backend         string           `toml:"backend"` // empty: storage.backend
	EqualOccupants  bool             `toml:"equal_occupants"`
	LegacyMode      bool             `toml:"legacy_mode"`
	RoomsPerUser    limit            `toml:"rooms_per_user"`
	Blocking        bool             `toml:"blocking"`
	AllCanConfigure bool             `toml:"all_can_configure"`
	AllCanInvite    bool             `toml:"all_can_invite"`
	MaxOccupants    limit            `toml:"max_occupants"`
	RoomsPerPage    limit            `toml:"rooms_per_page"`
	RoomsInRosters  bool             `toml:"rooms_in_rosters"`
	CacheAffs       *CacheAffsConfig `toml:"cache_affs"`
	ConfigSchema    []SchemaItem     `toml:"config_schema"`
	// Flow control and caps of this server (not MongooseIM options).
	CreateRate         limit    `toml:"create_rate"` // rooms per user per minute
	CreateBurst        int      `toml:"create_burst"`
	MailboxWait        duration `toml:"mailbox_wait"`
	MaxConfigValueSize limit    `toml:"max_config_value_size"` // bytes
}

// CacheAffsConfig is [modules.mod_muc_light.cache_affs]; its presence turns
// the cache on.
type CacheAffsConfig struct {
	TimeToLive int `toml:"time_to_live"` // seconds
}

// SchemaItem is one [[modules.mod_muc_light.config_schema]] entry: exactly
// one of the three values gives both the default and the type.
type SchemaItem struct {
	Field        string   `toml:"field"`
	StringValue  *string  `toml:"string_value"`
	IntegerValue *int64   `toml:"integer_value"`
	FloatValue   *float64 `toml:"float_value"`
	InternalKey  string   `toml:"internal_key"`
}

// limit is a positive integer or "infinity" (stored as 0).
type limit int

func (l *limit) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if v == "infinity" {
			*l = 0
			return nil
		}
	case int64:
		if v > 0 && v <= math.MaxInt32 {
			*l = limit(v)
			return nil
		}
	}
	return fmt.Errorf("must be a positive integer or \"infinity\", not %v", v)
}

// defaultCacheTTL applies when cache_affs is present without time_to_live.
const defaultCacheTTL = 120

func defaultMucLight() MucLightConfig {
	d := rooms.DefaultOptions()
	return MucLightConfig{
		Host:               d.Host,
		Blocking:           d.Blocking,
		RoomsPerPage:       limit(d.RoomsPerPage),
		MaxOccupants:       limit(d.MaxOccupants),
		CreateRate:         limit(d.CreateRate),
		CreateBurst:        d.CreateBurst,
		MailboxWait:        duration{d.MailboxWait},
		MaxConfigValueSize: limit(d.MaxConfigValueSize),
	}
}

// roomOptions converts and validates the section; errors name the key.
func (c MucLightConfig) roomOptions() (rooms.Options, error) {
	const sec = "modules.mod_muc_light."
	o := rooms.Options{
		Host:            c.Host,
		EqualOccupants:  c.EqualOccupants,
		LegacyMode:      c.LegacyMode,
		RoomsPerUser:    int(c.RoomsPerUser),
		Blocking:        c.Blocking,
		AllCanConfigure: c.AllCanConfigure,
		AllCanInvite:    c.AllCanInvite,
		MaxOccupants:    int(c.MaxOccupants),
		RoomsPerPage:    int(c.RoomsPerPage),
		RoomsInRosters:  c.RoomsInRosters,
		Schema:          rooms.DefaultSchema(),

		CreateRate:         float64(c.CreateRate),
		CreateBurst:        c.CreateBurst,
		MailboxWait:        c.MailboxWait.Duration,
		MaxConfigValueSize: int(c.MaxConfigValueSize),
	}
	if !validBackend(c.Backend) {
		return o, fmt.Errorf(sec+"backend: %q is not supported (use \"embedded\" or \"mongodb\")", c.Backend)
	}
	if c.CacheAffs != nil {
		ttl := c.CacheAffs.TimeToLive
		if ttl == 0 {
			ttl = defaultCacheTTL
		}
		if ttl < 0 {
			return o, errors.New(sec + "cache_affs.time_to_live: must be a positive number of seconds")
		}
		o.CacheAffs, o.CacheAffsTTL = true, time.Duration(ttl)*time.Second
	}
	if c.ConfigSchema != nil {
		o.Schema = nil
		for i, it := range c.ConfigSchema {
			f, err := it.field()
			if err != nil {
				return o, fmt.Errorf(sec+"config_schema[%d].%w", i, err)
			}
			o.Schema = append(o.Schema, f)
		}
	}
	if err := o.Validate(); err != nil {
		return o, errors.New(sec + err.Error())
	}
	return o, nil
}

func (it SchemaItem) field() (rooms.SchemaField, error) {
	f := rooms.SchemaField{Name: it.Field, InternalKey: it.InternalKey}
	if f.Name == "" {
		return f, errors.New("field: must not be empty")
	}
	if f.InternalKey == "" {
		f.InternalKey = f.Name
	}
	n := 0
	if it.StringValue != nil {
		n++
		f.Type, f.Default = rooms.StringField, *it.StringValue
	}
	if it.IntegerValue != nil {
		n++
		f.Type, f.Default = rooms.IntegerField, strconv.FormatInt(*it.IntegerValue, 10)
	}
	if it.FloatValue != nil {
		n++
		f.Type, f.Default = rooms.FloatField, strconv.FormatFloat(*it.FloatValue, 'g', -1, 64)
	}
	if n != 1 {
		return f, fmt.Errorf("%s: give exactly one of string_value, integer_value, float_value", it.Field)
	}
	return f, nil
}

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
	MucLight MucLightConfig `toml:"mod_muc_light"`
}

// MucLightConfig is [modules.mod_muc_light].
type MucLightConfig struct {
	Host            string           `toml:"host"`
	Backend         string           `toml:"backend"`
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
		Host:         d.Host,
		Backend:      "embedded",
		Blocking:     d.Blocking,
		RoomsPerPage: limit(d.RoomsPerPage),
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
	}
	switch c.Backend {
	case "embedded":
	default:
		return o, fmt.Errorf(sec+"backend: %q is not supported (use \"embedded\")", c.Backend)
	}
	if c.LegacyMode {
		return o, errors.New(sec + "legacy_mode: not implemented yet")
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

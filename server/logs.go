package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/wschat/xmppws/boltstore"
)

// Log formats of general.log_format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// newLogger is the process's logger: general.log_level and log_format,
// on w (stderr).
func newLogger(g GeneralConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(g.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if g.LogFormat == logFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func validLogFormat(f string) error {
	if f == logFormatText || f == logFormatJSON {
		return nil
	}
	return fmt.Errorf("%q is not a log format (use \"text\" or \"json\")", f)
}

// version is the module version the binary was built from ("devel" for a
// build from a work tree).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// metricsURL is where /metrics is served.
func metricsURL(cfg Config, httpAddr string) string {
	scheme, addr := "http", httpAddr
	if cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	if cfg.HTTP.MetricsAddress != "" {
		scheme, addr = "http", cfg.HTTP.MetricsAddress
	}
	return scheme + "://" + addr + "/metrics"
}

// logModules writes one "module" line per enabled module with the options
// an operator checks first.
func logModules(log *slog.Logger, cfg Config) {
	ml := cfg.Modules.MucLight
	log.Info("module", "name", "mod_muc_light", "hosts", mucHosts(cfg), "backend", ml.Backend,
		"legacy_mode", ml.LegacyMode, "equal_occupants", ml.EqualOccupants, "rooms_per_user", limitText(ml.RoomsPerUser),
		"max_occupants", limitText(ml.MaxOccupants), "create_rate", limitText(ml.CreateRate), "blocking", ml.Blocking)
	if l := cfg.limits; l.Enabled {
		log.Info("module", "name", "mod_muc_limits", "muc_event_rate", l.EventRate, "muc_burst_factor", l.BurstFactor,
			"muc_max_char_count", l.MaxCharCount, "rooms_overridden", len(l.Rooms))
	}
	if m := cfg.Modules.MAM; m.MucLight {
		log.Info("module", "name", "mod_mam", "muc_light", true, "backend", m.Backend, "retention_days", m.RetentionDays,
			"max_result_limit", m.MaxResultLimit)
	} else {
		log.Info("module", "name", "mod_mam", "muc_light", false)
	}
}

// mucHosts lists the MUC Light service domains.
func mucHosts(cfg Config) []string {
	out := make([]string, 0, len(cfg.General.Hosts))
	for _, h := range cfg.General.Hosts {
		out = append(out, cfg.rooms.ServiceDomain(h))
	}
	return out
}

func limitText(l limit) string {
	if l == 0 {
		return "infinity"
	}
	return strconv.Itoa(int(l))
}

// openedStore is what "store opened" says about one backend.
type openedStore struct {
	backend string
	where   string // a file, or a MongoDB URI without credentials
	created bool   // the embedded file did not exist before
}

func (o openedStore) log(log *slog.Logger) {
	args := []any{"backend", o.backend, "at", o.where}
	if o.backend == "embedded" {
		args = append(args, "created", o.created)
	}
	log.Info("store opened", args...)
}

// redactURI drops the user and password of a MongoDB URI (and any query,
// which may hold credentials too).
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		// Not parseable here: keep what is before the credentials, if any.
		if i := strings.LastIndex(uri, "@"); i >= 0 {
			if j := strings.Index(uri, "://"); j >= 0 && j < i {
				return uri[:j+3] + uri[i+1:]
			}
		}
		return "(unparseable URI)"
	}
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	return u.String()
}

// errNoDatabase says an admin command found no database to work on.
var errNoDatabase = errors.New("no database")

// embeddedPath is the embedded store's file.
func embeddedPath(cfg Config) string {
	return filepath.Join(cfg.Storage.DataDir, boltstore.FileName)
}

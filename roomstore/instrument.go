package roomstore

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/logthrottle"
	"github.com/wschat/xmppws/xmpp"
)

// ErrorLogInterval is the most often one store function's failures are
// logged; the metrics count every one.
const ErrorLogInterval = 10 * time.Second

// StoreFunctions are the store operations as the backend metrics name them
// (MongooseIM's mod_muc_light_db_<Backend>_count / _time "function" label).
var StoreFunctions = []string{
	"create_room", "destroy_room", "room_exists", "get_user_rooms", "get_user_rooms_count",
	"remove_user", "remove_domain", "get_config", "set_config", "get_blocking", "set_blocking",
	"get_aff_users", "modify_aff_users",
}

// instrumented counts and times every call of the Store it wraps, whatever
// the backend, so the metrics are defined once and not in each backend.
type instrumented struct {
	Store
	hostOf func(domain string) string
	// Failures are logged too, at most one line per function and interval.
	log      *slog.Logger
	throttle *logthrottle.Throttle
	what     string // "store" or "archive": the log line's message names it
	backend  string
	count    *prometheus.CounterVec
	time     *prometheus.HistogramVec
	errs     *prometheus.CounterVec
}

// InstrumentStore wraps s with the backend metrics of docs/metrics.md:
// mod_muc_light_db_<backend>_count (counter) and _time (histogram, seconds)
// by host_type and function, plus _errors_total for calls that failed (a
// refusal such as "room exists" or a rejected change is not a failure).
// hostOf maps a room's service domain to the served domain (host_type).
// Each failure is also logged to log (nil: not logged) as "store error", at
// most once per function and ErrorLogInterval with the count.
func InstrumentStore(s Store, backend string, reg prometheus.Registerer, hostOf func(domain string) string, log *slog.Logger) Store {
	prefix := "mod_muc_light_db_" + backend
	labels := []string{"host_type", "function"}
	i := &instrumented{
		Store:    s,
		hostOf:   hostOf,
		log:      log,
		throttle: logthrottle.New(ErrorLogInterval, 0, nil),
		what:     "store",
		backend:  backend,
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_count", Help: "MUC Light store operations started, by function.",
		}, labels),
		time: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: prefix + "_time", Help: "MUC Light store operation duration in seconds, by function.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, labels),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_errors_total", Help: "MUC Light store operations that failed, by function.",
		}, labels),
	}
	if reg != nil {
		reg.MustRegister(i.count, i.time, i.errs)
	}
	return i
}

// ZeroSeries makes the store metrics of s (if InstrumentStore wrapped it)
// exist at zero for every function and served domain, before any call: the
// metrics list each function even before it is called, or when the hub no
// longer calls it (get_user_rooms_count, since the store checks
// rooms_per_user itself), and an error alert has a series to watch.
func ZeroSeries(s Store, hosts []string) {
	if i, ok := s.(*instrumented); ok {
		i.zeroSeries(hosts, StoreFunctions)
	}
}

// ZeroArchiveSeries is ZeroSeries for an archive InstrumentArchive wrapped.
func ZeroArchiveSeries(a archive.Archive, hosts []string) {
	if i, ok := a.(*instrumentedArchive); ok {
		i.m.zeroSeries(hosts, ArchiveFunctions)
	}
}

func (i *instrumented) zeroSeries(hosts, functions []string) {
	for _, host := range hosts {
		for _, fn := range functions {
			i.count.WithLabelValues(host, fn)
			i.time.WithLabelValues(host, fn)
			i.errs.WithLabelValues(host, fn)
		}
	}
}

// observe starts a measurement; the returned func records its outcome.
func (i *instrumented) observe(domain, fn string) func(error) {
	host := i.hostOf(domain)
	i.count.WithLabelValues(host, fn).Inc()
	start := time.Now()
	return func(err error) {
		i.time.WithLabelValues(host, fn).Observe(time.Since(start).Seconds())
		var se *xmpp.StanzaError
		if err != nil && !errors.Is(err, ErrRoomNotFound) && !errors.Is(err, ErrRoomExists) && !errors.As(err, &se) && !errors.As(err, new(*RoomCapError)) {
			i.errs.WithLabelValues(host, fn).Inc()
			i.throttle.Log(i.log, slog.LevelError, fn, i.what+" error", "backend", i.backend, "function", fn, "host_type", host, "err", err)
		}
	}
}

func (i *instrumented) CreateRoom(ctx context.Context, room xmpp.JID, cfg Config, affs []Aff, version string, caps Caps) (err error) {
	done := i.observe(room.Domain, "create_room")
	defer func() { done(err) }()
	return i.Store.CreateRoom(ctx, room, cfg, affs, version, caps)
}

func (i *instrumented) DestroyRoom(ctx context.Context, room xmpp.JID, caps Caps) (err error) {
	done := i.observe(room.Domain, "destroy_room")
	defer func() { done(err) }()
	return i.Store.DestroyRoom(ctx, room, caps)
}

func (i *instrumented) RoomExists(ctx context.Context, room xmpp.JID) (ok bool, err error) {
	done := i.observe(room.Domain, "room_exists")
	defer func() { done(err) }()
	return i.Store.RoomExists(ctx, room)
}

func (i *instrumented) GetUserRooms(ctx context.Context, user xmpp.JID, service string) (list []RoomInfo, err error) {
	done := i.observe(service, "get_user_rooms")
	defer func() { done(err) }()
	return i.Store.GetUserRooms(ctx, user, service)
}

func (i *instrumented) GetUserRoomsCount(ctx context.Context, user xmpp.JID, service string) (n int, err error) {
	done := i.observe(service, "get_user_rooms_count")
	defer func() { done(err) }()
	return i.Store.GetUserRoomsCount(ctx, user, service)
}

func (i *instrumented) RemoveUser(ctx context.Context, user xmpp.JID, service string, leave func(xmpp.JID) AffChange, version func() string, caps Caps) (res []UserRemoval, err error) {
	done := i.observe(service, "remove_user")
	defer func() { done(err) }()
	return i.Store.RemoveUser(ctx, user, service, leave, version, caps)
}

func (i *instrumented) RemoveDomain(ctx context.Context, domain, service string) (err error) {
	done := i.observe(service, "remove_domain")
	defer func() { done(err) }()
	return i.Store.RemoveDomain(ctx, domain, service)
}

func (i *instrumented) GetConfig(ctx context.Context, room xmpp.JID) (cfg Config, v string, err error) {
	done := i.observe(room.Domain, "get_config")
	defer func() { done(err) }()
	return i.Store.GetConfig(ctx, room)
}

func (i *instrumented) SetConfig(ctx context.Context, room xmpp.JID, changes Config, version string) (prev string, err error) {
	done := i.observe(room.Domain, "set_config")
	defer func() { done(err) }()
	return i.Store.SetConfig(ctx, room, changes, version)
}

func (i *instrumented) GetBlocking(ctx context.Context, user xmpp.JID) (items []BlockItem, err error) {
	done := i.observe(user.Domain, "get_blocking")
	defer func() { done(err) }()
	return i.Store.GetBlocking(ctx, user)
}

func (i *instrumented) SetBlocking(ctx context.Context, user xmpp.JID, deny, allow []BlockItem) (err error) {
	done := i.observe(user.Domain, "set_blocking")
	defer func() { done(err) }()
	return i.Store.SetBlocking(ctx, user, deny, allow)
}

func (i *instrumented) GetAffUsers(ctx context.Context, room xmpp.JID) (affs []Aff, v string, err error) {
	done := i.observe(room.Domain, "get_aff_users")
	defer func() { done(err) }()
	return i.Store.GetAffUsers(ctx, room)
}

func (i *instrumented) ModifyAffUsers(ctx context.Context, room xmpp.JID, change AffChange, version string, caps Caps) (res AffResult, err error) {
	done := i.observe(room.Domain, "modify_aff_users")
	defer func() { done(err) }()
	return i.Store.ModifyAffUsers(ctx, room, change, version, caps)
}

// ArchiveFunctions are the archive operations as the history metrics name them.
var ArchiveFunctions = []string{"append", "query", "remove_room", "remove_domain", "remove_before"}

// instrumentedArchive counts and times every archive call, like the store.
type instrumentedArchive struct {
	archive.Archive
	m *instrumented
}

// InstrumentArchive wraps a with mod_mam_muc_light_db_<backend>_count,
// _time and _errors_total by host_type and function. An append batch is
// labelled with the host of its first message's room.
// Failures are logged as InstrumentStore's are, as "archive error".
func InstrumentArchive(a archive.Archive, backend string, reg prometheus.Registerer, hostOf func(domain string) string, log *slog.Logger) archive.Archive {
	prefix := "mod_mam_muc_light_db_" + backend
	labels := []string{"host_type", "function"}
	i := &instrumented{
		hostOf:   hostOf,
		log:      log,
		throttle: logthrottle.New(ErrorLogInterval, 0, nil),
		what:     "archive",
		backend:  backend,
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_count", Help: "Room history operations started, by function.",
		}, labels),
		time: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: prefix + "_time", Help: "Room history operation duration in seconds, by function.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, labels),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_errors_total", Help: "Room history operations that failed, by function.",
		}, labels),
	}
	if reg != nil {
		reg.MustRegister(i.count, i.time, i.errs)
	}
	return &instrumentedArchive{Archive: a, m: i}
}

func (a *instrumentedArchive) Append(ctx context.Context, msgs []archive.Message) (err error) {
	domain := ""
	if len(msgs) > 0 {
		domain = msgs[0].Room.Domain
	}
	done := a.m.observe(domain, "append")
	defer func() { done(err) }()
	return a.Archive.Append(ctx, msgs)
}

func (a *instrumentedArchive) Query(ctx context.Context, q archive.Query) (p archive.Page, err error) {
	done := a.m.observe(q.Room.Domain, "query")
	defer func() { done(err) }()
	return a.Archive.Query(ctx, q)
}

func (a *instrumentedArchive) RemoveRoom(ctx context.Context, room xmpp.JID) (err error) {
	done := a.m.observe(room.Domain, "remove_room")
	defer func() { done(err) }()
	return a.Archive.RemoveRoom(ctx, room)
}

func (a *instrumentedArchive) RemoveDomain(ctx context.Context, service string) (err error) {
	done := a.m.observe(service, "remove_domain")
	defer func() { done(err) }()
	return a.Archive.RemoveDomain(ctx, service)
}

func (a *instrumentedArchive) RemoveBefore(ctx context.Context, t time.Time) (n int, err error) {
	done := a.m.observe("", "remove_before")
	defer func() { done(err) }()
	return a.Archive.RemoveBefore(ctx, t)
}

func (a *instrumentedArchive) Update(ctx context.Context, msgs []archive.Message) (err error) {
	domain := ""
	if len(msgs) > 0 {
		domain = msgs[0].Room.Domain
	}
	done := a.m.observe(domain, "update")
	defer func() { done(err) }()
	return a.Archive.Update(ctx, msgs)
}

func (a *instrumentedArchive) SetRead(ctx context.Context, room, user xmpp.JID, id string) (err error) {
	done := a.m.observe(room.Domain, "set_read")
	defer func() { done(err) }()
	return a.Archive.SetRead(ctx, room, user, id)
}

func (a *instrumentedArchive) Reads(ctx context.Context, user xmpp.JID, rooms []xmpp.JID) (m map[string]string, err error) {
	domain := ""
	if len(rooms) > 0 {
		domain = rooms[0].Domain
	}
	done := a.m.observe(domain, "reads")
	defer func() { done(err) }()
	return a.Archive.Reads(ctx, user, rooms)
}

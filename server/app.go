package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/frontend"
	"github.com/wschat/xmppws/mongo"
	"github.com/wschat/xmppws/push"
	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
)

// stores are the backends the configuration asks for: accounts and rooms
// may live in the same one or in different ones.
type stores struct {
	accounts account.Store
	rooms    rooms.Store
	archive  rooms.Archive   // nil when MUC Light history is off
	push     pushstore.Store // push registrations, beside the accounts
	closers  []io.Closer
	opened   []openedStore // for the start-up log
}

func (s *stores) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// backend is what each storage backend provides.
type backend interface {
	account.Store
	rooms.Store
	io.Closer
}

// archiveOf returns the room history kept in a backend's database.
func archiveOf(b backend) rooms.Archive {
	switch s := b.(type) {
	case *boltstore.Store:
		return s.Archive()
	case *mongo.Store:
		return s.Archive()
	}
	return nil
}

// openStores opens every backend the configuration names. Unless create is
// set, an embedded database that does not exist yet is an error rather than
// a new empty one: what an admin command wants.
func openStores(cfg Config, create bool) (*stores, error) {
	opened := map[string]backend{}
	st := &stores{}
	open := func(name string) (backend, error) {
		if b, ok := opened[name]; ok {
			return b, nil
		}
		var b backend
		var err error
		o := openedStore{backend: name}
		switch name {
		case "embedded":
			o.where = embeddedPath(cfg)
			_, statErr := os.Stat(o.where)
			o.created = errors.Is(statErr, fs.ErrNotExist)
			if o.created && !create {
				return nil, fmt.Errorf("%w at %s (storage.data_dir): start the server once, or run \"user add -create-database\"", errNoDatabase, o.where)
			}
			b, err = boltstore.Open(cfg.Storage.DataDir, boltstore.Options{})
		case "mongodb":
			o.where = redactURI(cfg.Storage.MongoDB.URI) + " database " + cfg.Storage.MongoDB.Database
			m := cfg.Storage.MongoDB
			ctx, cancel := context.WithTimeout(context.Background(), m.ConnectTimeout.Duration)
			defer cancel()
			b, err = mongo.Open(ctx, mongo.Config{URI: m.URI, Database: m.Database, PoolSize: uint64(m.PoolSize),
				ConnectTimeout: m.ConnectTimeout.Duration, OpTimeout: m.OpTimeout.Duration})
		default:
			err = fmt.Errorf("storage backend %q is not supported", name)
		}
		if err != nil {
			return nil, err
		}
		opened[name] = b
		st.closers = append(st.closers, b)
		st.opened = append(st.opened, o)
		return b, nil
	}
	a, err := open(cfg.Storage.Backend)
	if err != nil {
		return nil, err
	}
	r, err := open(cfg.Modules.MucLight.Backend)
	if err != nil {
		st.Close()
		return nil, err
	}
	st.accounts, st.rooms = a, r
	st.push, _ = a.(pushstore.Store)
	if cfg.Modules.MAM.MucLight {
		ar, err := open(cfg.Modules.MAM.Backend)
		if err != nil {
			st.Close()
			return nil, err
		}
		st.archive = archiveOf(ar)
	}
	return st, nil
}

// app is a running server: listeners, endpoint, store.
type app struct {
	log     *slog.Logger
	store   *stores
	ws      *ws.Server
	hub     *rooms.Hub
	http    *http.Server
	metrics *http.Server
	api     *http.Server // the admin API (apiserve.go); nil when off
	apiLn   net.Listener
	ln      net.Listener
	admin   *adminServer
	cluster *clusterNode  // nil on one node
	push    *push.Service // nil when [push] is off
	failed  chan error
}

// start opens the store, binds the listeners and serves in the background.
func start(cfg Config, log *slog.Logger) (*app, error) {
	st, err := openStores(cfg, true)
	if err != nil {
		return nil, err
	}
	for _, o := range st.opened {
		o.log(log)
	}
	logModules(log, cfg)
	a := &app{log: log, store: st, failed: make(chan error, 2)}
	ok := false
	defer func() {
		if !ok {
			a.closeAll()
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.ws = ws.New(wsConfig(cfg), st.accounts, ws.Options{Logger: log, Registerer: reg, Tokens: cfg.tokens})
	roomStore := rooms.InstrumentStore(st.rooms, cfg.Modules.MucLight.Backend, reg, hostOfService(cfg), log)
	ho := rooms.HubOptions{
		Logger: log, Registerer: reg, Backend: cfg.Modules.MucLight.Backend, Limits: cfg.limits, MAM: mamOptions(cfg, st, reg, log),
		StoreTimeout: cfg.Storage.MongoDB.OpTimeout.Duration,
	}
	{
		// Occupant ids (XEP-0421) are keyed with the deployment's secret, so
		// they survive restarts and agree between cluster nodes.
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Storage.MongoDB.ConnectTimeout.Duration)
		ho.Secret, err = st.accounts.ServerSecret(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading the server secret for occupant ids: %w", err)
		}
	}
	if cfg.Cluster.NATSURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Storage.MongoDB.ConnectTimeout.Duration)
		defer cancel()
		if a.cluster, err = joinCluster(ctx, cfg, log); err != nil {
			return nil, err
		}
		a.cluster.roomOptions(&ho)
		a.cluster.register(reg)
	}
	var pushHook func(*rooms.HubOptions)
	a.push, pushHook = startPush(cfg, st, a.ws, reg, log)
	pushHook(&ho)
	a.hub = rooms.NewHub(cfg.rooms, cfg.General.Hosts, roomStore, a.ws.Router(), ho)
	if a.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Storage.MongoDB.ConnectTimeout.Duration)
		defer cancel()
		if err := a.cluster.attach(ctx, a.ws); err != nil {
			return nil, err
		}
	}
	for svc, host := range a.hub.Services() {
		a.ws.Router().RegisterService(host, svc, a.hub.DiscoNode(), a.hub)
	}
	// Blocking as privacy lists, for XEP-0045 clients, in both modes.
	a.ws.Router().HandleAccountIQ(rooms.NSPrivacy, a.hub)
	// A session's XEP-0045 occupancies end with it.
	a.ws.Router().AddSessionWatcher(a.hub)
	a.ws.Router().AddRosterSource(a.hub)

	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux := http.NewServeMux()
	opsMux := mux // where /metrics (and pprof) live
	mux.Handle(cfg.WebSocket.Path, a.ws)
	mux.Handle("GET /.well-known/host-meta", a.ws.HostMeta(false))
	mux.Handle("GET /.well-known/host-meta.json", a.ws.HostMeta(true))
	if cfg.HTTP.MetricsAddress == "" {
		mux.Handle("GET /metrics", metricsHandler)
	} else {
		mm := http.NewServeMux()
		opsMux = mm
		mm.Handle("GET /metrics", metricsHandler)
		mln, err := net.Listen("tcp", cfg.HTTP.MetricsAddress)
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		a.metrics = httpServer(cfg, mm, log)
		go a.serve(a.metrics, mln, "", "")
	}
	if cfg.HTTP.Pprof {
		opsMux.HandleFunc("/debug/pprof/", pprof.Index)
		opsMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		opsMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", frontend.Handler()) // the demo web client; GET and HEAD only

	a.ln, err = net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	a.http = httpServer(cfg, mux, log)
	a.http.ConnState = a.ws.ConnState // unauthenticated connections count from accept
	a.admin, err = listenAdmin(cfg.Storage.DataDir, &admin{hosts: cfg.General.Hosts, accounts: st.accounts, hub: a.hub, sessions: a.ws, push: st.push}, log)
	if err != nil {
		return nil, err
	}
	if err := a.startAPI(cfg, reg, log); err != nil {
		return nil, err
	}
	go a.serve(a.http, a.ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
	ok = true
	return a, nil
}

// httpServer applies [http]'s timeouts and header limit to a listener's
// server.
func httpServer(cfg Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.Duration,
		ReadTimeout:       cfg.HTTP.ReadTimeout.Duration,
		IdleTimeout:       cfg.HTTP.IdleTimeout.Duration,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
	}
}

func wsConfig(cfg Config) ws.Config {
	w := cfg.WebSocket
	return ws.Config{
		Hosts:                cfg.General.Hosts,
		Path:                 w.Path,
		MaxStanzaSize:        w.MaxStanzaSize,
		AuthTimeout:          w.AuthTimeout.Duration,
		IdleTimeout:          w.IdleTimeout.Duration,
		PingTimeout:          w.PingTimeout.Duration,
		WriteTimeout:         w.WriteTimeout.Duration,
		MaxPending:           w.MaxPending,
		StallTimeout:         w.StallTimeout.Duration,
		MaxAuthFailures:      w.MaxAuthFailures,
		AllowPlainWithoutTLS: w.AllowPlainWithoutTLS,
		AllowedOrigins:       w.AllowedOrigins,
		PublicURL:            cfg.HTTP.PublicURL,
		AlternateURLs:        cfg.HTTP.AlternateURLs,
		Shaper: ws.ShaperConfig{
			StanzaRate:  w.Shaper.StanzaRate,
			StanzaBurst: w.Shaper.StanzaBurst,
			ByteRate:    w.Shaper.ByteRate,
			ByteBurst:   w.Shaper.ByteBurst,
		},
		MaxUnauthenticated:           w.MaxUnauthenticated,
		MaxUnauthenticatedPerAddress: w.MaxUnauthenticatedPerAddress,
		MaxSessionsPerAccount:        w.MaxSessionsPerAccount,
		FAST:                         w.FAST,
		FASTTokenTTL:                 w.FASTTokenTTL.Duration,
		MaxFASTTokens:                w.FASTMaxTokens,
		SMAckEvery:                   w.SMAckEvery,
		SMAckInterval:                w.SMAckInterval.Duration,
		SMMaxUnacked:                 w.SMMaxUnacked,
		SMResumeTimeout:              w.SMResumeTimeout.Duration,
	}
}

func (a *app) serve(srv *http.Server, ln net.Listener, cert, key string) {
	var err error
	if cert != "" {
		err = srv.ServeTLS(ln, cert, key)
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.failed <- err
	}
}

// Addr is the bound HTTP address (useful with port 0).
func (a *app) Addr() string { return a.ln.Addr().String() }

// Failed reports a listener that stopped on its own.
func (a *app) Failed() <-chan error { return a.failed }

// Shutdown stops accepting, sends <close/> to every session, then closes
// the store.
func (a *app) Shutdown(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		errs = append(errs, a.http.Shutdown(ctx)) // hijacked WebSockets are not waited for here
	}
	if a.api != nil {
		errs = append(errs, a.api.Shutdown(ctx)) // before the hub: no call waits on a closed core
		a.api = nil
	}
	if a.ws != nil {
		errs = append(errs, a.ws.Shutdown(ctx))
	}
	if a.hub != nil {
		a.hub.Close() // after the sessions: nothing new reaches the rooms
		a.hub = nil
	}
	if a.push != nil {
		a.push.Close() // after the rooms: no more posts come
		a.push = nil
	}
	if a.cluster != nil {
		errs = append(errs, a.cluster.Close(ctx)) // after the actors let go of their leases
		a.cluster = nil
	}
	if a.metrics != nil {
		errs = append(errs, a.metrics.Shutdown(ctx))
	}
	errs = append(errs, a.closeAll())
	return errors.Join(errs...)
}

func (a *app) closeAll() error {
	var errs []error
	if a.hub != nil { // a start that failed after the hub was built
		a.hub.Close()
		a.hub = nil
	}
	if a.push != nil {
		a.push.Close()
		a.push = nil
	}
	if a.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, a.cluster.Close(ctx))
		cancel()
		a.cluster = nil
	}
	if a.admin != nil {
		errs = append(errs, a.admin.Close())
		a.admin = nil
	}
	if a.api != nil {
		errs = append(errs, a.api.Close())
		a.api = nil
	} else if a.apiLn != nil {
		a.apiLn.Close()
	}
	if a.ln != nil && a.http == nil {
		a.ln.Close()
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
		a.store = nil
	}
	return errors.Join(errs...)
}

// hostOfService maps a MUC Light service domain to the served domain it
// belongs to, the host_type of the backend metrics.
func hostOfService(cfg Config) func(string) string {
	m := make(map[string]string, len(cfg.General.Hosts))
	for _, h := range cfg.General.Hosts {
		m[cfg.rooms.ServiceDomain(h)] = h
		m[h] = h
	}
	return func(d string) string {
		if h, ok := m[d]; ok {
			return h
		}
		return d
	}
}

// mamOptions configures room history from [modules.mod_mam].
func mamOptions(cfg Config, st *stores, reg prometheus.Registerer, log *slog.Logger) rooms.MAMOptions {
	if st.archive == nil {
		return rooms.MAMOptions{}
	}
	m := cfg.Modules.MAM
	return rooms.MAMOptions{
		Archive:         rooms.InstrumentArchive(st.archive, m.Backend, reg, hostOfService(cfg), log),
		DefaultPageSize: m.DefaultResultLimit,
		MaxPageSize:     m.MaxResultLimit,
		QueueLen:        m.QueueLen,
		Retention:       time.Duration(m.RetentionDays) * 24 * time.Hour,

		MaxQueries:        m.MaxQueries,
		MaxQueriesPerRoom: m.MaxQueriesPerRoom,
	}
}

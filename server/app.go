package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/boltstore"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
)

// store is everything the server needs from a storage backend.
type store interface {
	account.Store
	rooms.Store
	io.Closer
}

func openStore(cfg Config) (store, error) {
	switch cfg.Storage.Backend {
	case "embedded":
		return boltstore.Open(cfg.Storage.DataDir, boltstore.Options{})
	}
	return nil, fmt.Errorf("storage backend %q is not supported", cfg.Storage.Backend)
}

// app is a running server: listeners, endpoint, store.
type app struct {
	log     *slog.Logger
	store   store
	ws      *ws.Server
	hub     *rooms.Hub
	http    *http.Server
	metrics *http.Server
	ln      net.Listener
	admin   *adminServer
	failed  chan error
}

// start opens the store, binds the listeners and serves in the background.
func start(cfg Config, log *slog.Logger) (*app, error) {
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	a := &app{log: log, store: st, failed: make(chan error, 2)}
	ok := false
	defer func() {
		if !ok {
			a.closeAll()
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.ws = ws.New(wsConfig(cfg), st, ws.Options{Logger: log, Registerer: reg})
	a.hub = rooms.NewHub(cfg.rooms, cfg.General.Hosts, st, a.ws.Router(), rooms.HubOptions{Logger: log, Registerer: reg, Backend: cfg.Modules.MucLight.Backend})
	for svc, host := range a.hub.Services() {
		a.ws.Router().RegisterService(host, svc, rooms.NS, a.hub)
	}
	a.ws.Router().AddRosterSource(a.hub)

	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux := http.NewServeMux()
	mux.Handle(cfg.WebSocket.Path, a.ws)
	mux.Handle("GET /.well-known/host-meta", a.ws.HostMeta(false))
	mux.Handle("GET /.well-known/host-meta.json", a.ws.HostMeta(true))
	if cfg.HTTP.MetricsAddress == "" {
		mux.Handle("GET /metrics", metricsHandler)
	} else {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metricsHandler)
		mln, err := net.Listen("tcp", cfg.HTTP.MetricsAddress)
		if err != nil {
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		a.metrics = &http.Server{Handler: mm, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go a.serve(a.metrics, mln, "", "")
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "xmppws: XMPP over WebSocket at %s (subprotocol xmpp); discovery at /.well-known/host-meta; metrics at /metrics\n", cfg.WebSocket.Path)
	})

	a.ln, err = net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	a.http = &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if cfg.Storage.Backend == "embedded" {
		a.admin, err = listenAdmin(cfg.Storage.DataDir, &admin{hosts: cfg.General.Hosts, accounts: st}, log)
		if err != nil {
			return nil, err
		}
	}
	go a.serve(a.http, a.ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
	ok = true
	return a, nil
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
		SendQueueLen:         w.SendQueueLen,
		MaxAuthFailures:      w.MaxAuthFailures,
		AllowPlainWithoutTLS: w.AllowPlainWithoutTLS,
		AllowedOrigins:       w.AllowedOrigins,
		PublicURL:            cfg.HTTP.PublicURL,
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
	if a.ws != nil {
		errs = append(errs, a.ws.Shutdown(ctx))
	}
	if a.hub != nil {
		a.hub.Close() // after the sessions: nothing new reaches the rooms
	}
	if a.metrics != nil {
		errs = append(errs, a.metrics.Shutdown(ctx))
	}
	errs = append(errs, a.closeAll())
	return errors.Join(errs...)
}

func (a *app) closeAll() error {
	var errs []error
	if a.admin != nil {
		errs = append(errs, a.admin.Close())
		a.admin = nil
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

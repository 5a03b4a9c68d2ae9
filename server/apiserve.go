package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/api"
	"github.com/wschat/xmppws/roomstore"
)

// startAPI serves the admin API on [api] address, when set.
func (a *app) startAPI(cfg Config, reg prometheus.Registerer, log *slog.Logger) error {
	if cfg.API.Address == "" {
		return nil
	}
	lister, ok := a.store.rooms.(roomstore.Lister)
	if !ok {
		return errors.New("api: the room store cannot list rooms")
	}
	tokens := make([]api.Token, len(cfg.API.Tokens))
	for i, t := range cfg.API.Tokens {
		tokens[i] = api.Token{Name: t.Name, Token: t.Token}
	}
	o := api.Options{
		Tokens: tokens, Hosts: cfg.General.Hosts, Accounts: a.store.accounts, Rooms: a.hub, Lister: lister,
		Sessions: a.ws, Logger: log, Registerer: reg,
		MaxInFlight: cfg.API.MaxInFlight, MaxBodyBytes: cfg.API.MaxBodyBytes, Timeout: cfg.API.Timeout.Duration,
	}
	if a.cluster != nil && a.cluster.dir != nil { // the session endpoints reach every node
		o.Cluster = a.cluster.dir
	}
	h := api.New(o)
	ln, err := net.Listen("tcp", cfg.API.Address)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	a.apiLn = ln
	a.api = httpServer(cfg, h, log)
	go a.serve(a.api, ln, "", "")
	log.Info("admin API listening", "address", ln.Addr().String(), "tokens", len(tokens))
	return nil
}

// APIAddr is the admin API's bound address ("" when it is off).
func (a *app) APIAddr() string {
	if a.apiLn == nil {
		return ""
	}
	return a.apiLn.Addr().String()
}

var _ http.Handler = (*api.Server)(nil)

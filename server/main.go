// Command server runs the WebSocket-first XMPP group-chat server, and its
// admin subcommands. It holds wiring only: configuration, the stores, the
// HTTP listener and signal handling; the protocol lives in ws and rooms.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: server [-config file.toml]            run the server
       server [-config file.toml] user ...   manage accounts (server user -h)
       server [-config file.toml] domain purge DOMAIN

-config may also follow the subcommand (server user list -config x.toml).`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "TOML configuration file (defaults apply when empty)")
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sub := fs.Args()
	if len(sub) > 0 && (sub[0] == "user" || sub[0] == "domain") {
		rest, after, err := configAfter(sub[1:])
		if err != nil || (after != "" && *configPath != "" && after != *configPath) {
			if err == nil {
				err = errors.New("-config given twice with different files")
			}
			fmt.Fprintln(stderr, "error:", err)
			return 2
		}
		if after != "" {
			*configPath = after
		}
		sub = append(sub[:1:1], rest...)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch {
	case len(sub) == 0:
	case sub[0] == "user":
		return userCommand(cfg, sub[1:], stdin, stdout, stderr)
	case sub[0] == "domain":
		return domainCommand(cfg, sub[1:], stdout, stderr)
	default:
		fs.Usage()
		return 2
	}
	log := newLogger(cfg.General, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app, err := start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// The end-to-end suites read the address from this line: "http" stays
	// its first attribute (README, "Logs").
	log.Info("server started", "http", app.Addr(), "websocket", "ws://"+app.Addr()+cfg.WebSocket.Path,
		"metrics", metricsURL(cfg, app.Addr()), "hosts", cfg.General.Hosts, "backend", cfg.Storage.Backend, "version", version())
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-app.Failed():
		log.Error("listener failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.General.ShutdownTimeout.Duration)
	defer cancel()
	if err := app.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

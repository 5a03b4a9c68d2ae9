// Command server runs the WebSocket-first XMPP group-chat server, and its
// admin subcommands. It holds wiring only: configuration, the stores, the
// HTTP listener and signal handling; the protocol lives in ws and rooms.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: server [-config file.toml]            run the server
       server [-config file.toml] user ...   manage accounts (server user -h)
       server [-config file.toml] domain purge DOMAIN`

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
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch fs.Arg(0) {
	case "":
	case "user":
		return userCommand(cfg, fs.Args()[1:], stdin, stdout, stderr)
	case "domain":
		return domainCommand(cfg, fs.Args()[1:], stdout, stderr)
	default:
		fs.Usage()
		return 2
	}
	level, _ := parseLevel(cfg.General.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app, err := start(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("server started", "http", app.Addr(), "websocket", "ws://"+app.Addr()+cfg.WebSocket.Path, "hosts", cfg.General.Hosts, "backend", cfg.Storage.Backend)
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

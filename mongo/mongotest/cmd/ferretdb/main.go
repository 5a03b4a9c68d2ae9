// Command ferretdb runs FerretDB v1 (SQLite storage) as a local MongoDB
// wire server, so the server's MongoDB backend can be tried and load-tested
// on a machine without MongoDB:
//
//	go run ./mongo/mongotest/cmd/ferretdb -listen 127.0.0.1:27017 -dir data-ferretdb
//
// It is a development aid, like mongotest: production uses real MongoDB.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on (loopback)")
	dir := flag.String("dir", "data-ferretdb", "directory for the SQLite files")
	flag.Parse()
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o700)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "ferretdb listening:", db.MongoDBURI())
	db.Run(ctx)
}

// Command nats runs the embedded nats-server (JetStream on, one loopback
// listener) that the cluster tests use, so that several xmppws nodes can be
// tried and load-tested on a machine without nats-server installed:
//
//	go run ./cluster/natstest/cmd/nats -listen 127.0.0.1:4222 -dir data-nats
//
// It is a development aid, like the FerretDB command: production runs
// nats-server (Debian packages it) or a NATS cluster.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4222", "TCP address to listen on (loopback)")
	dir := flag.String("dir", "data-nats", "directory for JetStream's files")
	flag.Parse()
	if err := run(*listen, *dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(listen, dir string) error {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("port %q: %w", portText, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoSigs: true, JetStream: true, StoreDir: abs})
	if err != nil {
		return err
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("nats did not start on %s", listen)
	}
	fmt.Fprintln(os.Stderr, "nats listening:", ns.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// Command xmppload is the load generator of this project, in the spirit of
// amoc and Tsung: it logs in many users over RFC 7395 WebSockets, puts them
// in group-chat rooms, sends timestamped groupchat messages and reports what
// came back.
//
//	go run ./e2e/cmd/xmppload [flags]
//
// With the server running (go run ./server, data in ./data), a first run:
//
//	go run ./e2e/cmd/xmppload -create-users -admin-socket data/admin.sock \
//	    -users 200 -rooms 4 -room-size 50 -duration 10s
//
// # Users
//
// User i is <user-prefix><i as 4+ digits>@<domain> (load0001@localhost,
// load0002@localhost, ...) with password -password. With -create-users the
// tool creates them through the running server's admin socket
// (-admin-socket, <data_dir>/admin.sock; accounts that exist are kept as
// they are). Otherwise they must exist already, e.g.
//
//	for i in $(seq -f %04g 1 200); do echo load | go run ./server user add -create-database load$i@localhost; done
//
// # Rooms
//
// -rooms R rooms of -room-size S occupants: room r holds users r*S+1 ..
// r*S+S, wrapping around, so users are in several rooms when R×S > users.
// In -mode muclight the first of them creates the room with a MUC Light
// #create IQ to room@<service> listing the others as members. In -mode muc
// (XEP-0045) each joins room@<service>/<own bare JID> with
// <x xmlns='http://jabber.org/protocol/muc'/> and waits for its
// self-presence (status 110); the first accepts the default configuration
// and grants the others membership. That runs the same workload against the
// server's legacy mode and other XMPP servers. The service is discovered
// (disco#items, disco#info) unless -service names it. Rooms are named after
// the run and destroyed at the end unless -keep-rooms.
//
// # Traffic and figures
//
// Every user in a room sends groupchat messages to its rooms in turn: in
// total -rate per second (0: as fast as possible), each user with at most
// -window messages not yet reflected back to it by the room. Each body
// carries the sender, a sequence number and the send time, so every
// receiver computes the end-to-end latency. At full speed that latency is
// mostly time spent queued (about senders × window × occupants ÷
// deliveries/s, Little's law): measure latency with a -rate below the
// saturation point. After -warmup, -duration is measured (or -messages,
// whichever ends first); then the tool waits up to
// -drain for deliveries still under way, destroys the rooms and closes every
// session with <close/>.
//
// While it runs, a progress line goes to stderr every second. At the end a
// summary goes to stdout (JSON with -json): sessions established and failed
// with reasons, messages sent, deliveries received against those expected
// (each message times its room's occupants: what a lossless run delivers),
// deliveries per second, latency p50/p90/p99/p99.9/max (log-linear
// histogram, within 0.8%), stanza errors by condition, stream errors, and
// with -server-pid the server's RSS (/proc/PID/status) and the CPU used by
// the server and by the tool; with -metrics-url the server's
// process_resident_memory_bytes.
//
// -server-pid must name the server process itself: under "go run ./server"
// that is the child the go command starts (pgrep -f /exe/server), not the
// go command; or build the server first (go build -o xmppws ./server).
//
// Ctrl-C stops early and still prints the summary; a second Ctrl-C kills.
// -cpuprofile writes the tool's own CPU profile, to see whether the tool
// or the server limits a run. The tool runs with GOGC=400 and a soft
// memory limit of 1 GiB unless the GOGC (or GOMEMLIMIT) environment
// variable says otherwise: it parses every delivery, and fewer garbage
// collections buy it about half as many deliveries/s again.
//
// # The server's limits
//
// xmppws paces every session ([websocket.shaper], by default 10 stanzas/s
// after a burst of 100): a run with few users at full speed measures that
// pacing, not the server, unless its config sets stanza_rate = 0.0 and
// byte_rate = 0.0 there. Logins count against
// websocket.max_unauthenticated_per_address (128) until they have bound, so
// keep -concurrency below it.
//
// # Loopback only
//
// The tool refuses a -url (or -metrics-url) whose host is not a loopback
// address or localhost unless -allow-remote is given: this workplace
// forbids generating load against machines other than one's own, and a
// load test against someone else's server without their consent is an
// attack.
//
// Exit status: 0 for a lossless run without errors, 3 for a run that lost
// deliveries or saw errors, 1 when the run could not take place, 2 for bad
// flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/wschat/xmppws/e2e/load"
)

const usage = `usage: xmppload [flags]

Logs in -users sessions over WebSocket, puts them in -rooms rooms of
-room-size occupants (-mode muclight or muc), sends timestamped groupchat
messages for -duration and prints sessions, deliveries against the lossless
count, deliveries/s, latency percentiles and errors (progress on stderr, the
summary on stdout). Users are <user-prefix>0001@<domain>... with -password:
create them with -create-users -admin-socket <data_dir>/admin.sock, or
beforehand with "go run ./server user add". Only loopback targets unless
-allow-remote. Details: go doc ./e2e/cmd/xmppload

`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := load.DefaultConfig()
	fs := flag.NewFlagSet("xmppload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "WebSocket endpoint (RFC 7395) of the server; several, comma-separated, spread the users over them (a failed login tries the next)")
	fs.StringVar(&cfg.Domain, "domain", cfg.Domain, "XMPP domain of the users")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "sessions, one user each")
	fs.StringVar(&cfg.UserPrefix, "user-prefix", cfg.UserPrefix, "user i is <prefix><i, 4+ digits>@domain")
	fs.StringVar(&cfg.Password, "password", cfg.Password, "password of every user")
	fs.BoolVar(&cfg.CreateUsers, "create-users", cfg.CreateUsers, "create the users through the running server's admin socket first")
	fs.StringVar(&cfg.AdminSocket, "admin-socket", cfg.AdminSocket, "the server's admin socket, <data_dir>/admin.sock (with -create-users)")
	fs.IntVar(&cfg.Rooms, "rooms", cfg.Rooms, "rooms")
	fs.IntVar(&cfg.RoomSize, "room-size", cfg.RoomSize, "occupants per room (users are reused when rooms × room-size > users)")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "room protocol: muclight (#create) or muc (XEP-0045 join)")
	fs.StringVar(&cfg.Service, "service", cfg.Service, "room service domain (default: discovered, else muclight.<domain> or conference.<domain>)")
	fs.BoolVar(&cfg.KeepRooms, "keep-rooms", cfg.KeepRooms, "leave the rooms on the server at the end")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "messages per second in total; 0 = as fast as the window allows")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "messages per sender sent but not yet reflected back by the room")
	fs.IntVar(&cfg.Messages, "messages", cfg.Messages, "stop after this many measured messages (0 = only -duration)")
	fs.IntVar(&cfg.PerSender, "per-sender", cfg.PerSender, "stop each sender after this many measured messages (0 = no cap); with -window as large, a burst")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "traffic before the measured period, left out of the figures")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured period")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "wait at most this long after sending for deliveries under way")
	fs.IntVar(&cfg.BodySize, "body-size", cfg.BodySize, "pad message bodies to at least this many bytes")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "logins, user creations and room setups in parallel")
	fs.IntVar(&cfg.ServerPID, "server-pid", cfg.ServerPID, "server process to read RSS and CPU time of (Linux /proc)")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", cfg.MetricsURL, "server's Prometheus endpoint, e.g. http://127.0.0.1:5280/metrics")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", cfg.AllowRemote, "allow a non-loopback -url (only against a server you may load)")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write the tool's own CPU profile to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xmppload: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "xmppload:", err)
		return 2
	}

	if os.Getenv("GOGC") == "" {
		// Most of the tool's CPU goes to parsing deliveries and collecting
		// the garbage that leaves; fewer collections make the tool less of
		// the bottleneck (about 1.5× the deliveries/s) for some memory,
		// which the soft limit keeps from growing past 1 GiB needlessly.
		debug.SetGCPercent(400)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(1 << 30)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // from now on a second Ctrl-C kills at once
	}()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "xmppload:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "xmppload:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	sum, err := load.Run(ctx, cfg, stderr)
	if *jsonOut {
		sum.WriteJSON(stdout)
	} else {
		sum.WriteText(stdout)
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "xmppload:", err)
		return 1
	case !sum.Lossless() || sum.Errors() > 0:
		return 3
	}
	return 0
}

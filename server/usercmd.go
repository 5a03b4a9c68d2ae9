package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

const userUsage = `usage: server [-config file.toml] user add|del|passwd JID
       server [-config file.toml] user list [DOMAIN]

add and passwd read the password from a prompt, or from the first line of
standard input when it is not a terminal. del also removes the user from
every room (with the usual owner handover) and deletes their blocking list.`

const domainUsage = `usage: server [-config file.toml] domain purge DOMAIN

deletes every account, room and blocking list of a served domain.`

// domainCommand runs "domain purge DOMAIN".
func domainCommand(cfg Config, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "purge" {
		fmt.Fprintln(stderr, domainUsage)
		return 2
	}
	return runAdmin(cfg, adminRequest{Cmd: "domain_purge", JID: args[1]}, stdout, stderr)
}

// userCommand runs "user ..." against the running server's admin socket, or
// directly against the store when no server is running.
func userCommand(cfg Config, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, userUsage)
		return 2
	}
	req := adminRequest{Cmd: "user_" + args[0]}
	switch args[0] {
	case "add", "passwd", "del":
		if len(args) != 2 {
			fmt.Fprintln(stderr, userUsage)
			return 2
		}
		req.JID = args[1]
	case "list":
		if len(args) > 2 {
			fmt.Fprintln(stderr, userUsage)
			return 2
		}
		if len(args) == 2 {
			req.JID = args[1]
		}
	default:
		fmt.Fprintln(stderr, userUsage)
		return 2
	}
	if args[0] == "add" || args[0] == "passwd" {
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		req.Password = pw
	}
	return runAdmin(cfg, req, stdout, stderr)
}

// runAdmin sends a request to the running server, or runs it offline.
func runAdmin(cfg Config, req adminRequest, stdout, stderr io.Writer) int {
	resp, err := callAdmin(cfg.Storage.DataDir, req)
	if errors.Is(err, errNoServer) {
		resp, err = offlineAdmin(cfg, req)
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintln(stderr, "error:", resp.Error)
		return 1
	}
	for _, u := range resp.Users {
		fmt.Fprintln(stdout, u)
	}
	return 0
}

// offlineAdmin opens the stores itself (possible only while no server holds
// them). A hub without sessions applies room changes; nobody is online to be
// notified.
func offlineAdmin(cfg Config, req adminRequest) (adminResponse, error) {
	st, err := openStores(cfg)
	if err != nil {
		return adminResponse{}, err
	}
	defer st.Close()
	hub := rooms.NewHub(cfg.rooms, cfg.General.Hosts, st.rooms, nobody{}, rooms.HubOptions{
		MAM: rooms.MAMOptions{Archive: st.archive}, StoreTimeout: cfg.Storage.MongoDB.OpTimeout.Duration,
	})
	defer hub.Close()
	a := &admin{hosts: cfg.General.Hosts, accounts: st.accounts, hub: hub}
	return a.do(context.Background(), req), nil
}

// nobody is the Deliverer of an offline hub.
type nobody struct{}

func (nobody) Deliver(xmpp.JID, *xmpp.Outbound) bool             { return false }
func (nobody) DeliverPaced(_, _ xmpp.JID, _ *xmpp.Outbound) bool { return false }

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(pw) != string(again) {
			return "", errors.New("the passwords differ")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

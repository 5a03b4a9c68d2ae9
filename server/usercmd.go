package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

const userUsage = `usage: server [-config file.toml] user add [-create-database] JID
       server [-config file.toml] user del|passwd JID
       server [-config file.toml] user list [DOMAIN]
       server [-config file.toml] user tokens JID
       server [-config file.toml] user revoke-tokens JID [TOKEN-ID]

add and passwd read the password from a prompt, or from the first line of
standard input when it is not a terminal. del also removes the user from
every room (with the usual owner handover) and deletes their blocking list.
With no server running, a command works on the database itself, and one
that does not exist yet is an error: only add with -create-database makes
it (the first account of a new installation). tokens lists the user's FAST
login tokens (id, client, created, last used, expiry; never the token
itself); revoke-tokens ends one of them, or all. -config may also follow
the subcommand.`

const domainUsage = `usage: server [-config file.toml] domain purge DOMAIN

deletes every account, room and blocking list of a served domain.`

// domainCommand runs "domain purge DOMAIN".
func domainCommand(cfg Config, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "purge" {
		fmt.Fprintln(stderr, domainUsage)
		return 2
	}
	return runAdmin(cfg, adminRequest{Cmd: "domain_purge", JID: args[1]}, false, stdout, stderr)
}

// userCommand runs "user ..." against the running server's admin socket, or
// directly against the store when no server is running.
func userCommand(cfg Config, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	create := false
	if i := slices.Index(args, "-create-database"); i >= 0 {
		create = true
		args = slices.Delete(slices.Clone(args), i, i+1)
	}
	if len(args) == 0 || (create && args[0] != "add") {
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
	case "tokens":
		if len(args) != 2 {
			fmt.Fprintln(stderr, userUsage)
			return 2
		}
		req.JID = args[1]
	case "revoke-tokens":
		if len(args) != 2 && len(args) != 3 {
			fmt.Fprintln(stderr, userUsage)
			return 2
		}
		req.Cmd, req.JID = "user_revoke_tokens", args[1]
		if len(args) == 3 {
			req.TokenID = args[2]
		}
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
	return runAdmin(cfg, req, create, stdout, stderr)
}

// runAdmin sends a request to the running server, or runs it offline
// (creating a missing database only when create is set).
func runAdmin(cfg Config, req adminRequest, create bool, stdout, stderr io.Writer) int {
	resp, err := callAdmin(cfg.Storage.DataDir, req)
	if errors.Is(err, errNoServer) {
		resp, err = offlineAdmin(cfg, req, create)
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
func offlineAdmin(cfg Config, req adminRequest, create bool) (adminResponse, error) {
	st, err := openStores(cfg, create)
	if err != nil {
		return adminResponse{}, err
	}
	defer st.Close()
	hub := rooms.NewHub(cfg.rooms, cfg.General.Hosts, st.rooms, nobody{}, rooms.HubOptions{
		MAM: rooms.MAMOptions{Archive: st.archive}, StoreTimeout: cfg.Storage.MongoDB.OpTimeout.Duration,
	})
	defer hub.Close()
	a := &admin{hosts: cfg.General.Hosts, accounts: st.accounts, hub: hub, push: st.push}
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

// configAfter takes "-config FILE" (or -config=FILE, or with two dashes) out
// of a subcommand's arguments, so that it may follow the subcommand as well
// as precede it. It returns the other arguments and the file, "" if none.
func configAfter(args []string) (rest []string, path string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, "", errors.New("-config needs a file name")
			}
			i++
			value = args[i]
		}
		if path != "" && path != value {
			return nil, "", errors.New("-config given twice with different files")
		}
		path = value
	}
	return rest, path, nil
}

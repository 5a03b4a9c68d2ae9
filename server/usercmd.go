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
)

const userUsage = `usage: server [-config file.toml] user add|del|passwd JID
       server [-config file.toml] user list [DOMAIN]

add and passwd read the password from a prompt, or from the first line of
standard input when it is not a terminal.`

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

// offlineAdmin opens the store itself (possible only while no server holds it).
func offlineAdmin(cfg Config, req adminRequest) (adminResponse, error) {
	st, err := openStore(cfg)
	if err != nil {
		return adminResponse{}, err
	}
	defer st.Close()
	a := &admin{hosts: cfg.General.Hosts, accounts: st}
	return a.do(context.Background(), req), nil
}

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

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

// AdminSocketName is the Unix socket, inside the data directory, through
// which the admin commands reach a running server (which holds the embedded
// store's file lock).
const AdminSocketName = "admin.sock"

// adminRequest is one line of the admin protocol; the socket is mode 0600,
// so only the server's own OS user can speak it.
type adminRequest struct {
	Cmd      string `json:"cmd"`
	JID      string `json:"jid,omitempty"`
	Password string `json:"password,omitempty"`
	// TokenID names one FAST token for user_revoke_tokens; empty is all.
	TokenID string `json:"token_id,omitempty"`
}

type adminResponse struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
	Users []string `json:"users,omitempty"`
}

// admin executes account commands against a store; the same code serves the
// socket and the offline (direct store) path.
type admin struct {
	hosts    []string
	accounts account.Store
	hub      *rooms.Hub
	sessions interface{ CloseUser(xmpp.JID) } // nil offline
	push     pushstore.Store                  // registrations deleted with the account; nil: none
}

func (a *admin) do(ctx context.Context, req adminRequest) adminResponse {
	users, err := a.exec(ctx, req)
	if err != nil {
		return adminResponse{Error: err.Error()}
	}
	return adminResponse{OK: true, Users: users}
}

func (a *admin) exec(ctx context.Context, req adminRequest) ([]string, error) {
	if req.Cmd == "user_list" {
		return a.accounts.Accounts(ctx, req.JID)
	}
	if req.Cmd == "domain_purge" {
		return nil, a.purgeDomain(ctx, req.JID)
	}
	j, err := xmpp.ParseJID(req.JID)
	if err != nil || j.Local == "" || !j.IsBare() {
		return nil, fmt.Errorf("%q is not a user's bare JID (user@domain)", req.JID)
	}
	if !contains(a.hosts, j.Domain) {
		return nil, fmt.Errorf("domain %q is not served (general.hosts)", j.Domain)
	}
	switch req.Cmd {
	case "user_add", "user_passwd":
		rec, err := account.New(j, req.Password)
		if err != nil {
			return nil, err
		}
		if req.Cmd == "user_add" {
			err = a.accounts.CreateAccount(ctx, rec)
		} else {
			err = a.accounts.SetAccount(ctx, rec)
		}
		return nil, err
	case "user_tokens", "user_revoke_tokens":
		return a.tokens(ctx, req, j)
	case "user_del":
		if err := a.accounts.DeleteAccount(ctx, j); err != nil {
			return nil, err
		}
		if a.sessions != nil {
			a.sessions.CloseUser(j)
		}
		// The account is gone either way; a failure here leaves rooms to
		// clean and is reported so the operator can run the command again.
		if err := a.hub.RemoveUser(ctx, j); err != nil {
			return nil, fmt.Errorf("account deleted, but removing it from rooms failed: %w", err)
		}
		if err := a.deletePush(ctx, j); err != nil {
			return nil, fmt.Errorf("account deleted, but removing its push registrations failed: %w", err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}

// purgeDomain deletes a domain's accounts, rooms and blocking lists (the
// remove_domain of the room store).
func (a *admin) purgeDomain(ctx context.Context, domain string) error {
	if !contains(a.hosts, domain) {
		return fmt.Errorf("domain %q is not served (general.hosts)", domain)
	}
	users, err := a.accounts.Accounts(ctx, domain)
	if err != nil {
		return err
	}
	for _, u := range users {
		j, err := xmpp.ParseJID(u)
		if err != nil {
			continue
		}
		if err := a.accounts.DeleteAccount(ctx, j); err != nil && !errors.Is(err, account.ErrNotFound) {
			return err
		}
		if a.sessions != nil {
			a.sessions.CloseUser(j)
		}
		if err := a.deletePush(ctx, j); err != nil {
			return err
		}
	}
	return a.hub.RemoveDomain(ctx, domain)
}

// deletePush forgets a deleted account's push registrations, so that an
// account created again with the name does not inherit them.
func (a *admin) deletePush(ctx context.Context, j xmpp.JID) error {
	if a.push == nil {
		return nil
	}
	return a.push.DeletePushAccount(ctx, j)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// adminServer listens on the admin socket while the server runs.
type adminServer struct {
	ln   net.Listener
	path string
	a    *admin
	log  *slog.Logger
	wg   sync.WaitGroup
}

func listenAdmin(dir string, a *admin, log *slog.Logger) (*adminServer, error) {
	// With the MongoDB backend nothing else creates the data directory.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	path := filepath.Join(dir, AdminSocketName)
	// Only the embedded store has a file lock that keeps a second server
	// out; with MongoDB two can share a data directory. A socket that
	// answers belongs to a live server: refuse rather than steal it. One
	// that refuses connections was left by a crashed server.
	if c, err := net.DialTimeout("unix", path, 2*time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another server is running with this data directory", path)
	}
	ln, err := listenPrivate(dir, path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	s := &adminServer{ln: ln, path: path, a: a, log: log}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// adminListenHook, when set by a test, sees each socket right after it was
// bound and before it is moved into place.
var adminListenHook func(bound string)

// listenPrivate binds the socket in a fresh 0700 directory, sets its mode
// to 0600 there and only then renames it to path: whatever the umask, no
// other user can reach it at any moment. Renaming replaces a stale socket.
func listenPrivate(dir, path string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(dir, ".admin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, AdminSocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The listener would unlink the temporary name on Close; Close removes
	// the final one instead.
	ln.SetUnlinkOnClose(false)
	if adminListenHook != nil {
		adminListenHook(bound)
	}
	if err := os.Chmod(bound, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(bound, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (s *adminServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			var req adminRequest
			if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
				json.NewEncoder(c).Encode(adminResponse{Error: "bad request: " + err.Error()})
				return
			}
			resp := s.a.do(context.Background(), req)
			s.log.Info("admin command", "cmd", req.Cmd, "jid", req.JID, "ok", resp.OK)
			json.NewEncoder(c).Encode(resp)
		}()
	}
}

func (s *adminServer) Close() error {
	err := s.ln.Close()
	os.Remove(s.path)
	s.wg.Wait()
	return err
}

// errNoServer means no server answers on the admin socket.
var errNoServer = errors.New("no running server")

// callAdmin sends one request to a running server.
func callAdmin(dir string, req adminRequest) (adminResponse, error) {
	c, err := net.DialTimeout("unix", filepath.Join(dir, AdminSocketName), 2*time.Second)
	if err != nil {
		return adminResponse{}, errNoServer
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return adminResponse{}, err
	}
	var resp adminResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return adminResponse{}, fmt.Errorf("admin socket: %w", err)
	}
	return resp, nil
}

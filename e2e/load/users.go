package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// adminRequest and adminResponse are one exchange of the server's admin
// socket protocol: one JSON request per connection, one JSON answer.
type adminRequest struct {
	Cmd      string `json:"cmd"`
	JID      string `json:"jid"`
	Password string `json:"password,omitempty"`
}

type adminResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// errUserExists marks an account the server already has.
var errUserExists = errors.New("user exists")

// addUser asks the running server to create one account.
func addUser(ctx context.Context, socket, jid, password string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	if err := json.NewEncoder(c).Encode(adminRequest{Cmd: "user_add", JID: jid, Password: password}); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	var resp adminResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	switch {
	case resp.OK:
		return nil
	case strings.Contains(resp.Error, "already exists"):
		return errUserExists
	}
	return fmt.Errorf("admin socket: user_add %s: %s", jid, resp.Error)
}

// createUsers creates every user of the run, Concurrency at a time, and
// stops at the first failure other than an existing account: without its
// users the run cannot mean anything.
func (e *engine) createUsers(ctx context.Context) error {
	var created, existing, done atomic.Int64
	e.setStatus(func() string {
		return fmt.Sprintf("creating users: %d/%d", done.Load(), e.cfg.Users)
	})
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.forEach(ctx, e.cfg.Users, func(i int) {
		defer done.Add(1)
		err := addUser(ctx, e.cfg.AdminSocket, e.cfg.userLocal(i)+"@"+e.cfg.Domain, e.cfg.Password)
		switch {
		case err == nil:
			created.Add(1)
		case errors.Is(err, errUserExists):
			existing.Add(1)
		default:
			cancel(err)
		}
	})
	e.sum.UsersCreated, e.sum.UsersExisting = int(created.Load()), int(existing.Load())
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("load: creating users: %w", err)
	}
	return nil
}

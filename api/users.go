package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// User is a user as the API shows it.
type User struct {
	JID string `json:"jid"`
}

// UserPage is a page of users.
type UserPage struct {
	Users []User `json:"users"`
	// Next is the cursor of the next page (the after parameter); absent on
	// the last page.
	Next string `json:"next,omitempty"`
}

// Session is a bound session as the API shows it.
type Session struct {
	JID          string `json:"jid"`
	PendingBytes int    `json:"pending_bytes"`
	// Node is the cluster node holding the session; absent on one node.
	Node string `json:"node,omitempty"`
}

type createUserBody struct {
	JID      string `json:"jid"`
	Password string `json:"password"`
}

func (s *Server) createUser(r *http.Request) (int, any, error) {
	var b createUserBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	j, err := s.userJID("jid", b.JID)
	if err != nil {
		return 0, nil, err
	}
	rec, err := account.New(j, b.Password)
	if err != nil {
		return 0, nil, badRequest("password: %v", err)
	}
	if err := s.o.Accounts.CreateAccount(r.Context(), rec); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, User{JID: j.String()}, nil
}

func (s *Server) listUsers(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	domain := q.Get("domain")
	if domain != "" && !s.hosts[domain] {
		return 0, nil, invalidJID("domain", domain)
	}
	limit, err := limitOf(r, 100, 1000)
	if err != nil {
		return 0, nil, err
	}
	all, err := s.o.Accounts.Accounts(r.Context(), domain)
	if err != nil {
		return 0, nil, err
	}
	slices.Sort(all) // the cursor is the order of the strings
	after := q.Get("after")
	i, _ := slices.BinarySearch(all, after)
	if i < len(all) && all[i] == after {
		i++
	}
	page := UserPage{Users: []User{}}
	for ; i < len(all) && len(page.Users) < limit; i++ {
		page.Users = append(page.Users, User{JID: all[i]})
	}
	if i < len(all) {
		page.Next = page.Users[len(page.Users)-1].JID
	}
	return http.StatusOK, page, nil
}

// deleteUser deletes the account, ends its sessions and takes it out of
// its rooms, as the user del command does.
func (s *Server) deleteUser(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	if err := s.o.Accounts.DeleteAccount(r.Context(), j); err != nil {
		return 0, nil, err
	}
	s.o.Sessions.CloseUser(j)
	if err := s.o.Rooms.RemoveUser(r.Context(), j); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type passwordBody struct {
	Password string `json:"password"`
}

func (s *Server) setPassword(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	var b passwordBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	rec, err := account.New(j, b.Password)
	if err != nil {
		return 0, nil, badRequest("password: %v", err)
	}
	if err := s.o.Accounts.SetAccount(r.Context(), rec); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// SessionList is a user's sessions. In a cluster it holds every node's,
// each with its node, and names the nodes that hold some but did not
// answer in time (their sessions are missing from the list).
type SessionList struct {
	Sessions    []Session `json:"sessions"`
	Unreachable []string  `json:"unreachable,omitempty"`
}

// Closed is the answer to closing sessions in a cluster when some node
// holding them did not answer in time: what was closed, and which nodes
// may still have sessions open. When every node answered the answer is
// 204 with no body, as on one node.
type Closed struct {
	Closed      int      `json:"closed"`
	Unreachable []string `json:"unreachable"`
}

// listSessions lists the user's sessions: this node's, and in a cluster
// every other node's the session directory names.
func (s *Server) listSessions(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	out := SessionList{Sessions: []Session{}}
	node := ""
	if s.o.Cluster != nil {
		node = s.o.Cluster.Node()
	}
	for _, si := range s.o.Sessions.Sessions(j) {
		out.Sessions = append(out.Sessions, Session{JID: si.JID.String(), PendingBytes: si.PendingBytes, Node: node})
	}
	if s.o.Cluster != nil {
		remote, unreachable := s.o.Cluster.RemoteSessions(r.Context(), j)
		for _, rs := range remote {
			out.Sessions = append(out.Sessions, Session{JID: rs.JID.String(), PendingBytes: rs.PendingBytes, Node: rs.Node})
		}
		out.Unreachable = unreachable
		slices.SortStableFunc(out.Sessions, func(a, b Session) int { return strings.Compare(a.Node, b.Node) })
	}
	return http.StatusOK, out, nil
}

// closeSessions ends every session of the user, on every node in a
// cluster.
func (s *Server) closeSessions(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	closed := 0
	for _, si := range s.o.Sessions.Sessions(j) {
		if s.o.Sessions.CloseSession(si.JID) {
			closed++
		}
	}
	if s.o.Cluster != nil {
		n, unreachable := s.o.Cluster.CloseRemote(r.Context(), j)
		if len(unreachable) > 0 {
			return http.StatusOK, Closed{Closed: closed + n, Unreachable: unreachable}, nil
		}
	}
	return http.StatusNoContent, nil, nil
}

// closeSession ends one session, wherever it is in a cluster.
func (s *Server) closeSession(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	full, err := xmpp.NewJID(j.Local, j.Domain, r.PathValue("resource"))
	if err != nil || full.Resource == "" {
		return 0, nil, invalidJID("resource", r.PathValue("resource"))
	}
	if s.o.Sessions.CloseSession(full) {
		return http.StatusNoContent, nil, nil
	}
	where := "on this node"
	if s.o.Cluster != nil {
		n, unreachable := s.o.Cluster.CloseRemote(r.Context(), full)
		switch {
		case n > 0:
			return http.StatusNoContent, nil, nil
		case len(unreachable) > 0:
			return http.StatusOK, Closed{Closed: 0, Unreachable: unreachable}, nil
		}
		where = "on any node"
	}
	return 0, nil, &Error{Status: http.StatusNotFound, Code: CodeNoSession, Condition: string(xmpp.ItemNotFound), Message: "no such session " + where}
}

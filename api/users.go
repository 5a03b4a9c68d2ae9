package api

import (
	"net/http"
	"slices"

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

// listSessions lists the user's sessions on this node.
func (s *Server) listSessions(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	out := []Session{}
	for _, si := range s.o.Sessions.Sessions(j) {
		out = append(out, Session{JID: si.JID.String(), PendingBytes: si.PendingBytes})
	}
	return http.StatusOK, map[string][]Session{"sessions": out}, nil
}

// closeSessions ends every session of the user on this node.
func (s *Server) closeSessions(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	for _, si := range s.o.Sessions.Sessions(j) {
		s.o.Sessions.CloseSession(si.JID)
	}
	return http.StatusNoContent, nil, nil
}

func (s *Server) closeSession(r *http.Request) (int, any, error) {
	j, err := s.userJID("jid", r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	full, err := xmpp.NewJID(j.Local, j.Domain, r.PathValue("resource"))
	if err != nil || full.Resource == "" {
		return 0, nil, invalidJID("resource", r.PathValue("resource"))
	}
	if !s.o.Sessions.CloseSession(full) {
		return 0, nil, &Error{Status: http.StatusNotFound, Code: CodeNoSession, Condition: string(xmpp.ItemNotFound), Message: "no such session on this node"}
	}
	return http.StatusNoContent, nil, nil
}

package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

// blockingRooms holds every call until released, to fill the in-flight
// bound.
type blockingRooms struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingRooms) Call(ctx context.Context, as xmpp.JID, req room.Request) (rooms.CallResult, error) {
	b.entered <- struct{}{}
	<-b.release
	return rooms.CallResult{}, nil
}
func (b *blockingRooms) ActingOccupant(context.Context, xmpp.JID) (xmpp.JID, error) {
	return xmpp.MustParseJID("alice@localhost"), nil
}
func (b *blockingRooms) Services() map[string]string {
	return map[string]string{"muclight.localhost": "localhost"}
}
func (b *blockingRooms) ServiceDomain(host string) string           { return "muclight." + host }
func (b *blockingRooms) PageSizes() (int, int)                      { return 50, 50 }
func (b *blockingRooms) RemoveUser(context.Context, xmpp.JID) error { return nil }

type noSessions struct{}

func (noSessions) Sessions(xmpp.JID) []ws.SessionInfo { return nil }
func (noSessions) CloseSession(xmpp.JID) bool         { return false }
func (noSessions) CloseUser(xmpp.JID)                 {}

const tokA, tokB = "token-a-0123456789abcdef0123456789", "token-b-0123456789abcdef0123456789"

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body map[string]Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	return body["error"].Code
}

// TestInFlightBound: with max_in_flight requests waiting on the rooms, the
// next is answered 503 busy at once, and served again once one finishes.
func TestInFlightBound(t *testing.T) {
	br := &blockingRooms{entered: make(chan struct{}), release: make(chan struct{})}
	s := New(Options{Tokens: []Token{{"a", tokA}}, Hosts: []string{"localhost"}, Rooms: br, Sessions: noSessions{}, MaxInFlight: 2})
	req := func() *http.Request {
		r := httptest.NewRequest("DELETE", "/api/v1/rooms/r@muclight.localhost", nil)
		r.Header.Set("Authorization", "Bearer "+tokA)
		return r
	}
	done := make(chan int, 2)
	for range 2 {
		go func() {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req())
			done <- rec.Code
		}()
		<-br.entered
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req())
	if rec.Code != http.StatusServiceUnavailable || errorCode(t, rec) != CodeBusy || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the bound: %d %s", rec.Code, rec.Body)
	}
	for range 2 {
		br.release <- struct{}{}
		if c := <-done; c != http.StatusNoContent {
			t.Fatalf("a held request ended %d", c)
		}
	}
	go func() { <-br.entered; br.release <- struct{}{} }()
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req())
	if rec.Code != http.StatusNoContent {
		t.Fatalf("after the slots came free: %d %s", rec.Code, rec.Body)
	}
}

// TestTokens: each configured token is accepted under its own name; a
// prefix, a longer string or another scheme is not.
func TestTokens(t *testing.T) {
	s := New(Options{Tokens: []Token{{"a", tokA}, {"b", tokB}}})
	for h, want := range map[string]string{
		"Bearer " + tokA:       "a",
		"bearer " + tokB:       "b",
		"Bearer " + tokA[:20]:  "",
		"Bearer " + tokA + "x": "",
		"Basic " + tokA:        "",
		"Bearer":               "",
		"":                     "",
	} {
		r := httptest.NewRequest("GET", "/api/v1/users", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := s.authorize(r); got != want {
			t.Errorf("%q: authorised as %q, want %q", h, got, want)
		}
	}
}

// TestRoomErrorStatus: each XMPP condition the room core answers with has
// its HTTP status and stable code.
func TestRoomErrorStatus(t *testing.T) {
	for cond, want := range map[xmpp.Condition]struct {
		status int
		code   string
	}{
		xmpp.ItemNotFound:         {404, CodeRoomNotFound},
		xmpp.NotAllowed:           {403, CodeNotAllowed},
		xmpp.Forbidden:            {403, CodeNotAllowed},
		xmpp.RegistrationRequired: {403, CodeNotAllowed},
		xmpp.Conflict:             {409, CodeConflict},
		xmpp.BadRequest:           {400, CodeBadRequest},
		xmpp.NotAcceptable:        {400, CodeBadRequest},
		xmpp.ResourceConstraint:   {429, CodeRateLimited},
		xmpp.PolicyViolation:      {429, CodeRateLimited},
		xmpp.ServiceUnavailable:   {503, CodeUnavailable},
		xmpp.InternalServerError:  {500, CodeInternal},
	} {
		e := roomError(&room.Error{Type: "cancel", Condition: string(cond)})
		if e.Status != want.status || e.Code != want.code || e.Condition != string(cond) || e.Message == "" {
			t.Errorf("%s: %+v, want %d %s", cond, e, want.status, want.code)
		}
	}
}

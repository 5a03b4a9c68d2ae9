// Package api is the admin HTTP API (JSON under /api/v1, described by the
// OpenAPI document it serves at /api/v1/openapi.json): an application's
// backend creates users and rooms, manages members, posts messages as a
// user or as the room, reads history and closes sessions.
//
// Every room change is a room request handed to the same room core that
// XMPP clients reach (rooms.Hub.Call), so the rules, the limits, the
// archive and the occupants' notifications are the ones a client's request
// gets; the API never writes a room to the store itself. It must never log
// a bearer token or a password, and never serve a request that did not
// present one of the configured tokens.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/cluster/directory"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/ws"
	"github.com/wschat/xmppws/xmpp"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI is the API's OpenAPI 3 document, as served.
func OpenAPI() []byte { return openAPIDoc }

// Token is one configured bearer token and the name it is logged under.
type Token struct {
	Name  string
	Token string
}

// Rooms is the room service as the API uses it (rooms.Hub).
type Rooms interface {
	Call(ctx context.Context, as xmpp.JID, req room.Request) (rooms.CallResult, error)
	ActingOccupant(ctx context.Context, rm xmpp.JID) (xmpp.JID, error)
	Services() map[string]string
	ServiceDomain(host string) string
	PageSizes() (def, max int)
	RemoveUser(ctx context.Context, user xmpp.JID) error
}

// Sessions is the session table as the API uses it (ws.Server).
type Sessions interface {
	Sessions(user xmpp.JID) []ws.SessionInfo
	CloseSession(full xmpp.JID) bool
	CloseUser(user xmpp.JID)
}

// Cluster is the other nodes' sessions as the API reaches them (the
// cluster's session directory, *directory.Directory): in a cluster the
// session endpoints of any node list and close a user's sessions on every
// node. Nil on one node.
type Cluster interface {
	// Node is this node's name, shown with its own sessions.
	Node() string
	// RemoteSessions lists the user's sessions on the other nodes, and the
	// nodes holding some that did not answer in time.
	RemoteSessions(ctx context.Context, user xmpp.JID) ([]directory.NodeSession, []string)
	// CloseRemote closes the session of a full JID, or every session of a
	// bare JID, on the other nodes: how many, and the nodes that did not
	// answer in time.
	CloseRemote(ctx context.Context, j xmpp.JID) (int, []string)
}

// Options are the API's collaborators and bounds.
type Options struct {
	Tokens   []Token
	Hosts    []string
	Accounts account.Store
	Rooms    Rooms
	// Lister pages through the stored rooms (the backend itself).
	Lister   roomstore.Lister
	Sessions Sessions
	// Cluster reaches the other nodes' sessions; nil on one node.
	Cluster Cluster
	Logger  *slog.Logger
	// Registerer receives the API's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// MaxInFlight bounds the requests being served at once; past it a
	// request is answered 503 busy at once.
	MaxInFlight int
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// Timeout bounds one request's wait for the rooms.
	Timeout time.Duration
}

// Server is the API's http.Handler.
type Server struct {
	o      Options
	tokens []hashedToken
	hosts  map[string]bool
	mux    *http.ServeMux
	slots  chan struct{}
	log    *slog.Logger

	requests *prometheus.CounterVec
	busy     prometheus.Counter
	inFlight prometheus.Gauge
}

// hashedToken keeps a token's SHA-256: comparing digests of equal length
// in constant time leaks neither the token nor its length.
type hashedToken struct {
	name string
	sum  [sha256.Size]byte
}

// New builds the API.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	s := &Server{o: o, hosts: map[string]bool{}, mux: http.NewServeMux(), slots: make(chan struct{}, o.MaxInFlight),
		log: o.Logger.With("module", "api"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_requests_total", Help: "Admin API requests answered, by route and HTTP status.",
		}, []string{"route", "status"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "api_busy_total", Help: "Admin API requests refused with 503 because max_in_flight were being served.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "api_in_flight", Help: "Admin API requests being served (bounded by api.max_in_flight).",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.requests, s.busy, s.inFlight)
	}
	for _, t := range o.Tokens {
		s.tokens = append(s.tokens, hashedToken{name: t.Name, sum: sha256.Sum256([]byte(t.Token))})
	}
	for _, h := range o.Hosts {
		s.hosts[h] = true
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIDoc)
	})
	for _, rt := range []struct {
		pattern string
		h       func(*http.Request) (int, any, error)
	}{
		{"POST /api/v1/users", s.createUser},
		{"GET /api/v1/users", s.listUsers},
		{"DELETE /api/v1/users/{jid}", s.deleteUser},
		{"PUT /api/v1/users/{jid}/password", s.setPassword},
		{"GET /api/v1/users/{jid}/sessions", s.listSessions},
		{"DELETE /api/v1/users/{jid}/sessions", s.closeSessions},
		{"DELETE /api/v1/users/{jid}/sessions/{resource}", s.closeSession},
		{"POST /api/v1/rooms", s.createRoom},
		{"GET /api/v1/rooms", s.listRooms},
		{"GET /api/v1/rooms/{jid}", s.getRoom},
		{"DELETE /api/v1/rooms/{jid}", s.destroyRoom},
		{"PUT /api/v1/rooms/{jid}/config", s.setConfig},
		{"PATCH /api/v1/rooms/{jid}/config", s.setConfig},
		{"POST /api/v1/rooms/{jid}/members", s.addMembers},
		{"DELETE /api/v1/rooms/{jid}/members/{user}", s.removeMember},
		{"PUT /api/v1/rooms/{jid}/owner", s.setOwner},
		{"POST /api/v1/rooms/{jid}/messages", s.postMessage},
		{"GET /api/v1/rooms/{jid}/messages", s.history},
	} {
		s.mux.Handle(rt.pattern, s.endpoint(rt.pattern, rt.h))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Condition: string(xmpp.ItemNotFound), Message: "no such endpoint"})
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// authorize returns the name of the token the request carries, or "".
func (s *Server) authorize(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	name := ""
	for _, t := range s.tokens { // every token is compared: the time does not tell which matched
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			name = t.name
		}
	}
	return name
}

// endpoint wraps a handler with authentication, the in-flight bound, the
// request log line and the metrics. A handler returns the status and the
// JSON body, or an error (mapped by errorOf).
func (s *Server) endpoint(route string, h func(*http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		name := s.authorize(r)
		status := 0
		defer func() {
			s.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			s.log.Info("api request", "token", name, "method", r.Method, "path", r.URL.Path, "status", status,
				"remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Microsecond))
		}()
		if name == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="xmppws"`)
			status = writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Condition: string(xmpp.NotAuthorized),
				Message: "a configured bearer token is required (Authorization: Bearer …)"})
			return
		}
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.busy.Inc()
			w.Header().Set("Retry-After", "1")
			status = writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeBusy, Condition: string(xmpp.ResourceConstraint),
				Message: "too many API requests at once, try again"})
			return
		}
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
		defer cancel()
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
		code, body, err := h(r.WithContext(ctx))
		if err != nil {
			status = writeError(w, s.errorOf(err))
			return
		}
		status = code
		if body == nil {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
}

// Error is an API error as its JSON body says it: a stable code (listed in
// the OpenAPI document), the XMPP condition behind it and a message.
type Error struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Condition string `json:"condition"`
	Message   string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The stable error codes.
const (
	CodeUnauthorized = "unauthorized"
	CodeBadRequest   = "bad-request"
	CodeInvalidJID   = "invalid-jid"
	CodeNotFound     = "not-found"
	CodeRoomNotFound = "room-not-found"
	CodeUserNotFound = "user-not-found"
	CodeNoSession    = "session-not-found"
	CodeUserExists   = "user-exists"
	CodeConflict     = "conflict"
	CodeNotAllowed   = "not-allowed"
	CodeRateLimited  = "rate-limited"
	CodeBusy         = "busy"
	CodeTimeout      = "timeout"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

func writeError(w http.ResponseWriter, e *Error) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]*Error{"error": e})
	return e.Status
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Condition: string(xmpp.BadRequest), Message: fmt.Sprintf(format, args...)}
}

func invalidJID(what, s string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJID, Condition: string(xmpp.JIDMalformed),
		Message: fmt.Sprintf("%s: %q is not a valid JID here", what, s)}
}

// errorOf maps a failure to its API error: the room core's refusals by
// their XMPP condition, the stores' sentinels, timeouts.
func (s *Server) errorOf(err error) *Error {
	var ae *Error
	var re *room.Error
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return badRequest("the body is larger than %d bytes", mb.Limit)
	case errors.Is(err, rooms.ErrCallTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeTimeout, Condition: string(xmpp.ServiceUnavailable), Message: "no answer from the rooms in time; the change may still be applied"}
	case errors.Is(err, roomstore.ErrRoomNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeRoomNotFound, Condition: string(xmpp.ItemNotFound), Message: "no such room"}
	case errors.Is(err, account.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeUserNotFound, Condition: string(xmpp.ItemNotFound), Message: "no such user"}
	case errors.Is(err, account.ErrExists):
		return &Error{Status: http.StatusConflict, Code: CodeUserExists, Condition: string(xmpp.Conflict), Message: "the user exists already"}
	case errors.As(err, &re):
		return roomError(re)
	}
	s.log.Error("api request failed", "err", err)
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Condition: string(xmpp.InternalServerError), Message: "internal error"}
}

// roomError maps a room core refusal by its condition.
func roomError(re *room.Error) *Error {
	e := &Error{Condition: re.Condition, Message: re.Text}
	switch xmpp.Condition(re.Condition) {
	case xmpp.ItemNotFound:
		e.Status, e.Code = http.StatusNotFound, CodeRoomNotFound
	case xmpp.NotAllowed, xmpp.Forbidden, xmpp.RegistrationRequired, xmpp.NotAuthorized:
		e.Status, e.Code = http.StatusForbidden, CodeNotAllowed
	case xmpp.Conflict:
		e.Status, e.Code = http.StatusConflict, CodeConflict
	case xmpp.BadRequest, xmpp.NotAcceptable, xmpp.JIDMalformed:
		e.Status, e.Code = http.StatusBadRequest, CodeBadRequest
	case xmpp.ResourceConstraint, xmpp.PolicyViolation:
		e.Status, e.Code = http.StatusTooManyRequests, CodeRateLimited
	case xmpp.ServiceUnavailable:
		e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
	default:
		e.Status, e.Code = http.StatusInternalServerError, CodeInternal
	}
	if e.Message == "" {
		e.Message = re.Condition
	}
	return e
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return badRequest("the body is not the JSON this endpoint takes: %v", err)
	}
	return nil
}

// userJID parses a user's bare JID on a served domain.
func (s *Server) userJID(what, v string) (xmpp.JID, error) {
	j, err := xmpp.ParseJID(v)
	if err != nil || j.Local == "" || !j.IsBare() || !s.hosts[j.Domain] {
		return xmpp.JID{}, invalidJID(what, v)
	}
	return j, nil
}

// anyUserJID parses a user's bare JID on any domain (room members may be
// remote).
func anyUserJID(what, v string) (xmpp.JID, error) {
	j, err := xmpp.ParseJID(v)
	if err != nil || j.Local == "" || !j.IsBare() {
		return xmpp.JID{}, invalidJID(what, v)
	}
	return j, nil
}

// roomJID parses a room's bare JID on one of the MUC Light services.
func (s *Server) roomJID(v string) (xmpp.JID, error) {
	j, err := xmpp.ParseJID(v)
	if err != nil || j.Local == "" || !j.IsBare() || s.o.Rooms.Services()[j.Domain] == "" {
		return xmpp.JID{}, invalidJID("room", v)
	}
	return j, nil
}

// limit reads ?limit= within [1, max], def when absent.
func limitOf(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit: must be a number from 1 to %d", max)
	}
	return n, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/wschat/xmppws/api"
	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/xmpp"
)

const apiToken = "test-token-0123456789abcdef0123456789"

// apiEnv is a running server with the admin API on, and a client for it
// that checks every request and response against the OpenAPI document.
type apiEnv struct {
	t      *testing.T
	a      *app
	cfg    Config
	base   string
	router routers.Router
	log    *syncLog
	mu     sync.Mutex
	seen   map[string]bool // operations whose responses were validated
}

// syncLog is a log sink the test reads while the server writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAPIServer(t *testing.T, tweak func(*Config)) *apiEnv {
	t.Helper()
	cfg := defaultConfig()
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.Storage.DataDir = t.TempDir()
	cfg.API.Address = "127.0.0.1:0"
	cfg.API.Tokens = []APIToken{{Name: "backend", Token: apiToken}}
	if tweak != nil {
		tweak(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	lg := &syncLog{}
	a, err := start(cfg, slog.New(slog.NewTextHandler(lg, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	e := apiClientFor(t, a, cfg)
	e.log = lg
	return e
}

// apiClientFor is the validating API client of a running server.
func apiClientFor(t *testing.T, a *app, cfg Config) *apiEnv {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: "http://" + a.APIAddr()}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiEnv{t: t, a: a, cfg: cfg, base: "http://" + a.APIAddr(), router: router, log: &syncLog{}, seen: map[string]bool{}}
}

// call sends a request with the token (auth false: without), validates
// request and response against the document, and decodes the JSON answer
// into out (when not nil).
func (e *apiEnv) call(method, path string, body any, auth bool, out any) int {
	e.t.Helper()
	var rd io.Reader
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+apiToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.validate(method, path, raw, resp, got)
	if out != nil && len(got) > 0 {
		if err := json.Unmarshal(got, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, got, err)
		}
	}
	return resp.StatusCode
}

func (e *apiEnv) validate(method, path string, reqBody []byte, resp *http.Response, body []byte) {
	e.t.Helper()
	ctx := context.Background()
	vreq, _ := http.NewRequest(method, e.base+path, bytes.NewReader(reqBody))
	if reqBody != nil {
		vreq.Header.Set("Content-Type", "application/json")
	}
	route, params, err := e.router.FindRoute(vreq)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return // no such route in the document, none served either
		}
		e.t.Fatalf("%s %s: not in the OpenAPI document: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	if resp.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			e.t.Fatalf("%s %s: the request does not match the document: %v", method, path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		e.t.Fatalf("%s %s: %d %s does not match the document: %v", method, path, resp.StatusCode, body, err)
	}
	e.mu.Lock()
	e.seen[route.Operation.OperationID] = true
	e.mu.Unlock()
}

// apiErr is an error body.
type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		Condition string `json:"condition"`
		Message   string `json:"message"`
	} `json:"error"`
}

func (e *apiEnv) wantError(method, path string, body any, status int, code string) {
	e.t.Helper()
	var ae apiErr
	if got := e.call(method, path, body, true, &ae); got != status || ae.Error.Code != code {
		e.t.Fatalf("%s %s: %d %+v, want %d %s", method, path, got, ae, status, code)
	}
}

func (e *apiEnv) wantStatus(method, path string, body any, status int, out any) {
	e.t.Helper()
	if got := e.call(method, path, body, true, out); got != status {
		e.t.Fatalf("%s %s: %d, want %d", method, path, got, status)
	}
}

func (e *apiEnv) login(user, password, resource string) *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Login(ctx, "ws://"+e.a.Addr()+e.cfg.WebSocket.Path, xmpp.JID{Local: user, Domain: "localhost", Resource: resource}, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// groupchat waits for a groupchat with body from the given address.
func groupchat(t *testing.T, c *client.Client, from, body string) *etree.Element {
	t.Helper()
	el, err := c.Expect(tctx(t), func(e *etree.Element) bool {
		b := e.SelectElement("body")
		return e.Tag == "message" && e.SelectAttrValue("type", "") == "groupchat" && b != nil && b.Text() == body
	})
	if err != nil {
		t.Fatalf("waiting for %q: %v", body, err)
	}
	if got := el.SelectAttrValue("from", ""); got != from {
		t.Fatalf("%q came from %s, want %s", body, got, from)
	}
	return el
}

// affNotice waits for a MUC Light affiliation notification from rm naming
// user with aff.
func affNotice(t *testing.T, c *client.Client, rm, user, aff string) {
	t.Helper()
	_, err := c.Expect(tctx(t), func(e *etree.Element) bool {
		if e.Tag != "message" || e.SelectAttrValue("from", "") != rm {
			return false
		}
		for _, x := range e.ChildElements() {
			if x.Tag == "x" && x.NamespaceURI() == rooms.NSAffiliations {
				for _, u := range x.SelectElements("user") {
					if u.Text() == user && u.SelectAttrValue("affiliation", "") == aff {
						return true
					}
				}
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no notification from %s that %s is %s: %v", rm, user, aff, err)
	}
}

func stanzaIDOf(el *etree.Element) string {
	for _, c := range el.ChildElements() {
		if c.Tag == "stanza-id" {
			return c.SelectAttrValue("id", "")
		}
	}
	return ""
}

// TestAPIAuth: without a token, with a wrong one, or with a scheme other
// than Bearer, every endpoint answers 401; the token's name is logged, the
// token never.
func TestAPIAuth(t *testing.T) {
	e := startAPIServer(t, nil)
	for _, h := range []string{"", "Bearer wrong-token-0123456789abcdef0123456789", "Basic " + apiToken, "Bearer " + apiToken[:len(apiToken)-1]} {
		req, _ := http.NewRequest("GET", e.base+"/api/v1/users", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.validate("GET", "/api/v1/users", nil, resp, body)
		var ae apiErr
		json.Unmarshal(body, &ae)
		if resp.StatusCode != http.StatusUnauthorized || ae.Error.Code != api.CodeUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d %s", h, resp.StatusCode, body)
		}
	}
	var ae apiErr
	if got := e.call("POST", "/api/v1/rooms", map[string]any{"owner": "alice@localhost"}, false, &ae); got != 401 {
		t.Errorf("create room without a token: %d", got)
	}
	if got := e.call("GET", "/api/v1/users", nil, true, nil); got != 200 {
		t.Fatalf("with the token: %d", got)
	}
	if got := e.call("GET", "/api/v1/openapi.json", nil, false, nil); got != 200 {
		t.Fatalf("the document: %d", got)
	}
	if l := e.log.String(); strings.Contains(l, apiToken) || !strings.Contains(l, "token=backend") {
		t.Errorf("log: token leaked or name missing:\n%s", l)
	}
}

// TestAPIEndToEnd drives every endpoint against a running server with
// XMPP clients watching: the room created through the API, its members,
// configuration, owner change, system and user messages, history pages,
// sessions and deletions, each seen by the clients as the room core
// announces them.
func TestAPIEndToEnd(t *testing.T) {
	e := startAPIServer(t, nil)
	for _, u := range []string{"alice", "bob", "carol"} {
		var c api.Created
		e.wantStatus("POST", "/api/v1/users", map[string]string{"jid": u + "@localhost", "password": "pw-" + u}, 201, &c)
		if c.JID != u+"@localhost" {
			t.Fatalf("created %+v", c)
		}
	}
	e.wantError("POST", "/api/v1/users", map[string]string{"jid": "alice@localhost", "password": "x"}, 409, api.CodeUserExists)
	e.wantError("POST", "/api/v1/users", map[string]string{"jid": "eve@elsewhere", "password": "x"}, 400, api.CodeInvalidJID)
	e.wantError("POST", "/api/v1/users", map[string]any{"jid": "eve@localhost", "password": "x", "admin": true}, 400, api.CodeBadRequest)

	var page api.UserPage
	e.wantStatus("GET", "/api/v1/users?limit=2", nil, 200, &page)
	if len(page.Users) != 2 || page.Users[0].JID != "alice@localhost" || page.Next != "bob@localhost" {
		t.Fatalf("first page %+v", page)
	}
	after := page.Next
	page = api.UserPage{}
	e.wantStatus("GET", "/api/v1/users?limit=2&after="+after, nil, 200, &page)
	if len(page.Users) != 1 || page.Users[0].JID != "carol@localhost" || page.Next != "" {
		t.Fatalf("last page %+v", page)
	}
	e.wantStatus("PUT", "/api/v1/users/bob@localhost/password", map[string]string{"password": "new-bob"}, 204, nil)
	e.wantError("PUT", "/api/v1/users/nobody@localhost/password", map[string]string{"password": "x"}, 404, api.CodeUserNotFound)

	alice := e.login("alice", "pw-alice", "web")
	bob := e.login("bob", "new-bob", "phone")

	var created api.Created
	e.wantStatus("POST", "/api/v1/rooms", map[string]any{"room": "lobby", "name": "The Lobby", "owner": "alice@localhost",
		"members": []string{"bob@localhost"}, "config": map[string]string{"subject": "hello"}}, 201, &created)
	rm := created.JID
	if rm != "lobby@muclight.localhost" {
		t.Fatalf("room %q", rm)
	}
	affNotice(t, bob, rm, "bob@localhost", "member")
	affNotice(t, alice, rm, "alice@localhost", "owner")
	e.wantError("POST", "/api/v1/rooms", map[string]any{"room": "lobby", "owner": "alice@localhost"}, 409, api.CodeConflict)
	e.wantError("POST", "/api/v1/rooms", map[string]any{"owner": "not a jid"}, 400, api.CodeInvalidJID)
	var gen api.Created
	e.wantStatus("POST", "/api/v1/rooms", map[string]any{"owner": "carol@localhost"}, 201, &gen)

	var r api.Room
	e.wantStatus("GET", "/api/v1/rooms/"+rm, nil, 200, &r)
	if r.Name != "The Lobby" || r.Config["subject"] != "hello" || len(r.Members) != 2 || r.Version == "" {
		t.Fatalf("room %+v", r)
	}
	e.wantError("GET", "/api/v1/rooms/nope@muclight.localhost", nil, 404, api.CodeRoomNotFound)
	e.wantError("GET", "/api/v1/rooms/nope@elsewhere", nil, 400, api.CodeInvalidJID)

	// The room speaks: archived, and delivered from its bare JID.
	var sys api.Posted
	e.wantStatus("POST", "/api/v1/rooms/"+rm+"/messages", map[string]string{"body": "welcome"}, 201, &sys)
	if sys.ID == "" {
		t.Fatal("a system message without an archive id")
	}
	for _, c := range []*client.Client{alice, bob} {
		if el := groupchat(t, c, rm, "welcome"); stanzaIDOf(el) != sys.ID {
			t.Fatalf("delivered with stanza-id %q, posted as %q", stanzaIDOf(el), sys.ID)
		}
	}
	var said api.Posted
	e.wantStatus("POST", "/api/v1/rooms/"+rm+"/messages", map[string]string{"body": "hi all", "from": "bob@localhost"}, 201, &said)
	groupchat(t, alice, rm+"/bob@localhost", "hi all")
	groupchat(t, bob, rm+"/bob@localhost", "hi all")
	e.wantError("POST", "/api/v1/rooms/"+rm+"/messages", map[string]string{"body": "let me in", "from": "carol@localhost"}, 404, api.CodeRoomNotFound)
	e.wantError("POST", "/api/v1/rooms/"+rm+"/messages", map[string]string{"body": ""}, 400, api.CodeBadRequest)

	var msgs []api.Message
	e.wantStatus("GET", "/api/v1/rooms/"+rm+"/messages?limit=10", nil, 200, &msgs)
	if len(msgs) < 3 {
		t.Fatalf("history %+v", msgs)
	}
	last, prev := msgs[len(msgs)-1], msgs[len(msgs)-2]
	if last.ID != said.ID || last.From != "bob@localhost" || last.Body != "hi all" ||
		prev.ID != sys.ID || prev.From != rm || prev.Body != "welcome" {
		t.Fatalf("history, newest last: %+v", msgs)
	}
	var one []api.Message
	e.wantStatus("GET", "/api/v1/rooms/"+rm+"/messages?limit=1", nil, 200, &one)
	if len(one) != 1 || one[0].ID != said.ID {
		t.Fatalf("newest page of one: %+v", one)
	}
	e.wantStatus("GET", "/api/v1/rooms/"+rm+"/messages?limit=1&before="+said.ID, nil, 200, &one)
	if len(one) != 1 || one[0].ID != sys.ID {
		t.Fatalf("page before %s: %+v", said.ID, one)
	}
	e.wantStatus("GET", "/api/v1/rooms/"+rm+"/messages?limit=5&after="+sys.ID, nil, 200, &one)
	if len(one) != 1 || one[0].ID != said.ID {
		t.Fatalf("page after %s: %+v", sys.ID, one)
	}
	e.wantError("GET", "/api/v1/rooms/"+rm+"/messages?before=nosuchid", nil, 404, api.CodeRoomNotFound)
	e.wantError("GET", "/api/v1/rooms/"+rm+"/messages?limit=0", nil, 400, api.CodeBadRequest)

	e.wantStatus("PATCH", "/api/v1/rooms/"+rm+"/config", map[string]string{"roomname": "Main hall"}, 204, nil)
	e.wantStatus("PUT", "/api/v1/rooms/"+rm+"/config", map[string]string{"subject": "news"}, 204, nil)
	e.wantError("PATCH", "/api/v1/rooms/"+rm+"/config", map[string]string{"no_such_field": "x"}, 400, api.CodeBadRequest)
	e.wantStatus("GET", "/api/v1/rooms/"+rm, nil, 200, &r)
	if r.Name != "Main hall" || r.Config["subject"] != "news" {
		t.Fatalf("after config changes: %+v", r)
	}
	if _, err := bob.Expect(tctx(t), func(el *etree.Element) bool {
		return el.Tag == "message" && el.SelectAttrValue("from", "") == rm && strings.Contains(xmlString(el), "Main hall")
	}); err != nil {
		t.Fatalf("bob was not told of the configuration change: %v", err)
	}

	carol := e.login("carol", "pw-carol", "tab")
	e.wantStatus("POST", "/api/v1/rooms/"+rm+"/members", map[string][]string{"members": {"carol@localhost"}}, 204, nil)
	affNotice(t, carol, rm, "carol@localhost", "member")
	e.wantStatus("DELETE", "/api/v1/rooms/"+rm+"/members/carol@localhost", nil, 204, nil)
	affNotice(t, carol, rm, "carol@localhost", "none")

	e.wantStatus("PUT", "/api/v1/rooms/"+rm+"/owner", map[string]string{"owner": "bob@localhost"}, 204, nil)
	affNotice(t, alice, rm, "bob@localhost", "owner")
	e.wantStatus("GET", "/api/v1/rooms/"+rm, nil, 200, &r)
	for _, m := range r.Members {
		if want := map[string]string{"bob@localhost": "owner", "alice@localhost": "member"}[m.JID]; m.Affiliation != want {
			t.Fatalf("after the owner change: %+v", r.Members)
		}
	}

	var ss struct {
		Sessions []api.Session `json:"sessions"`
	}
	e.wantStatus("GET", "/api/v1/users/bob@localhost/sessions", nil, 200, &ss)
	if len(ss.Sessions) != 1 || ss.Sessions[0].JID != "bob@localhost/phone" {
		t.Fatalf("sessions %+v", ss)
	}
	e.wantStatus("DELETE", "/api/v1/users/bob@localhost/sessions/phone", nil, 204, nil)
	if _, err := bob.Expect(tctx(t), func(el *etree.Element) bool { return client.StreamErrorOf(el) != nil }); err != nil {
		t.Fatalf("bob's session was not closed: %v", err)
	}
	e.wantStatus("GET", "/api/v1/users/bob@localhost/sessions", nil, 200, &ss)
	if len(ss.Sessions) != 0 {
		t.Fatalf("bob's closed session is still listed: %+v", ss)
	}
	e.wantError("DELETE", "/api/v1/users/bob@localhost/sessions/phone", nil, 404, api.CodeNoSession)
	e.wantStatus("DELETE", "/api/v1/users/carol@localhost/sessions", nil, 204, nil)
	if _, err := carol.Expect(tctx(t), func(el *etree.Element) bool { return client.StreamErrorOf(el) != nil }); err != nil {
		t.Fatalf("carol's session was not closed: %v", err)
	}

	e.wantStatus("DELETE", "/api/v1/rooms/"+rm, nil, 204, nil)
	if _, err := alice.Expect(tctx(t), func(el *etree.Element) bool {
		return el.Tag == "message" && el.SelectAttrValue("from", "") == rm && strings.Contains(xmlString(el), rooms.NSDestroy)
	}); err != nil {
		t.Fatalf("alice was not told the room went: %v", err)
	}
	e.wantError("GET", "/api/v1/rooms/"+rm, nil, 404, api.CodeRoomNotFound)
	e.wantError("DELETE", "/api/v1/rooms/"+rm, nil, 404, api.CodeRoomNotFound)

	var rp api.RoomPage
	e.wantStatus("GET", "/api/v1/rooms", nil, 200, &rp)
	if len(rp.Rooms) != 1 || rp.Rooms[0].JID != gen.JID {
		t.Fatalf("rooms left: %+v", rp)
	}
	e.wantStatus("DELETE", "/api/v1/users/carol@localhost", nil, 204, nil)
	e.wantError("DELETE", "/api/v1/users/carol@localhost", nil, 404, api.CodeUserNotFound)
	e.wantStatus("GET", "/api/v1/rooms", nil, 200, &rp)
	if len(rp.Rooms) != 0 {
		t.Fatalf("carol's room outlived her: %+v", rp)
	}

	var docBody map[string]any
	if got := e.call("GET", "/api/v1/openapi.json", nil, false, &docBody); got != 200 || docBody["openapi"] == nil {
		t.Fatalf("the document: %d", got)
	}
	var ae apiErr
	if got := e.call("GET", "/api/v1/nothing", nil, true, &ae); got != 404 || ae.Error.Code != api.CodeNotFound {
		t.Fatalf("unknown path: %d %+v", got, ae)
	}
	// Every operation of the document was exercised and validated.
	doc, _ := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !e.seen[op.OperationID] {
				t.Errorf("%s %s (%s) was never called", method, path, op.OperationID)
			}
		}
	}
}

func xmlString(el *etree.Element) string {
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	s, _ := d.WriteToString()
	return s
}

// TestAPIRoomPaging pages through 1,000 rooms with a small page: every
// room exactly once, in order, and the name filter narrows the listing.
func TestAPIRoomPaging(t *testing.T) {
	e := startAPIServer(t, nil)
	ctx := context.Background()
	owner := xmpp.MustParseJID("alice@localhost")
	const n = 1000
	for i := range n {
		name := fmt.Sprintf("room %d", i)
		if i%100 == 7 {
			name = fmt.Sprintf("Special %d", i)
		}
		err := e.a.store.rooms.CreateRoom(ctx, xmpp.JID{Local: fmt.Sprintf("r%04d", i), Domain: "muclight.localhost"},
			rooms.Config{"roomname": name}, []rooms.Aff{{User: owner, Aff: rooms.Owner}}, "v", rooms.Caps{})
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	after, prev := "", ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		var p api.RoomPage
		path := "/api/v1/rooms?limit=37"
		if after != "" {
			path += "&after=" + after
		}
		e.wantStatus("GET", path, nil, 200, &p)
		for _, r := range p.Rooms {
			if seen[r.JID] || r.JID <= prev {
				t.Fatalf("%s repeated or out of order after %s", r.JID, prev)
			}
			seen[r.JID], prev = true, r.JID
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if len(seen) != n {
		t.Fatalf("paged through %d rooms, want %d", len(seen), n)
	}
	var p api.RoomPage
	e.wantStatus("GET", "/api/v1/rooms?name=special&limit=1000", nil, 200, &p)
	if len(p.Rooms) != 10 || p.Next != "" || !strings.HasPrefix(p.Rooms[0].Name, "Special") {
		t.Fatalf("name filter: %d rooms, next %q", len(p.Rooms), p.Next)
	}
	e.wantError("GET", "/api/v1/rooms?limit=1001", nil, 400, api.CodeBadRequest)
}

// TestAPILimitsApply: rooms created through the API spend the owner's
// create_rate as XMPP creates do, and the refusal is 429 with the XMPP
// condition.
func TestAPILimitsApply(t *testing.T) {
	e := startAPIServer(t, func(c *Config) {
		c.Modules.MucLight.CreateRate, c.Modules.MucLight.CreateBurst = 1, 2
	})
	for i := range 2 {
		e.wantStatus("POST", "/api/v1/rooms", map[string]any{"owner": "alice@localhost", "room": fmt.Sprintf("r%d", i)}, 201, nil)
	}
	var ae apiErr
	if got := e.call("POST", "/api/v1/rooms", map[string]any{"owner": "alice@localhost", "room": "r2"}, true, &ae); got != 429 ||
		ae.Error.Code != api.CodeRateLimited || ae.Error.Condition != "resource-constraint" {
		t.Fatalf("third create in a burst of two: %d %+v", got, ae)
	}
	// Another owner has a bucket of its own.
	e.wantStatus("POST", "/api/v1/rooms", map[string]any{"owner": "bob@localhost", "room": "r3"}, 201, nil)
}

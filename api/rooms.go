package api

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

// Created answers a create: the new room's or user's JID.
type Created struct {
	JID string `json:"jid"`
}

// Member is one occupant and its affiliation.
type Member struct {
	JID         string `json:"jid"`
	Affiliation string `json:"affiliation"`
}

// Room is a room as GET shows it.
type Room struct {
	JID     string            `json:"jid"`
	Name    string            `json:"name"`
	Version string            `json:"version"`
	Config  map[string]string `json:"config"`
	Members []Member          `json:"members"`
}

// RoomSummary is a room in a listing.
type RoomSummary struct {
	JID       string `json:"jid"`
	Name      string `json:"name"`
	Occupants int    `json:"occupants"`
	Version   string `json:"version"`
}

// RoomPage is a page of the room listing.
type RoomPage struct {
	Rooms []RoomSummary `json:"rooms"`
	// Next is the cursor of the next page (the after parameter); absent on
	// the last page.
	Next string `json:"next,omitempty"`
}

// Message is one archived room message, oldest first in a page.
type Message struct {
	ID   string `json:"id"`
	From string `json:"from"`
	Body string `json:"body"`
	Time string `json:"time"`
}

// Posted answers a message post.
type Posted struct {
	ID   string `json:"id,omitempty"`
	Time string `json:"time"`
}

type createRoomBody struct {
	// Room is the local part; empty: the server picks one.
	Room    string            `json:"room"`
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Members []string          `json:"members"`
	Config  map[string]string `json:"config"`
}

// createRoom creates the room as its owner would over XMPP: the owner's
// create_rate and rooms_per_user apply, and every occupant is told.
func (s *Server) createRoom(r *http.Request) (int, any, error) {
	var b createRoomBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	owner, err := s.userJID("owner", b.Owner)
	if err != nil {
		return 0, nil, err
	}
	local := b.Room
	if local == "" {
		local = room.NewRoomName()
	}
	rm, err := xmpp.NewJID(local, s.o.Rooms.ServiceDomain(owner.Domain), "")
	if err != nil {
		return 0, nil, invalidJID("room", local)
	}
	req := &room.Create{Head: room.Head{Room: rm}}
	for _, m := range b.Members {
		j, err := anyUserJID("members", m)
		if err != nil {
			return 0, nil, err
		}
		req.Items = append(req.Items, room.AffItem{User: j, Aff: room.Member})
	}
	req.Fields = fields(b.Config)
	if b.Name != "" {
		req.Fields = append(req.Fields, room.Field{Name: "roomname", Value: b.Name})
	}
	if _, err := s.o.Rooms.Call(r.Context(), owner, req); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, Created{JID: rm.String()}, nil
}

// fields turns a JSON object into configuration fields, in name order.
func fields(cfg map[string]string) []room.Field {
	out := make([]room.Field, 0, len(cfg)+1)
	for k, v := range cfg {
		out = append(out, room.Field{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) listRooms(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	service := q.Get("service")
	if service != "" && s.o.Rooms.Services()[service] == "" {
		return 0, nil, invalidJID("service", service)
	}
	limit, err := limitOf(r, 100, 1000)
	if err != nil {
		return 0, nil, err
	}
	// One more than asked: whether a next page exists is known exactly.
	got, err := s.o.Lister.ListRooms(r.Context(), roomstore.ListQuery{Service: service, After: q.Get("after"),
		NameContains: q.Get("name"), Limit: limit + 1})
	if err != nil {
		return 0, nil, err
	}
	page := RoomPage{Rooms: []RoomSummary{}}
	for i, l := range got {
		if i == limit {
			page.Next = page.Rooms[limit-1].JID
			break
		}
		page.Rooms = append(page.Rooms, RoomSummary{JID: l.JID.String(), Name: l.Config[roomstore.NameKey], Occupants: l.Occupants, Version: l.Version})
	}
	return http.StatusOK, page, nil
}

// call runs a request for an existing room as its acting occupant (the
// owner, as whom the administrator acts).
func (s *Server) call(r *http.Request, rm xmpp.JID, req room.Request) (room.Reply, error) {
	as, err := s.o.Rooms.ActingOccupant(r.Context(), rm)
	if err != nil {
		return room.Reply{}, err
	}
	res, err := s.o.Rooms.Call(r.Context(), as, req)
	return res.Reply, err
}

func (s *Server) getRoom(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	rep, err := s.call(r, rm, &room.GetInfo{Head: room.Head{Room: rm}})
	if err != nil {
		return 0, nil, err
	}
	out := Room{JID: rm.String(), Name: rep.Name, Version: rep.Version, Config: map[string]string{}, Members: []Member{}}
	for _, f := range rep.Config {
		out.Config[f.Name] = f.Value
	}
	for _, a := range rep.Affs {
		out.Members = append(out.Members, Member{JID: a.User.String(), Affiliation: string(a.Aff)})
	}
	return http.StatusOK, out, nil
}

func (s *Server) destroyRoom(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.call(r, rm, &room.Destroy{Head: room.Head{Room: rm}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// setConfig changes the fields given (PUT and PATCH alike: the others
// keep their values).
func (s *Server) setConfig(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	var cfg map[string]string
	if err := decode(r, &cfg); err != nil {
		return 0, nil, err
	}
	if len(cfg) == 0 {
		return 0, nil, badRequest("no configuration field given")
	}
	if _, err := s.call(r, rm, &room.SetConfig{Head: room.Head{Room: rm}, Fields: fields(cfg)}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type membersBody struct {
	Members []string `json:"members"`
}

func (s *Server) addMembers(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	var b membersBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	if len(b.Members) == 0 {
		return 0, nil, badRequest("members: none given")
	}
	req := &room.ChangeAffs{Head: room.Head{Room: rm}}
	for _, m := range b.Members {
		j, err := anyUserJID("members", m)
		if err != nil {
			return 0, nil, err
		}
		req.Items = append(req.Items, room.AffItem{User: j, Aff: room.Member})
	}
	if _, err := s.call(r, rm, req); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (s *Server) removeMember(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	u, err := anyUserJID("user", r.PathValue("user"))
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.call(r, rm, &room.ChangeAffs{Head: room.Head{Room: rm}, Items: []room.AffItem{{User: u, Aff: room.None}}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type ownerBody struct {
	Owner string `json:"owner"`
}

// setOwner makes a user the owner; MUC Light's rules make the old owner a
// member.
func (s *Server) setOwner(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	var b ownerBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	u, err := anyUserJID("owner", b.Owner)
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.call(r, rm, &room.ChangeAffs{Head: room.Head{Room: rm}, Items: []room.AffItem{{User: u, Aff: room.Owner}}}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type messageBody struct {
	Body string `json:"body"`
	From string `json:"from"`
}

// postMessage posts as an occupant (from) or, without from, as the room
// itself: a system message from the room's bare JID. The answer comes once
// the message is accepted (archived, with history on) and handed to the
// occupants.
func (s *Server) postMessage(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	var b messageBody
	if err := decode(r, &b); err != nil {
		return 0, nil, err
	}
	if b.Body == "" {
		return 0, nil, badRequest("body: must not be empty")
	}
	body := xmpp.Elem("body", xmpp.NSClient)
	body.SetText(b.Body)
	req := &room.Post{Head: room.Head{Room: rm}, Body: b.Body, Payload: xmpp.AppendElement(nil, body)}
	as := rm
	if b.From != "" {
		if as, err = anyUserJID("from", b.From); err != nil {
			return 0, nil, err
		}
	} else {
		req.System = true
	}
	res, err := s.o.Rooms.Call(r.Context(), as, req)
	if err != nil {
		return 0, nil, err
	}
	if res.Posted == nil {
		return 0, nil, badRequest("the room did not accept the message")
	}
	return http.StatusCreated, Posted{ID: res.Posted.ArchiveID, Time: res.Posted.Time.UTC().Format(time.RFC3339Nano)}, nil
}

// history pages through the archive as XEP-0313 does: without a cursor
// the newest page; before or after an archive id the page next to it;
// always oldest first.
func (s *Server) history(r *http.Request) (int, any, error) {
	rm, err := s.roomJID(r.PathValue("jid"))
	if err != nil {
		return 0, nil, err
	}
	def, max := s.o.Rooms.PageSizes()
	if def == 0 {
		def, max = 50, 50
	}
	limit, err := limitOf(r, def, max)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	before, after := q.Get("before"), q.Get("after")
	if before != "" && after != "" {
		return 0, nil, badRequest("before and after: give one")
	}
	query := archive.Query{Room: rm, Max: limit, Before: before, After: after, Last: before == "" && after == ""}
	rep, err := s.call(r, rm, &room.QueryHistory{Head: room.Head{Room: rm}, Query: query, NS: mam.NS2})
	if err != nil {
		return 0, nil, err
	}
	out := []Message{}
	if rep.History != nil {
		for _, m := range rep.History.Page.Messages {
			out = append(out, messageOf(rm, m))
		}
	}
	return http.StatusOK, out, nil
}

// messageOf reads an archived stanza: its body, and whom it is from (the
// occupant, or the room for its own messages and notices).
func messageOf(rm xmpp.JID, m archive.Message) Message {
	from := m.Sender
	if from.IsZero() {
		from = rm
	}
	body := ""
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(m.Stanza); err == nil && doc.Root() != nil {
		for _, c := range doc.Root().ChildElements() {
			if c.Tag == "body" && (c.NamespaceURI() == xmpp.NSClient || c.NamespaceURI() == "") {
				body = c.Text()
				break
			}
		}
	}
	return Message{ID: m.ID, From: strings.TrimSpace(from.String()), Body: body, Time: m.Time.UTC().Format(time.RFC3339Nano)}
}

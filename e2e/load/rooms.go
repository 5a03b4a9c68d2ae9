package load

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

// The protocols the tool speaks, declared here rather than imported: it is
// a client like any other and must not depend on the server's packages.
const (
	nsMucLight  = "urn:xmpp:muclight:0"
	nsCreate    = nsMucLight + "#create"
	nsDestroy   = nsMucLight + "#destroy"
	nsMUC       = "http://jabber.org/protocol/muc"
	nsMUCUser   = nsMUC + "#user"
	nsMUCOwner  = nsMUC + "#owner"
	nsMUCAdmin  = nsMUC + "#admin"
	maxDiscoped = 32 // disco#info requests spent looking for the service
)

// discoverService finds the room service: the first item of the server's
// disco#items whose disco#info has the mode's feature. Without an answer it
// falls back to the usual names, muclight.<domain> and conference.<domain>.
func (e *engine) discoverService(ctx context.Context) {
	if e.cfg.Service != "" {
		e.service = e.cfg.Service
		return
	}
	feature, fallback := nsMucLight, "muclight."+e.cfg.Domain
	if e.cfg.Mode == ModeMUC {
		feature, fallback = nsMUC, "conference."+e.cfg.Domain
	}
	e.service = fallback
	var s *session
	for _, x := range e.sessions {
		if x != nil {
			s = x
			break
		}
	}
	ctx, cancel := context.WithTimeout(ctx, iqTimeout)
	defer cancel()
	res, err := s.c.IQ(ctx, client.IQ("get", e.cfg.Domain, xmpp.Elem("query", xmpp.NSDiscoItems)))
	if err == nil {
		items := xmpp.Children(xmpp.Child(res, "query", xmpp.NSDiscoItems), "item", xmpp.NSDiscoItems)
		for i, it := range items {
			if i == maxDiscoped {
				break
			}
			jid := it.SelectAttrValue("jid", "")
			info, err := s.c.IQ(ctx, client.IQ("get", jid, xmpp.Elem("query", xmpp.NSDiscoInfo)))
			if err != nil {
				continue
			}
			for _, f := range xmpp.Children(xmpp.Child(info, "query", xmpp.NSDiscoInfo), "feature", xmpp.NSDiscoInfo) {
				if f.SelectAttrValue("var", "") == feature {
					e.service = jid
					e.say("service: %s (discovered)", jid)
					return
				}
			}
		}
	}
	e.warning.add("service discovery found no " + feature + " service; used " + fallback)
	e.say("service: %s (not discovered, the default)", fallback)
}

// setupRooms assigns users to rooms and creates them (muclight) or joins
// them (muc), Concurrency rooms at a time, and returns how many are ready.
// Room r holds users r*RoomSize+j (j < RoomSize) modulo Users, those whose
// login succeeded.
func (e *engine) setupRooms(ctx context.Context) int {
	for r := range e.cfg.Rooms {
		name := fmt.Sprintf("%s-%s-%04d", strings.ToLower(e.cfg.UserPrefix), e.run, r+1)
		rm := &room{jid: xmpp.JID{Local: name, Domain: e.service}}
		for j := range e.cfg.RoomSize {
			if s := e.sessions[(r*e.cfg.RoomSize+j)%e.cfg.Users]; s != nil {
				rm.members = append(rm.members, s)
			}
		}
		e.rooms = append(e.rooms, rm)
	}
	var done, ready atomic.Int64
	e.setStatus(func() string {
		return fmt.Sprintf("setting up rooms: %d/%d (%d ready)", done.Load(), e.cfg.Rooms, ready.Load())
	})
	e.forEach(ctx, len(e.rooms), func(i int) {
		defer done.Add(1)
		r := e.rooms[i]
		if len(r.members) == 0 {
			e.roomFail.add("no member online")
			return
		}
		ctx, cancel := context.WithTimeout(ctx, iqTimeout)
		defer cancel()
		var err error
		if e.cfg.Mode == ModeMUC {
			err = e.joinRoom(ctx, r)
		} else {
			err = e.createRoom(ctx, r)
		}
		if err != nil {
			e.roomFail.add(err.Error())
			return
		}
		r.ready = true
		ready.Add(1)
	})
	// Sessions learn their rooms only now, from this one goroutine.
	occupants := 0
	for _, r := range e.rooms {
		if r.ready {
			occupants += len(r.joined)
			for _, s := range r.joined {
				s.rooms = append(s.rooms, r)
			}
		}
	}
	e.say("rooms: %d of %d ready, %d occupants%s", ready.Load(), e.cfg.Rooms, occupants, tally(e.roomFail.snapshot()))
	return int(ready.Load())
}

// createRoom sends MUC Light's #create from the first member, listing the
// others as members; the creator becomes the owner.
func (e *engine) createRoom(ctx context.Context, r *room) error {
	q := xmpp.Elem("query", nsCreate)
	q.CreateElement("configuration").CreateElement("roomname").SetText("xmppload " + r.jid.Local)
	occ := q.CreateElement("occupants")
	for _, m := range r.members[1:] {
		u := occ.CreateElement("user")
		u.CreateAttr("affiliation", "member")
		u.SetText(m.bare)
	}
	if _, err := r.members[0].c.IQ(ctx, client.IQ("set", r.jid.String(), q)); err != nil {
		return fmt.Errorf("create: %s", classify(err))
	}
	r.joined = r.members
	return nil
}

// joinRoom sets a room up the XEP-0045 way: the first member joins, which
// creates the room, accepts the default configuration if the room is
// locked (status 201), and grants the other members membership (MUC Light's
// legacy mode admits only affiliated users; an open MUC room does not need
// it, so a refusal is only a warning); then the others join. Nicknames are
// bare JIDs, as MUC Light's legacy mode requires and any MUC allows.
func (e *engine) joinRoom(ctx context.Context, r *room) error {
	owner := r.members[0]
	created, err := e.join(ctx, owner, r)
	if err != nil {
		return fmt.Errorf("join (creator): %s", classify(err))
	}
	if created {
		form := xmpp.Elem("x", xmpp.NSDataForm)
		form.CreateAttr("type", "submit")
		q := xmpp.Elem("query", nsMUCOwner)
		q.AddChild(form)
		if _, err := owner.c.IQ(ctx, client.IQ("set", r.jid.String(), q)); err != nil {
			e.warning.add("instant room configuration refused: " + classify(err))
		}
	}
	if len(r.members) > 1 {
		q := xmpp.Elem("query", nsMUCAdmin)
		for _, m := range r.members[1:] {
			it := q.CreateElement("item")
			it.CreateAttr("affiliation", "member")
			it.CreateAttr("jid", m.bare)
		}
		if _, err := owner.c.IQ(ctx, client.IQ("set", r.jid.String(), q)); err != nil {
			e.warning.add("member affiliations refused: " + classify(err))
		}
	}
	joined := make([]bool, len(r.members))
	joined[0] = true
	var wg sync.WaitGroup
	for i, m := range r.members[1:] {
		wg.Go(func() {
			if _, err := e.join(ctx, m, r); err != nil {
				e.warning.add("member join failed: " + classify(err))
				return
			}
			joined[i+1] = true
		})
	}
	wg.Wait()
	for i, m := range r.members {
		if joined[i] {
			r.joined = append(r.joined, m)
		}
	}
	return nil
}

// join sends s's presence to the room and waits for the self-presence
// (status 110); it reports whether the room was created by it (status 201).
// A presence error is returned as *client.StanzaError.
func (e *engine) join(ctx context.Context, s *session, r *room) (created bool, err error) {
	p := xmpp.Elem("presence", xmpp.NSClient)
	p.CreateAttr("to", r.jid.WithResource(s.bare).String())
	x := p.CreateElement("x")
	x.CreateAttr("xmlns", nsMUC)
	x.CreateElement("history").CreateAttr("maxstanzas", "0") // no replay of earlier runs
	if err := s.c.Send(ctx, p); err != nil {
		return false, err
	}
	room := r.jid.String()
	el, err := s.c.Expect(ctx, func(el *etree.Element) bool {
		if el.Tag != "presence" {
			return false
		}
		from, err := xmpp.ParseJID(el.SelectAttrValue("from", ""))
		if err != nil || !strings.EqualFold(from.Bare().String(), room) {
			return false
		}
		typ := el.SelectAttrValue("type", "")
		return typ == "error" || (typ == "" && hasStatus(el, "110"))
	})
	if err != nil {
		return false, err
	}
	if se := client.ErrorOf(el); se != nil {
		return false, se
	}
	return hasStatus(el, "201"), nil
}

// hasStatus reports whether a MUC presence carries <status code=code/>.
func hasStatus(el *etree.Element, code string) bool {
	for _, st := range xmpp.Children(xmpp.Child(el, "x", nsMUCUser), "status", nsMUCUser) {
		if st.SelectAttrValue("code", "") == code {
			return true
		}
	}
	return false
}

// destroyRooms has each ready room's owner destroy it (#destroy, or
// muc#owner <destroy/>), so runs do not pile rooms up on the server.
func (e *engine) destroyRooms() {
	e.forEach(context.Background(), len(e.rooms), func(i int) {
		r := e.rooms[i]
		if !r.ready {
			return
		}
		owner := r.joined[0]
		if owner.dead.Load() {
			e.warning.add("room left behind: its owner's session ended")
			return
		}
		var q *etree.Element
		if e.cfg.Mode == ModeMUC {
			q = xmpp.Elem("query", nsMUCOwner)
			q.CreateElement("destroy")
		} else {
			q = xmpp.Elem("query", nsDestroy)
		}
		ctx, cancel := context.WithTimeout(context.Background(), iqTimeout)
		defer cancel()
		if _, err := owner.c.IQ(ctx, client.IQ("set", r.jid.String(), q)); err != nil {
			e.otherErr.add("destroy room: " + classify(err))
		}
	})
}

package rooms

import (
	"context"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// Namespaces of the modern group chat extensions (README, "Modern group
// chat").
const (
	NSOccupantID = "urn:xmpp:occupant-id:0"
	NSCorrect    = "urn:xmpp:message-correct:0"
	NSRetract    = "urn:xmpp:message-retract:1"
	NSRetract0   = "urn:xmpp:message-retract:0"
	NSModerate   = "urn:xmpp:message-moderate:1"
	NSModerate0  = "urn:xmpp:message-moderate:0"
	NSFasten     = "urn:xmpp:fasten:0"
	NSReactions  = "urn:xmpp:reactions:0"
	NSReply      = "urn:xmpp:reply:0"
	NSMarkers    = "urn:xmpp:chat-markers:0"
	NSSummary    = "urn:xmppws:summary:0"
	NSUnread     = "urn:xmppws:unread:0"
)

// occupantID is a user's occupant id in a room.
func (h *Hub) occupantID(rm, user xmpp.JID) string { return h.occIDs.ID(rm, user) }

// appendOccupantElem appends <occupant-id/> for user in rm: the id is
// base64url, which needs no escaping.
func (h *Hub) appendOccupantElem(b []byte, rm, user xmpp.JID) ([]byte, string) {
	b = append(b, "<occupant-id xmlns='"+NSOccupantID+"' id='"...)
	start := len(b)
	b = h.occIDs.Append(b, rm, user)
	id := string(b[start:])
	return append(b, "'/>"...), id
}

// occupantElem is <occupant-id/> with id.
func occupantElem(id string) *etree.Element {
	e := xmpp.Elem("occupant-id", NSOccupantID)
	e.CreateAttr("id", id)
	return e
}

// decodePost reads a groupchat message, the same in both dialects: its
// children are the payload, less any stanza-id or occupant-id the client
// put there (only the room assigns them), plus the sender's occupant-id;
// the error bounce echoes them as sent. A correction, retraction,
// reactions or displayed marker is decoded for the core, which checks it
// against the archive.
func (h *Hub) decodePost(st *xmpp.Stanza, d room.Dialect) (room.Request, error) {
	body := ""
	if b := xmpp.Child(st.El, "body", xmpp.NSClient); b != nil {
		body = b.Text()
	}
	o := room.OriginOf(st, d)
	q := &room.Post{Head: room.Head{Room: st.To, Origin: o}, Body: body, MsgID: st.ID}
	var payload []byte
	assigned := func(c *etree.Element) bool {
		ns := c.NamespaceURI()
		return c.Tag == "stanza-id" && ns == NSSID || c.Tag == "occupant-id" && ns == NSOccupantID
	}
	stripped := slices.ContainsFunc(st.El.ChildElements(), assigned)
	for _, c := range st.El.ChildElements() {
		ns := c.NamespaceURI()
		switch {
		case assigned(c):
			continue
		case c.Tag == "replace" && ns == NSCorrect:
			if q.Replace = xmpp.Attr(c, "id"); q.Replace == "" {
				return nil, muclight.BadRequest("<replace/> needs the id of the message corrected")
			}
		case c.Tag == "retract" && ns == NSRetract:
			if q.Retract = xmpp.Attr(c, "id"); q.Retract == "" {
				return nil, muclight.BadRequest("<retract/> needs the stanza-id of the message retracted")
			}
		case c.Tag == "reactions" && ns == NSReactions:
			r, err := decodeReactions(c)
			if err != nil {
				return nil, err
			}
			q.React = r
		case c.Tag == "displayed" && ns == NSMarkers && xmpp.Child(st.El, "body", xmpp.NSClient) == nil:
			// A marker with a body is a message that happens to carry one:
			// delivered, not stored as read state.
			if q.Displayed = xmpp.Attr(c, "id"); q.Displayed == "" {
				return nil, muclight.BadRequest("<displayed/> needs the stanza-id read")
			}
		}
		if stripped {
			payload = xmpp.AppendElement(payload, c)
		}
	}
	n := 0
	for _, set := range []bool{q.Replace != "", q.Retract != "", q.React != nil, q.Displayed != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, muclight.BadRequest("a message may correct, retract, react or mark one thing, not several")
	}
	if !stripped {
		// The same bytes: no second serialisation, one copy with room
		// for the occupant-id.
		payload = make([]byte, len(o.Echo), len(o.Echo)+len("<occupant-id xmlns='"+NSOccupantID+"' id=''/>")+22)
		copy(payload, o.Echo)
	}
	q.Payload, q.Occupant = h.appendOccupantElem(payload, st.To, st.From)
	return q, nil
}

// decodeReactions reads a XEP-0444 set: distinct, bounded in number and
// size.
func decodeReactions(c *etree.Element) (*room.React, error) {
	r := &room.React{ID: xmpp.Attr(c, "id")}
	if r.ID == "" {
		return nil, muclight.BadRequest("<reactions/> needs the stanza-id of the message")
	}
	seen := map[string]bool{}
	for _, e := range xmpp.Children(c, "reaction", NSReactions) {
		v := strings.TrimSpace(e.Text())
		switch {
		case v == "":
			return nil, xmpp.NewError(xmpp.NotAcceptable, "an empty reaction")
		case len(v) > room.MaxReactionBytes:
			return nil, xmpp.NewError(xmpp.NotAcceptable, "a reaction is one emoji, at most 32 bytes")
		case seen[v]:
			continue
		}
		seen[v] = true
		r.Emojis = append(r.Emojis, v)
		if len(r.Emojis) > room.MaxReactions {
			return nil, xmpp.NewError(xmpp.NotAcceptable, "at most 20 reactions per message")
		}
	}
	return r, nil
}

// isModerate tells a XEP-0425 request, v1 or v0.
func isModerate(payload *etree.Element) bool {
	ns := payload.NamespaceURI()
	return payload.Tag == "moderate" && ns == NSModerate || payload.Tag == "apply-to" && ns == NSFasten
}

// moderate decodes a moderation IQ and builds the room's announcement (in
// both versions' forms, so v0 and v1 clients understand it).
func (h *Hub) moderate(ctx context.Context, st *xmpp.Stanza, payload *etree.Element, d room.Dialect) {
	if st.Type != "set" {
		h.replyError(st, muclight.BadRequest("moderation is an iq set"))
		return
	}
	id, mod := xmpp.Attr(payload, "id"), payload
	if payload.Tag == "apply-to" {
		if mod = xmpp.Child(payload, "moderate", NSModerate0); mod == nil || xmpp.Child(mod, "retract", NSRetract0) == nil {
			h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only <moderate><retract/></moderate> is supported"))
			return
		}
	} else if xmpp.Child(mod, "retract", NSRetract) == nil {
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only <moderate><retract/></moderate> is supported"))
		return
	}
	if id == "" {
		h.replyError(st, muclight.BadRequest("moderation needs the stanza-id of the message"))
		return
	}
	reason := ""
	if r := xmpp.Child(mod, "reason", mod.NamespaceURI()); r != nil {
		reason = strings.TrimSpace(r.Text())
	}
	by := st.To.Bare().WithResource(st.From.Bare().String())
	occ := h.occupantID(st.To, st.From)

	rt := xmpp.Elem("retract", NSRetract)
	rt.CreateAttr("id", id)
	md := rt.CreateElement("moderated")
	md.CreateAttr("by", by.String())
	md.CreateAttr("xmlns", NSModerate)
	md.AddChild(occupantElem(occ))
	ap := xmpp.Elem("apply-to", NSFasten)
	ap.CreateAttr("id", id)
	m0 := ap.CreateElement("moderated")
	m0.CreateAttr("by", by.String())
	m0.CreateAttr("xmlns", NSModerate0)
	m0.CreateElement("retract").CreateAttr("xmlns", NSRetract0)
	if reason != "" {
		muclight.TextElem(rt, "reason", reason)
		muclight.TextElem(m0, "reason", reason)
	}
	b := xmpp.AppendElement(nil, rt)
	b = xmpp.AppendElement(b, ap)
	h.dispatch(ctx, st, &room.Moderate{Head: room.Head{Room: st.To.Bare(), Origin: room.OriginOf(st, d)},
		ID: id, Reason: reason, Payload: b, Occupant: occ}, nil)
}

package rooms

import (
	"context"
	"strconv"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// Unread counts (README, "Modern group chat"): answered here, outside the
// rooms' actors, since they only read the store and the archive.
const (
	// unreadPage and unreadMaxPage are the default and the largest page
	// of rooms; each room costs up to three indexed reads.
	unreadPage, unreadMaxPage = 50, 100
	// unreadCap stops counting a room's unread messages, so a long
	// absence costs a bounded walk.
	unreadCap = 1000
)

// unread answers a user's unread counts for one page of their rooms on
// the service.
func (h *Hub) unread(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	if st.Type != "get" {
		h.replyError(st, xmpp.NewError(xmpp.BadRequest, "unread counts are an iq get"))
		return
	}
	a := h.core.Archive()
	if a == nil {
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "unread counts need the room history, which is off"))
		return
	}
	user := st.From.Bare()
	ctx, cancel := context.WithTimeout(ctx, 4*h.core.StoreTimeout())
	defer cancel()
	list, err := h.core.Store().GetUserRooms(ctx, user, st.To.Domain)
	if err != nil {
		h.replyError(st, err)
		return
	}
	rsm := xmpp.Child(q, "set", xmpp.NSRSM)
	per := unreadMaxPage
	if rsm == nil {
		per = unreadPage
	}
	page, set, err := pageRooms(list, rsm, per)
	if err != nil {
		h.replyError(st, err)
		return
	}
	rms := make([]xmpp.JID, len(page))
	for i, ri := range page {
		rms[i] = ri.Room
	}
	reads, err := a.Reads(ctx, user, rms)
	if err != nil {
		h.replyError(st, err)
		return
	}
	res := xmpp.Elem("unread", NSUnread)
	for _, rm := range rms {
		e := res.CreateElement("room")
		e.CreateAttr("jid", rm.String())
		last, err := a.Query(ctx, archive.Query{Room: rm, Summary: true, Max: 1, Last: true, CountMax: 1})
		if err != nil {
			h.replyError(st, err)
			return
		}
		read := reads[rm.String()]
		n, err := a.Query(ctx, archive.Query{Room: rm, AfterID: read, Summary: true, Posts: true, NotWith: user, CountMax: unreadCap})
		if err != nil {
			h.replyError(st, err)
			return
		}
		e.CreateAttr("unread", strconv.Itoa(n.Count))
		if n.Count >= unreadCap {
			e.CreateAttr("more", "true")
		}
		if read != "" {
			e.CreateAttr("last-read", read)
		}
		if len(last.Messages) > 0 {
			m := last.Messages[0]
			e.CreateAttr("last-id", m.ID)
			e.CreateAttr("last-activity", m.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
		}
	}
	if set != nil {
		res.AddChild(set)
	}
	h.reply(st, res)
}

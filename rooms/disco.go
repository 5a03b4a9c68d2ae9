package rooms

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/muc"
	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/xmpp"
)

// discoItems lists the rooms the requester occupies on this service, sorted
// by room JID, paged with XEP-0059 (at most rooms_per_page per page).
func (h *Hub) discoItems(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	list, err := h.core.Store().GetUserRooms(ctx, st.From.Bare(), st.To.Domain)
	if err != nil {
		h.replyError(st, err)
		return
	}
	page, set, err := pageRooms(list, xmpp.Child(q, "set", xmpp.NSRSM), h.opts.RoomsPerPage)
	if err != nil {
		h.replyError(st, err)
		return
	}
	res := xmpp.Elem("query", xmpp.NSDiscoItems)
	if set != nil {
		res.AddChild(set)
	}
	for _, ri := range page {
		it := res.CreateElement("item")
		it.CreateAttr("jid", ri.Room.String())
		if name := h.opts.Schema.RoomName(ri.Room, ri.Config); name != "" {
			it.CreateAttr("name", name)
		}
		if !h.opts.LegacyMode {
			it.CreateAttr("version", ri.Version)
		}
	}
	h.reply(st, res)
}

// pageRooms applies an RSM request to the sorted list. perPage caps the
// page size (0: unlimited). Without a <set/> in the request the first page
// is returned, with a <set/> in the answer whenever paging applies.
func pageRooms(list []RoomInfo, rsm *etree.Element, perPage int) ([]RoomInfo, *etree.Element, error) {
	n := len(list)
	if rsm == nil {
		if perPage == 0 || n == 0 {
			return list, nil, nil
		}
		page := list[:min(perPage, n)]
		return page, rsmResult(list, 0, len(page)), nil
	}
	limit := perPage
	if m := xmpp.Child(rsm, "max", xmpp.NSRSM); m != nil {
		v, err := strconv.Atoi(strings.TrimSpace(m.Text()))
		if err != nil || v < 0 {
			return nil, nil, muclight.BadRequest("RSM <max/> must be a non-negative integer")
		}
		if perPage == 0 || v < limit {
			limit = v
		}
	}
	if limit == 0 && perPage == 0 && xmpp.Child(rsm, "max", xmpp.NSRSM) == nil {
		limit = n // no cap and no max: everything
	}
	if limit == 0 {
		set := xmpp.Elem("set", xmpp.NSRSM)
		muclight.TextElem(set, "count", strconv.Itoa(n))
		return nil, set, nil
	}
	indexOf := func(s string) (int, error) {
		j, err := xmpp.ParseJID(strings.TrimSpace(s))
		i := slices.IndexFunc(list, func(ri RoomInfo) bool { return ri.Room == j })
		if err != nil || i < 0 {
			return 0, xmpp.NewError(xmpp.ItemNotFound, "no such item in the list: "+s)
		}
		return i, nil
	}
	start := 0
	if a := xmpp.Child(rsm, "after", xmpp.NSRSM); a != nil {
		i, err := indexOf(a.Text())
		if err != nil {
			return nil, nil, err
		}
		start = i + 1
	} else if b := xmpp.Child(rsm, "before", xmpp.NSRSM); b != nil {
		end := n
		if strings.TrimSpace(b.Text()) != "" {
			i, err := indexOf(b.Text())
			if err != nil {
				return nil, nil, err
			}
			end = i
		}
		start = max(0, end-limit)
		limit = end - start
	} else if ix := xmpp.Child(rsm, "index", xmpp.NSRSM); ix != nil {
		i, err := strconv.Atoi(strings.TrimSpace(ix.Text()))
		if err != nil || i < 0 || (i >= n && n > 0) {
			return nil, nil, xmpp.NewError(xmpp.ItemNotFound, "RSM index out of range")
		}
		start = i
	}
	end := min(n, start+limit)
	if start >= end {
		set := xmpp.Elem("set", xmpp.NSRSM)
		muclight.TextElem(set, "count", strconv.Itoa(n))
		return nil, set, nil
	}
	return list[start:end], rsmResult(list, start, end), nil
}

func rsmResult(list []RoomInfo, start, end int) *etree.Element {
	set := xmpp.Elem("set", xmpp.NSRSM)
	f := muclight.TextElem(set, "first", list[start].Room.String())
	f.CreateAttr("index", strconv.Itoa(start))
	muclight.TextElem(set, "last", list[end-1].Room.String())
	muclight.TextElem(set, "count", strconv.Itoa(len(list)))
	return set
}

// RosterItems implements rooms_in_rosters: each room the user occupies, on
// every MUC Light service of the user's domain, as a roster item.
func (h *Hub) RosterItems(ctx context.Context, user xmpp.JID) ([]*etree.Element, error) {
	if !h.opts.RoomsInRosters {
		return nil, nil
	}
	var out []*etree.Element
	for svc, host := range h.core.Services() {
		if host != user.Domain {
			continue
		}
		list, err := h.core.Store().GetUserRooms(ctx, user.Bare(), svc)
		if err != nil {
			return nil, err
		}
		for _, ri := range list {
			it := etree.NewElement("item")
			it.CreateAttr("jid", ri.Room.String())
			if name := h.opts.Schema.RoomName(ri.Room, ri.Config); name != "" {
				it.CreateAttr("name", name)
			}
			it.CreateAttr("subscription", "to")
			muclight.TextElem(it, "group", NS)
			muclight.TextElem(it, "version", ri.Version)
			out = append(out, it)
		}
	}
	return out, nil
}

// roomDiscoItems answers disco#items sent to a room: a MUC Light room has
// no items of its own (its occupants are listed by #affiliations), so the
// answer is an empty list, or item-not-found for a room that does not exist.
func (h *Hub) roomDiscoItems(ctx context.Context, st *xmpp.Stanza) {
	sctx, cancel := context.WithTimeout(ctx, h.core.StoreTimeout())
	defer cancel()
	ok, err := h.core.Store().RoomExists(sctx, st.To)
	if err == nil && !ok {
		err = xmpp.NewError(xmpp.ItemNotFound, "no such room")
	}
	if err != nil {
		h.replyError(st, err)
		return
	}
	h.reply(st, xmpp.Elem("query", xmpp.NSDiscoItems))
}

// discoInfo answers disco#info of the service or of a room: both dialects'
// features (MUC Light's first), history's when it is on. A room that does
// not exist has no identity to show.
func (h *Hub) discoInfo(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	if isRoom {
		sctx, cancel := context.WithTimeout(ctx, h.core.StoreTimeout())
		ok, err := h.core.Store().RoomExists(sctx, st.To)
		cancel()
		if err == nil && !ok {
			err = xmpp.NewError(xmpp.ItemNotFound, "no such room")
		}
		if err != nil {
			h.replyError(st, err)
			return
		}
		h.reply(st, h.conferenceInfo("MUC Light", append([]string{NS}, muc.RoomFeatures...)...))
		return
	}
	h.reply(st, h.conferenceInfo("MUC Light", NS, NSMUC))
}

// conferenceInfo is a disco#info answer for a text conference named name
// with the given features, plus the history features when history is on.
func (h *Hub) conferenceInfo(name string, features ...string) *etree.Element {
	q := xmpp.Elem("query", xmpp.NSDiscoInfo)
	id := q.CreateElement("identity")
	id.CreateAttr("category", "conference")
	id.CreateAttr("type", "text")
	id.CreateAttr("name", name)
	for _, f := range features {
		q.CreateElement("feature").CreateAttr("var", f)
	}
	q.CreateElement("feature").CreateAttr("var", NSOccupantID)
	if h.core.History() {
		for _, f := range mam.Features {
			q.CreateElement("feature").CreateAttr("var", f)
		}
		for _, f := range []string{NSCorrect, NSRetract, NSModerate, NSModerate0, NSReactions, NSMarkers, NSSummary, NSUnread} {
			q.CreateElement("feature").CreateAttr("var", f)
		}
	}
	return q
}

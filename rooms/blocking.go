package rooms

import (
	"context"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/xmpp"
)

// blocking answers #blocking get and set. A user's list names rooms they
// may not be added to and users who may not add them; it is consulted only
// when someone is being added.
func (h *Hub) blocking(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	if !h.opts.Blocking {
		h.replyError(st, muclight.BadRequest("blocking is disabled on this service"))
		return
	}
	user := st.From.Bare()
	if st.Type == "get" {
		items, err := h.core.Store().GetBlocking(ctx, user)
		if err != nil {
			h.replyError(st, err)
			return
		}
		res := xmpp.Elem("query", NSBlocking)
		for _, it := range items {
			e := muclight.TextElem(res, string(it.Kind), it.JID.String())
			e.CreateAttr("action", "deny")
		}
		h.reply(st, res)
		return
	}
	kids, err := muclight.ElementChildren(q)
	if err != nil {
		h.replyError(st, err)
		return
	}
	var deny, allow []BlockItem
	for _, k := range kids {
		kind := BlockKind(k.Tag)
		action := xmpp.Attr(k, "action")
		j, err := xmpp.ParseJID(k.Text())
		if (kind != BlockRoom && kind != BlockUser) || (action != "deny" && action != "allow") ||
			err != nil || j.Local == "" || len(k.ChildElements()) > 0 {
			h.replyError(st, muclight.BadRequest("expected <room|user action='deny|allow'>JID</room|user>"))
			return
		}
		it := BlockItem{Kind: kind, JID: j.Bare()}
		if action == "deny" {
			deny = append(deny, it)
		} else {
			allow = append(allow, it)
		}
	}
	if err := h.core.Store().SetBlocking(ctx, user, deny, allow); err != nil {
		h.replyError(st, err)
		return
	}
	h.reply(st, nil)
}

package rooms

import (
	"context"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/xmpp"
)

// privacy maps blocking onto the privacy list named after MUC Light's
// namespace: a room is an item whose value is the room JID, a user one whose
// value is service/user-bare-JID.
func (h *Hub) privacy(ctx context.Context, st *xmpp.Stanza, q *etree.Element) {
	user := st.From.Bare()
	svc := h.opts.ServiceDomain(user.Domain)
	lists := xmpp.Children(q, "list", NSPrivacy)
	if !h.opts.Blocking || len(lists) != 1 || xmpp.Attr(lists[0], "name") != NS {
		if st.Type == "get" && len(lists) == 0 && len(q.ChildElements()) == 0 {
			res := xmpp.Elem("query", NSPrivacy)
			if h.opts.Blocking {
				res.CreateElement("list").CreateAttr("name", NS)
			}
			h.reply(st, res)
			return
		}
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "only the "+NS+" list exists"))
		return
	}
	if st.Type == "get" {
		items, err := h.core.Store().GetBlocking(ctx, user)
		if err != nil {
			h.replyError(st, err)
			return
		}
		res := xmpp.Elem("query", NSPrivacy)
		l := res.CreateElement("list")
		l.CreateAttr("name", NS)
		for _, it := range items {
			v := it.JID.String()
			if it.Kind == BlockUser {
				v = svc + "/" + v
			}
			e := l.CreateElement("item")
			e.CreateAttr("type", "jid")
			e.CreateAttr("value", v)
			e.CreateAttr("action", "deny")
			e.CreateAttr("order", "1")
		}
		h.reply(st, res)
		return
	}
	var deny, allow []BlockItem
	for _, it := range xmpp.Children(lists[0], "item", NSPrivacy) {
		j, err := xmpp.ParseJID(xmpp.Attr(it, "value"))
		var bi BlockItem
		switch {
		case err != nil || xmpp.Attr(it, "type") != "jid":
			h.replyError(st, muclight.BadRequest("items are of type jid"))
			return
		case j.Domain == svc && j.Local == "" && j.Resource != "":
			u, err := muclight.ParseUserJID(j.Resource)
			if err != nil {
				h.replyError(st, err)
				return
			}
			bi = BlockItem{Kind: BlockUser, JID: u}
		case j.Local != "" && j.Resource == "":
			bi = BlockItem{Kind: BlockRoom, JID: j}
		default:
			h.replyError(st, muclight.BadRequest("value is a room JID or service/user-JID"))
			return
		}
		switch xmpp.Attr(it, "action") {
		case "deny":
			deny = append(deny, bi)
		case "allow":
			allow = append(allow, bi)
		default:
			h.replyError(st, muclight.BadRequest("action is deny or allow"))
			return
		}
	}
	if err := h.core.Store().SetBlocking(ctx, user, deny, allow); err != nil {
		h.replyError(st, err)
		return
	}
	h.reply(st, nil)
}

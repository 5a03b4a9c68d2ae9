package rooms

import (
	"context"

	"github.com/wschat/xmppws/mam"
	"github.com/wschat/xmppws/muc"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// handleLegacy serves legacy_mode: MongooseIM's XEP-0045-only service, the
// same rooms, store and limiter with no MUC Light requests at all.
func (h *Hub) handleLegacy(ctx context.Context, st *xmpp.Stanza) {
	isRoom := st.To.Local != ""
	switch st.Kind {
	case xmpp.KindPresence:
		if isRoom {
			h.presence(ctx, st)
		}
	case xmpp.KindMessage:
		h.legacyMessage(ctx, st, isRoom)
	default:
		h.legacyIQ(ctx, st, isRoom)
	}
}

func (h *Hub) legacyMessage(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	switch {
	case !isRoom:
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, ""))
	case st.To.Resource != "":
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, "private messages are not supported"))
	case st.Type == "groupchat" && muc.IsSubjectChange(st):
		h.dispatch(ctx, st, muc.DecodeSubject(st), nil)
	case st.Type == "groupchat":
		h.dispatchDecoded(ctx, st)(h.decodePost(st, room.MUC))
	default:
		h.dispatchDecoded(ctx, st)(muc.DecodeInvitation(st))
	}
}

func (h *Hub) legacyIQ(ctx context.Context, st *xmpp.Stanza, isRoom bool) {
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	switch {
	case ns == xmpp.NSPing && isRoom:
		h.dispatch(ctx, st, muc.DecodePing(st), nil)
	case st.To.Resource != "":
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, ""))
	case payload.Tag == "query" && ns == xmpp.NSDiscoInfo && st.Type == "get":
		if !isRoom {
			h.reply(st, h.conferenceInfo("MUC Light (legacy)", NSMUC))
			return
		}
		h.dispatch(ctx, st, muc.DecodeInfo(st), nil)
	case payload.Tag == "query" && ns == xmpp.NSDiscoItems && st.Type == "get":
		if isRoom {
			h.reply(st, xmpp.Elem("query", xmpp.NSDiscoItems)) // occupants are not listed
			return
		}
		h.discoItems(ctx, st, payload)
	case payload.Tag == "query" && mam.IsQuery(ns) && h.core.History() && isRoom:
		h.mamRequest(ctx, st, payload, room.MUC)
	case payload.Tag == "query" && ns == NSMUCOwner && isRoom:
		h.owner(ctx, st, payload)
	case payload.Tag == "query" && ns == NSMUCAdmin && isRoom:
		h.dispatchDecoded(ctx, st)(muc.DecodeAdmin(st, payload))
	case isModerate(payload) && isRoom:
		h.moderate(ctx, st, payload, room.MUC)
	case payload.Tag == "unread" && ns == NSUnread && !isRoom:
		h.unread(ctx, st, payload)
	default:
		h.replyError(st, xmpp.NewError(xmpp.FeatureNotImplemented, ""))
	}
}

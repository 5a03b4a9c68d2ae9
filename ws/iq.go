package ws

import (
	"context"
	"runtime/debug"

	"github.com/wschat/xmppws/xmpp"
)

// ServerName is what the server calls itself in disco and jabber:iq:version.
const ServerName = "xmppws"

// serverIQ answers iqs addressed to a served domain itself.
func (r *Router) serverIQ(ctx context.Context, from *session, st *xmpp.Stanza) {
	if st.Type != "get" && st.Type != "set" {
		return // results and errors addressed to the server end here
	}
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	switch {
	case st.Type == "get" && xmpp.Is(payload, "query", xmpp.NSDiscoInfo) && xmpp.Attr(payload, "node") == "":
		q := xmpp.Elem("query", xmpp.NSDiscoInfo)
		id := q.CreateElement("identity")
		id.CreateAttr("category", "server")
		id.CreateAttr("type", "im")
		id.CreateAttr("name", ServerName)
		for _, f := range []string{xmpp.NSDiscoInfo, xmpp.NSDiscoItems, xmpp.NSPing, xmpp.NSVersion} {
			q.CreateElement("feature").CreateAttr("var", f)
		}
		from.sendElement(xmpp.ResultIQ(st, q))
	case st.Type == "get" && xmpp.Is(payload, "query", xmpp.NSDiscoItems) && xmpp.Attr(payload, "node") == "":
		q := xmpp.Elem("query", xmpp.NSDiscoItems)
		for _, svc := range r.sortedServices(st.To.Domain) {
			it := q.CreateElement("item")
			it.CreateAttr("jid", svc.domain)
			if svc.node != "" {
				it.CreateAttr("node", svc.node)
			}
		}
		from.sendElement(xmpp.ResultIQ(st, q))
	case st.Type == "get" && xmpp.Is(payload, "query", xmpp.NSVersion):
		q := xmpp.Elem("query", xmpp.NSVersion)
		q.CreateElement("name").SetText(ServerName)
		q.CreateElement("version").SetText(version())
		from.sendElement(xmpp.ResultIQ(st, q))
	case ns == xmpp.NSPing || ns == xmpp.NSSession:
		from.sendElement(xmpp.ResultIQ(st, nil))
	default:
		from.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
	}
}

// accountIQ answers iqs a user addresses to their own account (no 'to', or
// their bare JID): the roster, ping, the legacy session request.
func (r *Router) accountIQ(ctx context.Context, from *session, st *xmpp.Stanza) {
	if st.Type != "get" && st.Type != "set" {
		return
	}
	payload := st.El.ChildElements()[0]
	ns := payload.NamespaceURI()
	if h := r.accountHandler(ns); h != nil {
		h.HandleStanza(ctx, st)
		return
	}
	switch {
	case ns == xmpp.NSRoster && payload.Tag == "query":
		if st.Type == "set" {
			from.replyError(st, xmpp.NewError(xmpp.NotAllowed, "this server keeps no editable roster"))
			return
		}
		q := xmpp.Elem("query", xmpp.NSRoster)
		for _, src := range r.rosterSources() {
			items, err := src.RosterItems(ctx, from.user)
			if err != nil {
				from.log.Error("roster source failed", "err", err)
				from.replyError(st, xmpp.NewError(xmpp.InternalServerError, ""))
				return
			}
			for _, it := range items {
				q.AddChild(it)
			}
		}
		from.sendElement(xmpp.ResultIQ(st, q))
	case st.Type == "get" && xmpp.Is(payload, "query", xmpp.NSDiscoInfo) && xmpp.Attr(payload, "node") == "":
		q := xmpp.Elem("query", xmpp.NSDiscoInfo)
		id := q.CreateElement("identity")
		id.CreateAttr("category", "account")
		id.CreateAttr("type", "registered")
		q.CreateElement("feature").CreateAttr("var", xmpp.NSDiscoInfo)
		for _, f := range r.accountFeatures() {
			q.CreateElement("feature").CreateAttr("var", f)
		}
		from.sendElement(xmpp.ResultIQ(st, q))
	case ns == xmpp.NSPing || ns == xmpp.NSSession:
		from.sendElement(xmpp.ResultIQ(st, nil))
	default:
		from.replyError(st, xmpp.NewError(xmpp.ServiceUnavailable, ""))
	}
}

// version reports the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

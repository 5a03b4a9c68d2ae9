package mam

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/muclight"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// Namespaces of room history.
const (
	NS2     = "urn:xmpp:mam:2"
	NS1     = "urn:xmpp:mam:1"
	NSSID   = "urn:xmpp:sid:0"
	NSForwd = "urn:xmpp:forward:0"
	// NSSummary flags a summary query and holds a result's folded state.
	NSSummary   = "urn:xmppws:summary:0"
	nsRetract   = "urn:xmpp:message-retract:1"
	nsModerate  = "urn:xmpp:message-moderate:1"
	nsOccupant  = "urn:xmpp:occupant-id:0"
	stampLayout = "2006-01-02T15:04:05.000000Z"
)

// Tombstone is what a retracted or moderated message is served as
// (XEP-0424 §5, XEP-0425): its address, id, stanza-id and occupant id,
// and who removed it when, without any content.
func Tombstone(m archive.Message, occupant func(rm, user xmpp.JID) string) *etree.Element {
	from := m.Room
	if !m.Sender.IsZero() {
		from = m.Room.WithResource(m.Sender.String())
	}
	msg := xmpp.NewStanzaElement(xmpp.KindMessage, "groupchat", m.MsgID, from, xmpp.JID{})
	t := m.Tomb
	rt := msg.CreateElement("retracted")
	rt.CreateAttr("xmlns", nsRetract)
	rt.CreateAttr("stamp", t.At.UTC().Format(stampLayout))
	if !t.By.IsZero() {
		md := rt.CreateElement("moderated")
		md.CreateAttr("by", m.Room.WithResource(t.By.String()).String())
		md.CreateAttr("xmlns", nsModerate)
		if t.ByOccupant != "" {
			o := md.CreateElement("occupant-id")
			o.CreateAttr("xmlns", nsOccupant)
			o.CreateAttr("id", t.ByOccupant)
		}
		if t.Reason != "" {
			muclight.TextElem(rt, "reason", t.Reason)
		}
	}
	if !m.Sender.IsZero() {
		o := msg.CreateElement("occupant-id")
		o.CreateAttr("xmlns", nsOccupant)
		o.CreateAttr("id", occupant(m.Room, m.Sender))
	}
	sid := msg.CreateElement("stanza-id")
	sid.CreateAttr("xmlns", NSSID)
	sid.CreateAttr("by", m.Room.String())
	sid.CreateAttr("id", m.ID)
	return msg
}

// addSummary adds a result's latest edit and reactions, when it has any.
func addSummary(r *etree.Element, m archive.Message) {
	if m.Edit == nil && len(m.Reactions) == 0 {
		return
	}
	s := r.CreateElement("summary")
	s.CreateAttr("xmlns", NSSummary)
	if e := m.Edit; e != nil {
		ed := s.CreateElement("edit")
		ed.CreateAttr("id", e.ID)
		ed.CreateAttr("stamp", e.Time.UTC().Format(stampLayout))
		muclight.TextElem(ed, "body", e.Body)
	}
	if len(m.Reactions) > 0 {
		rs := s.CreateElement("reactions")
		for _, u := range m.Reactions {
			for _, emoji := range u.Emojis {
				x := muclight.TextElem(rs, "reaction", emoji)
				x.CreateAttr("from", m.Room.WithResource(u.User.String()).String())
				if u.OccupantID != "" {
					x.CreateAttr("occupant-id", u.OccupantID)
				}
			}
		}
	}
}

// Features are what disco#info advertises when history is on.
var Features = []string{NS2, NS1, NSSID}

// IsQuery reports whether ns is a MAM namespace this server answers.
func IsQuery(ns string) bool { return ns == NS2 || ns == NS1 }

// Form answers the query-fields request (XEP-0313 §5.1).
func Form(ns string) *etree.Element {
	q := xmpp.Elem("query", ns)
	x := q.CreateElement("x")
	x.CreateAttr("xmlns", xmpp.NSDataForm)
	x.CreateAttr("type", "form")
	ft := x.CreateElement("field")
	ft.CreateAttr("var", "FORM_TYPE")
	ft.CreateAttr("type", "hidden")
	muclight.TextElem(ft, "value", ns)
	for _, f := range []struct{ v, t string }{{"start", "text-single"}, {"end", "text-single"}, {"with", "jid-single"},
		{"before-id", "text-single"}, {"after-id", "text-single"}, {"ids", "text-multi"}} {
		e := x.CreateElement("field")
		e.CreateAttr("var", f.v)
		e.CreateAttr("type", f.t)
	}
	return q
}

func badRequest(text string) error { return muclight.BadRequest(text) }

// Decode reads a XEP-0313 query of a room: the data form filters and RSM
// paging, page sizes bounded by def and max.
func Decode(st *xmpp.Stanza, q *etree.Element, d room.Dialect, def, max int) (*room.QueryHistory, error) {
	ns := q.NamespaceURI()
	mq := &room.QueryHistory{Head: room.Head{Room: st.To.Bare(), Origin: room.OriginOf(st, d)},
		NS: ns, QueryID: xmpp.Attr(q, "queryid"), Query: archive.Query{Room: st.To.Bare(), Max: def}}
	if x := xmpp.Child(q, "x", xmpp.NSDataForm); x != nil {
		for _, f := range xmpp.Children(x, "field", xmpp.NSDataForm) {
			var vals []string
			for _, v := range xmpp.Children(f, "value", xmpp.NSDataForm) {
				vals = append(vals, strings.TrimSpace(v.Text()))
			}
			one := ""
			if len(vals) > 0 {
				one = vals[0]
			}
			var err error
			switch v := xmpp.Attr(f, "var"); v {
			case "FORM_TYPE":
				if one != ns {
					return nil, badRequest("FORM_TYPE must be " + ns)
				}
			case "start", "end":
				var t time.Time
				if t, err = time.Parse(time.RFC3339Nano, one); err != nil {
					return nil, badRequest(v + ": not an XEP-0082 date-time")
				}
				if v == "start" {
					mq.Query.Start = t
				} else {
					mq.Query.End = t
				}
			case "with":
				if mq.Query.With, err = xmpp.ParseJID(one); err != nil || mq.Query.With.IsZero() {
					return nil, badRequest("with: not a JID")
				}
				mq.Query.With = mq.Query.With.Bare()
			case "before-id":
				mq.Query.BeforeID = one
			case "after-id":
				mq.Query.AfterID = one
			case "ids":
				if len(vals) == 0 {
					return nil, badRequest("ids: no id given")
				}
				mq.Query.IDs = vals
			default:
				return nil, badRequest("unknown filter " + v)
			}
		}
	}
	if set := xmpp.Child(q, "set", xmpp.NSRSM); set != nil {
		if m := xmpp.Child(set, "max", xmpp.NSRSM); m != nil {
			n, err := strconv.Atoi(strings.TrimSpace(m.Text()))
			if err != nil || n < 0 {
				return nil, badRequest("RSM <max/> must be a non-negative integer")
			}
			mq.Query.Max = n
		}
		if xmpp.Child(set, "index", xmpp.NSRSM) != nil {
			return nil, xmpp.NewError(xmpp.FeatureNotImplemented, "RSM <index/> is not supported; page with <after/> and <before/>")
		}
		if a := xmpp.Child(set, "after", xmpp.NSRSM); a != nil {
			mq.Query.After = strings.TrimSpace(a.Text())
		}
		if b := xmpp.Child(set, "before", xmpp.NSRSM); b != nil {
			mq.Query.Before = strings.TrimSpace(b.Text())
			mq.Query.Last = mq.Query.Before == ""
		}
	}
	mq.Query.Max = min(mq.Query.Max, max)
	if mq.Query.Max == 0 {
		mq.CountOnly, mq.Query.Max = true, 1
	}
	mq.Flip = xmpp.Child(q, "flip-page", ns) != nil
	mq.Query.Summary = xmpp.Child(q, "summary", NSSummary) != nil
	return mq, nil
}

// Render is an answered query: one message per result, in page order
// (reversed with flip-page), then the iq result with <fin/>. An archived
// message that no longer parses is logged and left out. A tombstone is
// rendered from its record (its stanza is gone); occupant gives the
// occupant ids it names.
func Render(rep room.Reply, log *slog.Logger, occupant func(rm, user xmpp.JID) string) []*xmpp.Outbound {
	mq, page := rep.History, rep.History.Page
	msgs := page.Messages
	if mq.CountOnly {
		msgs = nil
	}
	out := make([]*xmpp.Outbound, 0, len(msgs)+1)
	for k := range msgs {
		i := k
		if mq.Flip {
			i = len(msgs) - 1 - k
		}
		m := msgs[i]
		var fwd *etree.Element
		if m.Tomb != nil {
			fwd = Tombstone(m, occupant)
		} else {
			var err error
			if fwd, err = xmpp.ParseElement(m.Stanza); err != nil {
				log.Error("unreadable archived message", "room", m.Room.String(), "id", m.ID, "err", err)
				continue
			}
		}
		res := xmpp.NewStanzaElement(xmpp.KindMessage, "", room.RandomHex(8), rep.Origin.To, xmpp.JID{})
		r := res.CreateElement("result")
		r.CreateAttr("xmlns", mq.NS)
		if mq.QueryID != "" {
			r.CreateAttr("queryid", mq.QueryID)
		}
		r.CreateAttr("id", m.ID)
		f := r.CreateElement("forwarded")
		f.CreateAttr("xmlns", NSForwd)
		d := f.CreateElement("delay")
		d.CreateAttr("xmlns", xmpp.NSDelay)
		d.CreateAttr("stamp", m.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
		f.AddChild(fwd)
		if mq.Summary {
			addSummary(r, m)
		}
		out = append(out, xmpp.NewOutbound(res))
	}
	fin := xmpp.Elem("fin", mq.NS)
	if page.Complete || mq.CountOnly {
		fin.CreateAttr("complete", "true")
	} else {
		fin.CreateAttr("complete", "false")
	}
	set := fin.CreateElement("set")
	set.CreateAttr("xmlns", xmpp.NSRSM)
	if len(msgs) > 0 {
		first := muclight.TextElem(set, "first", msgs[0].ID)
		first.CreateAttr("index", strconv.Itoa(page.FirstIndex))
		muclight.TextElem(set, "last", msgs[len(msgs)-1].ID)
	}
	muclight.TextElem(set, "count", strconv.Itoa(page.Count))
	res := xmpp.NewStanzaElement(xmpp.KindIQ, "result", rep.Origin.ID, rep.Origin.To, xmpp.JID{})
	res.AddChild(fin)
	return append(out, xmpp.NewOutbound(res))
}

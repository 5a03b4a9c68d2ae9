package rooms

import (
	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// The actor's side of legacy mode: the same operations as the native
// protocol, told to clients in XEP-0045's words.

// legacyCreated answers a join that created the room: the creator's own
// presence with status 110 (self) and 201 (new room).
func (r *room) legacyCreated(req request, affs []Aff) {
	creator := req.st.From.Bare()
	r.hub.deliver(req.st.From, occupantPresence(r.jid, creator, affOf(affs, creator), "", r.selfCodes(req, "201")...))
}

// selfCodes are the status codes of a user's own presence: 110, 210 when
// the nick they asked for was replaced by their bare JID, then extra.
func (r *room) selfCodes(req request, extra ...string) []string {
	codes := []string{"110"}
	if req.nick != "" && req.nick != req.st.From.Bare().String() {
		codes = append(codes, "210")
	}
	return append(codes, extra...)
}

// join lets an occupant enter: the other occupants' presences (MUC Light
// rooms have no presence, so every occupant shows as present), their own
// presence, then the subject, in XEP-0045's order.
func (r *room) join(req request, sender xmpp.JID, aff Affiliation) error {
	if se, reason := r.limiter.checkNick(aff, req.nick); se != nil {
		r.hub.m.limiterRefusals.WithLabelValues(reason, r.hub.services[r.jid.Domain]).Inc()
		return se
	}
	if err := r.limit(aff, ""); err != nil {
		return err
	}
	to := req.st.From
	for _, a := range r.affs {
		if a.User != sender {
			r.hub.deliver(to, occupantPresence(r.jid, a.User, a.Aff, ""))
		}
	}
	r.hub.deliver(to, occupantPresence(r.jid, sender, aff, "", r.selfCodes(req)...))
	subject := ""
	if f, ok := r.hub.opts.Schema.field("subject"); ok {
		subject = r.cfg[f.InternalKey]
	}
	r.hub.deliver(to, subjectMessage(r.jid, subject))
	return nil
}

// legacyDestroyed tells each former occupant the room is gone: their own
// unavailable presence with <destroy/>.
func (r *room) legacyDestroyed(former []Aff) {
	for _, a := range former {
		p := occupantPresence(r.jid, a.User, None, "unavailable")
		xmpp.Child(p, "x", NSMUCUser).CreateElement("destroy")
		r.hub.deliver(a.User, p)
	}
}

// legacyConfigChanged announces a configuration change: status 104 when
// anything but the subject changed, the subject message when it did.
func (r *room) legacyConfigChanged(req request, echo []configField) {
	other, subject := false, false
	for _, f := range echo {
		if f.Name == "subject" {
			subject = true
		} else {
			other = true
		}
	}
	for _, a := range r.affs {
		if other {
			r.hub.deliver(a.User, statusMessage(r.jid, "104"))
		}
	}
	if subject {
		subj := ""
		for _, f := range echo {
			if f.Name == "subject" {
				subj = f.Value
			}
		}
		out := xmpp.NewOutbound(subjectMessage(r.jid.WithResource(req.st.From.Bare().String()), subj))
		for _, a := range r.affs {
			r.hub.out.Deliver(a.User, out)
		}
	}
	if req.st.Kind == xmpp.KindIQ {
		r.hub.reply(req.st, nil)
	}
}

// legacyAnnounce tells an affiliation change the XEP-0045 way: occupants
// who stay see a presence per changed user (unavailable with 321 for those
// removed); newcomers get a mediated invitation; removed users their own
// unavailable presence with 321.
func (r *room) legacyAnnounce(res AffResult, by xmpp.JID) {
	h := r.hub
	changed := affDiff(res.Old, res.New)
	var updates []*xmpp.Outbound
	for _, c := range changed {
		if c.Aff == None {
			updates = append(updates, xmpp.NewOutbound(occupantPresence(r.jid, c.User, None, "unavailable", "321")))
		} else {
			updates = append(updates, xmpp.NewOutbound(occupantPresence(r.jid, c.User, c.Aff, "")))
		}
	}
	for _, a := range res.New {
		if affOf(res.Old, a.User) == None {
			inv := xmpp.NewStanzaElement(xmpp.KindMessage, "", randomHex(8), r.jid, xmpp.JID{})
			x := inv.CreateElement("x")
			x.CreateAttr("xmlns", NSMUCUser)
			x.CreateElement("invite").CreateAttr("from", by.String())
			h.deliver(a.User, inv)
			continue
		}
		for _, u := range updates {
			h.out.Deliver(a.User, u)
		}
	}
	for _, a := range res.Old {
		if affOf(res.New, a.User) == None {
			h.deliver(a.User, occupantPresence(r.jid, a.User, None, "unavailable", "321", "110"))
		}
	}
}

// legacyConfigForm is the muc#owner configuration form.
func (r *room) legacyConfigForm() *etree.Element {
	q := xmpp.Elem("query", NSMUCOwner)
	x := q.CreateElement("x")
	x.CreateAttr("xmlns", xmpp.NSDataForm)
	x.CreateAttr("type", "form")
	textElem(x, "title", "Configuration of "+r.jid.String())
	ft := x.CreateElement("field")
	ft.CreateAttr("var", "FORM_TYPE")
	ft.CreateAttr("type", "hidden")
	textElem(ft, "value", nsRoomConfg)
	for _, f := range r.hub.opts.Schema.render(r.cfg) {
		fe := x.CreateElement("field")
		fe.CreateAttr("var", formVarOf(f.Name))
		fe.CreateAttr("type", "text-single")
		fe.CreateAttr("label", f.Name)
		textElem(fe, "value", f.Value)
	}
	return q
}

// legacyAffList is the muc#admin list of one affiliation.
func (r *room) legacyAffList(aff Affiliation) *etree.Element {
	q := xmpp.Elem("query", NSMUCAdmin)
	for _, a := range r.affs {
		if a.Aff != aff {
			continue
		}
		it := q.CreateElement("item")
		it.CreateAttr("affiliation", string(a.Aff))
		it.CreateAttr("jid", a.User.String())
		it.CreateAttr("nick", a.User.String())
		it.CreateAttr("role", mucRole(a.Aff))
	}
	return q
}

// legacyRoomInfo is the room's disco#info for XEP-0045 clients.
func (r *room) legacyRoomInfo() *etree.Element {
	return r.hub.conferenceInfo(r.hub.opts.Schema.roomName(r.jid, r.cfg),
		NSMUC, "muc_persistent", "muc_membersonly", "muc_nonanonymous", "muc_unsecured")
}

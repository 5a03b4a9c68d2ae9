package rooms

import (
	"errors"
	"fmt"
	"slices"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

func (r *room) rules() affRules {
	return affRules{equalOccupants: r.hub.opts.EqualOccupants, maxOccupants: r.hub.opts.MaxOccupants, now: r.hub.now().UnixNano()}
}

// create makes the room: configuration from the schema's defaults plus what
// the request sets, the creator and the listed occupants. Every occupant is
// told their own affiliation and the version before the requester gets the
// result.
func (r *room) create(req request) error {
	st, h := req.st, r.hub
	if r.exists {
		return xmpp.NewError(xmpp.Conflict, "the room already exists")
	}
	if err := r.checkValueSizes(req.fields); err != nil {
		return err
	}
	changes, _, err := h.opts.Schema.parseConfig(req.fields)
	if err != nil {
		return err
	}
	items := req.items
	creator := st.From.Bare()
	if se, reason := r.limiter.checkNick(Owner, req.nick); se != nil {
		h.m.limiterRefusals.WithLabelValues(reason, h.services[r.jid.Domain]).Inc()
		return se
	}
	for _, it := range items {
		if it.User == creator || it.Aff == None {
			return badRequest("the occupant list may not name the creator or the affiliation none")
		}
	}
	if !req.rated && !h.creates.take(creator, h.now()) {
		h.m.createRefusals.Inc()
		return errCreateRate
	}
	if items, err = r.admissible(creator, items, !req.generated); err != nil {
		return err
	}
	first := Aff{User: creator, Aff: Owner, Since: h.now().UnixNano()}
	if h.opts.EqualOccupants {
		first.Aff = Member
	}
	cfg := h.opts.Schema.defaults()
	for k, v := range changes {
		cfg[k] = v
	}
	version := newVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	// The store checks rooms_per_user in the write itself; occupants it
	// refuses are left out, as MongooseIM's documentation says, and the
	// room is computed again without them (who owns it may depend on them).
	var affs []Aff
	for {
		if affs, err = applyAffChanges([]Aff{first}, items, r.rules()); err != nil {
			return err
		}
		err = h.store.CreateRoom(ctx, r.jid, cfg, affs, version, r.caps())
		var full *RoomCapError
		if !errors.As(err, &full) {
			break
		}
		h.m.roomCapRefusals.Add(float64(len(full.Users)))
		if slices.Contains(full.Users, creator) {
			return errRoomCap
		}
		if items, err = withoutUsers(items, full.Users); err != nil {
			return err
		}
	}
	if err != nil {
		if errors.Is(err, ErrRoomExists) {
			return xmpp.NewError(xmpp.Conflict, "the room already exists")
		}
		return err
	}
	r.loaded, r.exists, r.cfg, r.affs, r.version, r.affsAt = true, true, cfg, affs, version, h.now()
	if req.legacy {
		r.legacyCreated(req, affs)
		return nil
	}
	sid, err := r.archiveNotice(st.ID, version, usersOf(affs))
	if err != nil {
		return err
	}
	for _, a := range affs {
		h.deliver(a.User, withStanzaID(notification(r.jid, st.ID, affsPayload("", version, []AffItem{{User: a.User, Aff: a.Aff}})), r.jid, sid))
	}
	if req.generated {
		h.replyFrom(st, st.To)
	} else {
		h.replyFrom(st, r.jid)
	}
	return nil
}

// errCreateRate refuses a create over create_rate.
var errCreateRate = &xmpp.StanzaError{Type: xmpp.Wait, Condition: xmpp.ResourceConstraint, Text: "you are creating rooms too fast, try again later"}

// checkValueSizes refuses configuration values over max_config_value_size.
func (r *room) checkValueSizes(fields []configField) error {
	limit := r.hub.opts.MaxConfigValueSize
	for _, f := range fields {
		if limit > 0 && len(f.Value) > limit {
			return xmpp.NewError(xmpp.NotAcceptable, fmt.Sprintf("%s: configuration values are limited to %d bytes", f.Name, limit))
		}
	}
	return nil
}

// caps are the limits the store enforces in the writes that add users.
func (h *Hub) caps() Caps { return Caps{RoomsPerUser: h.opts.RoomsPerUser} }

func (r *room) caps() Caps { return r.hub.caps() }

// errRoomCap refuses a create by a user who is at rooms_per_user.
var errRoomCap = badRequest("you are in as many rooms as rooms_per_user allows")

// withoutUsers drops the items of users the store refused. The store only
// refuses users the items add, so at least one must go; if none does the
// retry would never end, and the store is at fault.
func withoutUsers(items []AffItem, refused []xmpp.JID) ([]AffItem, error) {
	out := slices.DeleteFunc(slices.Clone(items), func(it AffItem) bool { return slices.Contains(refused, it.User.Bare()) })
	if len(out) == len(items) {
		return nil, fmt.Errorf("rooms: the store refused %v, whom the change does not add", refused)
	}
	return out, nil
}

// admissible drops, silently, the additions that may not happen: users who
// blocked the actor (or, when checkRoom, this room). Removals and changes
// to present occupants pass. rooms_per_user is the store's to check, in the
// same step as the write.
func (r *room) admissible(actor xmpp.JID, items []AffItem, checkRoom bool) ([]AffItem, error) {
	out := items[:0:0]
	for _, it := range items {
		joining := it.Aff != None && affOf(r.affs, it.User) == None && it.User != actor
		if !joining {
			out = append(out, it)
			continue
		}
		if r.hub.opts.Blocking {
			ctx, cancel := r.storeCtx()
			blocked, err := r.hub.store.GetBlocking(ctx, it.User)
			cancel()
			if err != nil {
				return nil, err
			}
			if slices.Contains(blocked, BlockItem{Kind: BlockUser, JID: actor}) ||
				(checkRoom && slices.Contains(blocked, BlockItem{Kind: BlockRoom, JID: r.jid})) {
				continue
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// destroy removes the room (owners only; nobody in an equal-occupants room)
// and tells every former occupant.
func (r *room) destroy(req request, aff Affiliation) error {
	if aff != Owner {
		return xmpp.NewError(xmpp.NotAllowed, "only the owner may destroy the room")
	}
	h := r.hub
	// Every message accepted before is delivered (or refused) first: the
	// destroy notice is the last thing occupants see from the room.
	if !r.settle() {
		return xmpp.NewError(xmpp.ResourceConstraint, "the room history is busy, try again")
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := h.store.DestroyRoom(ctx, r.jid, r.caps()); err != nil && !errors.Is(err, ErrRoomNotFound) {
		return err
	}
	former := r.affs
	r.gone()
	if req.legacy {
		r.legacyDestroyed(former)
		h.reply(req.st, nil)
		return nil
	}
	for _, a := range former {
		h.deliver(a.User, notification(r.jid, req.st.ID, xmpp.Elem("x", NSDestroy), affsPayload("", "", []AffItem{{User: a.User, Aff: None}})))
	}
	h.replyFrom(req.st, r.jid)
	return nil
}

// answerGet answers a config, affiliations or info get: an empty result
// when the request's <version/> equals the room's, otherwise the version and
// what fill adds.
func (r *room) answerGet(req request, ns string, fill func(q *etree.Element)) error {
	if req.version != "" && req.version == r.version {
		r.hub.reply(req.st, nil)
		return nil
	}
	q := xmpp.Elem("query", ns)
	textElem(q, "version", r.version)
	fill(q)
	r.hub.reply(req.st, q)
	return nil
}

func (r *room) getConfig(req request) error {
	if req.legacy {
		r.hub.reply(req.st, r.legacyConfigForm())
		return nil
	}
	return r.answerGet(req, NSConfiguration, func(q *etree.Element) {
		addFields(q, r.hub.opts.Schema.render(r.cfg))
	})
}

func (r *room) getAffs(req request) error {
	if req.legacy {
		r.hub.reply(req.st, r.legacyAffList(Affiliation(req.nick)))
		return nil
	}
	return r.answerGet(req, NSAffiliations, func(q *etree.Element) {
		addUsers(q, usersOf(r.affs))
	})
}

func (r *room) getInfo(req request) error {
	if req.legacy {
		r.hub.reply(req.st, r.legacyRoomInfo())
		return nil
	}
	return r.answerGet(req, NSInfo, func(q *etree.Element) {
		addFields(q.CreateElement("configuration"), r.hub.opts.Schema.render(r.cfg))
		addUsers(q.CreateElement("occupants"), usersOf(r.affs))
	})
}

// setConfig applies a delta: the owner may change anything, members too
// with all_can_configure, and any occupant the subject alone.
func (r *room) setConfig(req request, aff Affiliation) error {
	h := r.hub
	fields := req.fields
	subjectOnly := len(fields) == 1 && fields[0].Name == "subject"
	if aff != Owner && !h.opts.AllCanConfigure && !subjectOnly {
		return xmpp.NewError(xmpp.NotAllowed, "only the owner may change the configuration")
	}
	if err := r.checkValueSizes(fields); err != nil {
		return err
	}
	changes, echo, err := h.opts.Schema.parseConfig(fields)
	if err != nil {
		return err
	}
	version := newVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	prev, err := h.store.SetConfig(ctx, r.jid, changes, version)
	if err != nil {
		if errors.Is(err, ErrRoomNotFound) {
			r.forget()
			return xmpp.NewError(xmpp.ItemNotFound, "no such room")
		}
		return err
	}
	for k, v := range changes {
		r.cfg[k] = v
	}
	r.version = version
	if req.legacy {
		r.legacyConfigChanged(req, echo)
		return nil
	}
	x := xmpp.Elem("x", NSConfiguration)
	textElem(x, "prev-version", prev)
	textElem(x, "version", version)
	addFields(x, echo)
	out := xmpp.NewOutbound(notification(r.jid, req.st.ID, x))
	for _, a := range r.affs {
		h.out.DeliverPaced(req.st.From, a.User, out)
	}
	h.replyFrom(req.st, r.jid)
	return nil
}

// setAffs changes affiliations. Owners may do anything the rules allow;
// members may leave and, with all_can_invite, add members; nothing else.
func (r *room) setAffs(req request, sender xmpp.JID, aff Affiliation) error {
	h := r.hub
	items := req.items
	var err error
	if aff != Owner {
		for _, it := range items {
			leave := it.User == sender && it.Aff == None
			invite := it.Aff == Member && h.opts.AllCanInvite && affOf(r.affs, it.User) != Owner
			if !leave && !invite {
				return xmpp.NewError(xmpp.NotAllowed, "members may only leave, or invite members when the room allows it")
			}
		}
	}
	if !(len(items) == 1 && items[0].User == sender && items[0].Aff == None) { // leaving is never limited
		if err := r.limit(aff, ""); err != nil {
			return err
		}
	}
	if items, err = r.admissible(sender, items, true); err != nil {
		return err
	}
	rules := r.rules()
	version := newVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	var res AffResult
	for {
		if len(items) == 0 {
			if req.st.Kind == xmpp.KindIQ {
				h.replyFrom(req.st, r.jid)
			}
			return nil
		}
		add := items
		res, err = h.store.ModifyAffUsers(ctx, r.jid, func(cur []Aff) ([]Aff, error) {
			return applyAffChanges(cur, add, rules)
		}, version, r.caps())
		// Users at rooms_per_user are skipped silently; the rest of the
		// change is applied without them.
		var full *RoomCapError
		if !errors.As(err, &full) {
			break
		}
		h.m.roomCapRefusals.Add(float64(len(full.Users)))
		if items, err = withoutUsers(items, full.Users); err != nil {
			return err
		}
	}
	if err != nil {
		if errors.Is(err, ErrRoomNotFound) {
			r.forget()
			return xmpp.NewError(xmpp.ItemNotFound, "no such room")
		}
		return err
	}
	if len(res.New) == 0 {
		r.gone() // the last occupant left: the room is destroyed
	} else {
		r.affs, r.version, r.affsAt = res.New, res.NewVersion, h.now()
	}
	if req.legacy {
		if res.NewVersion != res.OldVersion {
			r.legacyAnnounce(res, sender)
		}
		if req.st.Kind == xmpp.KindIQ {
			h.reply(req.st, nil)
		}
		return nil
	}
	if err := r.announce(req.st.ID, res); err != nil {
		return err
	}
	h.replyFrom(req.st, r.jid)
	return nil
}

// announce sends the notifications of an applied affiliation change: the
// full change list with both versions to those who stay, the version and
// their own item to newcomers, their own none (no version) to those who left.
// A change that could not be archived is not announced.
func (r *room) announce(id string, res AffResult) error {
	h := r.hub
	if res.NewVersion == res.OldVersion {
		return nil
	}
	changed := affDiff(res.Old, res.New)
	sid := ""
	if len(res.New) > 0 {
		var err error
		if sid, err = r.archiveNotice(id, res.NewVersion, changed); err != nil {
			return err
		}
	}
	stay := xmpp.NewOutbound(withStanzaID(notification(r.jid, id, affsPayload(res.OldVersion, res.NewVersion, changed)), r.jid, sid))
	for _, a := range res.New {
		if affOf(res.Old, a.User) != None {
			h.out.Deliver(a.User, stay)
		} else {
			h.deliver(a.User, withStanzaID(notification(r.jid, id, affsPayload("", res.NewVersion, []AffItem{{User: a.User, Aff: a.Aff}})), r.jid, sid))
		}
	}
	for _, a := range res.Old {
		if affOf(res.New, a.User) == None {
			h.deliver(a.User, notification(r.jid, id, affsPayload("", "", []AffItem{{User: a.User, Aff: None}})))
		}
	}
	return nil
}

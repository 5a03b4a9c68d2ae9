package roomhub

import (
	"errors"
	"fmt"
	"github.com/wschat/xmppws/room"
	"slices"

	"github.com/wschat/xmppws/roomstore"
	"github.com/wschat/xmppws/xmpp"
)

func (r *actor) rules() room.AffRules {
	return room.AffRules{EqualOccupants: r.hub.opts.EqualOccupants, MaxOccupants: r.hub.opts.MaxOccupants, Now: r.hub.now().UnixNano()}
}

// create makes the room: configuration from the schema's defaults plus what
// the request sets, the creator and the listed occupants. Every occupant is
// told their own affiliation and the version before the requester gets the
// result.
func (r *actor) create(q *room.Create, rated bool) error {
	affs, version, err := r.makeRoom(q.Origin.From.Bare(), q.Fields, q.Items, "", rated, !q.Generated)
	if err != nil {
		return err
	}
	r.logCreated(&q.Head)
	if err := r.announceCreated(&q.Head, affs, version); err != nil {
		return err
	}
	r.ok(q, room.Reply{Generated: q.Generated})
	return nil
}

// joinCreate is a XEP-0045 join of a room that does not exist: it creates
// the room with the joiner as owner and enters it.
func (r *actor) joinCreate(q *room.Join, rated bool) error {
	affs, version, err := r.makeRoom(q.Origin.From.Bare(), nil, nil, q.Nick, rated, true)
	if err != nil {
		return err
	}
	r.logCreated(&q.Head)
	if err := r.announceCreated(&q.Head, affs, version); err != nil {
		return err
	}
	return r.enter(q, q.Origin.From.Bare(), room.AffOf(affs, q.Origin.From.Bare()), true)
}

// announceCreated archives and announces a new room's affiliations.
func (r *actor) announceCreated(hd *room.Head, affs []room.Aff, version string) error {
	sid, err := r.archiveNotice(hd.Origin.ID, version, room.UsersOf(affs))
	if err != nil {
		return err
	}
	r.hub.sink.Event(&room.AffsChanged{EventHead: r.eventHead(hd), New: affs, Version: version, NoticeID: sid,
		By: hd.Origin.From.Bare(), Created: true})
	return nil
}

// makeRoom checks and stores a new room.
func (r *actor) makeRoom(creator xmpp.JID, fields []room.Field, items []room.AffItem, nick string, rated, checkRoom bool) ([]room.Aff, string, error) {
	h := r.hub
	if r.exists {
		return nil, "", xmpp.NewError(xmpp.Conflict, "the room already exists")
	}
	if err := r.checkValueSizes(fields); err != nil {
		return nil, "", err
	}
	changes, _, err := h.opts.Schema.ParseConfig(fields)
	if err != nil {
		return nil, "", err
	}
	if err := r.limitNick(creator, room.Owner, nick); err != nil {
		return nil, "", err
	}
	for _, it := range items {
		if it.User == creator || it.Aff == room.None {
			return nil, "", badRequest("the occupant list may not name the creator or the affiliation none")
		}
	}
	if !rated && !h.creates.Take(creator, h.now()) {
		h.m.createRefusals.Inc()
		h.logRefused(creator, r.jid, refusedCreateRate)
		return nil, "", errCreateRate
	}
	if items, err = r.admissible(creator, items, checkRoom); err != nil {
		return nil, "", err
	}
	first := room.Aff{User: creator, Aff: room.Owner, Since: h.now().UnixNano()}
	if h.opts.EqualOccupants {
		first.Aff = room.Member
	}
	cfg := h.opts.Schema.Defaults()
	for k, v := range changes {
		cfg[k] = v
	}
	version := room.NewVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	// The store checks rooms_per_user in the write itself; occupants it
	// refuses are left out, as MongooseIM's documentation says, and the
	// room is computed again without them (who owns it may depend on them).
	var affs []room.Aff
	for {
		if affs, err = room.ApplyAffChanges([]room.Aff{first}, items, r.rules()); err != nil {
			return nil, "", err
		}
		err = h.store.CreateRoom(ctx, r.jid, cfg, affs, version, h.caps())
		var full *roomstore.RoomCapError
		if !errors.As(err, &full) {
			break
		}
		h.m.roomCapRefusals.Add(float64(len(full.Users)))
		for _, u := range full.Users {
			h.logRefused(u, r.jid, refusedRoomsPerUser)
		}
		if slices.Contains(full.Users, creator) {
			return nil, "", errRoomCap
		}
		if items, err = withoutUsers(items, full.Users); err != nil {
			return nil, "", err
		}
	}
	if err != nil {
		if errors.Is(err, roomstore.ErrRoomExists) {
			return nil, "", xmpp.NewError(xmpp.Conflict, "the room already exists")
		}
		return nil, "", err
	}
	r.loaded, r.exists, r.cfg, r.affs, r.version, r.affsAt = true, true, cfg, affs, version, h.now()
	return affs, version, nil
}

// checkValueSizes refuses configuration values over max_config_value_size.
func (r *actor) checkValueSizes(fields []room.Field) error {
	limit := r.hub.opts.MaxConfigValueSize
	for _, f := range fields {
		if limit > 0 && len(f.Value) > limit {
			return xmpp.NewError(xmpp.NotAcceptable, fmt.Sprintf("%s: configuration values are limited to %d bytes", f.Name, limit))
		}
	}
	return nil
}

// caps are the limits the store enforces in the writes that add users.
func (h *Hub) caps() roomstore.Caps { return roomstore.Caps{RoomsPerUser: h.opts.RoomsPerUser} }

// withoutUsers drops the items of users the store refused. The store only
// refuses users the items add, so at least one must go; if none does the
// retry would never end, and the store is at fault.
func withoutUsers(items []room.AffItem, refused []xmpp.JID) ([]room.AffItem, error) {
	out := slices.DeleteFunc(slices.Clone(items), func(it room.AffItem) bool { return slices.Contains(refused, it.User.Bare()) })
	if len(out) == len(items) {
		return nil, fmt.Errorf("room: the store refused %v, whom the change does not add", refused)
	}
	return out, nil
}

// admissible drops, silently, the additions that may not happen: users who
// blocked the actor (or, when checkRoom, this room). Removals and changes
// to present occupants pass. rooms_per_user is the store's to check, in the
// same step as the write.
func (r *actor) admissible(actor xmpp.JID, items []room.AffItem, checkRoom bool) ([]room.AffItem, error) {
	out := items[:0:0]
	for _, it := range items {
		joining := it.Aff != room.None && room.AffOf(r.affs, it.User) == room.None && it.User != actor
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
			if slices.Contains(blocked, roomstore.BlockItem{Kind: roomstore.BlockUser, JID: actor}) ||
				(checkRoom && slices.Contains(blocked, roomstore.BlockItem{Kind: roomstore.BlockRoom, JID: r.jid})) {
				continue
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// destroy removes the room (owners only; nobody in an equal-occupants room)
// and tells every former occupant.
func (r *actor) destroy(q *room.Destroy, aff room.Affiliation) error {
	if aff != room.Owner {
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
	if err := h.store.DestroyRoom(ctx, r.jid, h.caps()); err != nil && !errors.Is(err, roomstore.ErrRoomNotFound) {
		return err
	}
	former := r.affs
	r.gone()
	r.logDestroyed(&q.Head, "destroy")
	ev := &room.Destroyed{EventHead: r.eventHead(&q.Head), Former: former}
	r.occupants = nil
	h.sink.Event(ev)
	r.ok(q, room.Reply{})
	return nil
}

// answerGet answers a config, affiliations or info get: Unchanged when the
// request's version equals the room's, otherwise the version and what fill
// adds.
func (r *actor) answerGet(req room.Request, version string, fill func(*room.Reply)) error {
	if version != "" && version == r.version {
		r.ok(req, room.Reply{Unchanged: true, Version: r.version})
		return nil
	}
	rep := room.Reply{Version: r.version}
	fill(&rep)
	r.ok(req, rep)
	return nil
}

func (r *actor) getConfig(q *room.GetConfig) error {
	return r.answerGet(q, q.Version, func(rep *room.Reply) {
		rep.Config = r.hub.opts.Schema.Render(r.cfg)
		rep.Name = r.hub.opts.Schema.RoomName(r.jid, r.cfg)
	})
}

func (r *actor) getAffs(q *room.GetAffs) error {
	return r.answerGet(q, q.Version, func(rep *room.Reply) {
		rep.Affs = room.UsersOf(r.affs)
		rep.List = q.List
		if q.List != "" {
			rep.Affs = slices.DeleteFunc(rep.Affs, func(it room.AffItem) bool { return it.Aff != q.List })
		}
	})
}

func (r *actor) getInfo(q *room.GetInfo) error {
	return r.answerGet(q, q.Version, func(rep *room.Reply) {
		rep.Config = r.hub.opts.Schema.Render(r.cfg)
		rep.Name = r.hub.opts.Schema.RoomName(r.jid, r.cfg)
		rep.Affs = room.UsersOf(r.affs)
	})
}

// setConfig applies a delta: the owner may change anything, members too
// with all_can_configure, and any occupant the subject alone.
func (r *actor) setConfig(q *room.SetConfig, aff room.Affiliation) error {
	h := r.hub
	fields := q.Fields
	subjectOnly := len(fields) == 1 && fields[0].Name == "subject"
	if aff != room.Owner && !h.opts.AllCanConfigure && !subjectOnly {
		return xmpp.NewError(xmpp.NotAllowed, "only the owner may change the configuration")
	}
	if err := r.checkValueSizes(fields); err != nil {
		return err
	}
	changes, echo, err := h.opts.Schema.ParseConfig(fields)
	if err != nil {
		return err
	}
	version := room.NewVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	prev, err := h.store.SetConfig(ctx, r.jid, changes, version)
	if err != nil {
		if errors.Is(err, roomstore.ErrRoomNotFound) {
			r.forget()
			return xmpp.NewError(xmpp.ItemNotFound, "no such room")
		}
		return err
	}
	for k, v := range changes {
		r.cfg[k] = v
	}
	r.version = version
	h.sink.Event(&room.ConfigChanged{EventHead: r.eventHead(&q.Head), Changed: echo, PrevVersion: prev, Version: version,
		By: q.Origin.From.Bare(), Audience: r.affs})
	r.ok(q, room.Reply{})
	return nil
}

// changeAffs changes affiliations. Owners may do anything the rules allow;
// members may leave and, with all_can_invite, add members; nothing else.
func (r *actor) changeAffs(q *room.ChangeAffs, sender xmpp.JID, aff room.Affiliation) error {
	h := r.hub
	items := q.Items
	var err error
	if aff != room.Owner {
		for _, it := range items {
			leave := it.User == sender && it.Aff == room.None
			invite := it.Aff == room.Member && h.opts.AllCanInvite && room.AffOf(r.affs, it.User) != room.Owner
			if !leave && !invite {
				return xmpp.NewError(xmpp.NotAllowed, "members may only leave, or invite members when the room allows it")
			}
		}
	}
	if !(len(items) == 1 && items[0].User == sender && items[0].Aff == room.None) { // leaving is never limited
		if err := r.limit(sender, aff, ""); err != nil {
			return err
		}
	}
	if items, err = r.admissible(sender, items, true); err != nil {
		return err
	}
	rules := r.rules()
	version := room.NewVersion()
	ctx, cancel := r.storeCtx()
	defer cancel()
	var res room.AffResult
	for {
		if len(items) == 0 {
			r.ok(q, room.Reply{})
			return nil
		}
		add := items
		res, err = h.store.ModifyAffUsers(ctx, r.jid, func(cur []room.Aff) ([]room.Aff, error) {
			return room.ApplyAffChanges(cur, add, rules)
		}, version, h.caps())
		// Users at rooms_per_user are skipped silently; the rest of the
		// change is applied without them.
		var full *roomstore.RoomCapError
		if !errors.As(err, &full) {
			break
		}
		h.m.roomCapRefusals.Add(float64(len(full.Users)))
		for _, u := range full.Users {
			h.logRefused(u, r.jid, refusedRoomsPerUser)
		}
		if items, err = withoutUsers(items, full.Users); err != nil {
			return err
		}
	}
	if err != nil {
		if errors.Is(err, roomstore.ErrRoomNotFound) {
			r.forget()
			return xmpp.NewError(xmpp.ItemNotFound, "no such room")
		}
		return err
	}
	if len(res.New) == 0 {
		r.gone() // the last occupant left: the room is destroyed
		r.logDestroyed(&q.Head, "last-occupant-left")
	} else {
		r.affs, r.version, r.affsAt = res.New, res.NewVersion, h.now()
	}
	if err := r.announce(&q.Head, q.Origin.ID, res, sender); err != nil {
		return err
	}
	r.ok(q, room.Reply{})
	return nil
}

// announce archives and emits an applied affiliation change; the XEP-0045
// sessions of users who lost their affiliation leave the room with it. A
// change that could not be archived is not announced.
func (r *actor) announce(hd *room.Head, id string, res room.AffResult, by xmpp.JID) error {
	if res.NewVersion == res.OldVersion {
		return nil
	}
	sid := ""
	if len(res.New) > 0 {
		var err error
		if sid, err = r.archiveNotice(id, res.NewVersion, room.AffDiff(res.Old, res.New)); err != nil {
			return err
		}
	}
	ev := &room.AffsChanged{EventHead: r.eventHead(hd), Old: res.Old, New: res.New, PrevVersion: res.OldVersion,
		Version: res.NewVersion, NoticeID: sid, By: by}
	if hd.Origin.Internal() {
		ev.Origin.ID = id
	}
	r.pruneOccupants(res.New)
	r.hub.sink.Event(ev)
	return nil
}

// eventHead is an event's head for a request's change: the room, the
// origin and the XEP-0045 occupants as they are now.
func (r *actor) eventHead(hd *room.Head) room.EventHead {
	return room.EventHead{Room: r.jid, Origin: hd.Origin, MUC: r.occupants}
}

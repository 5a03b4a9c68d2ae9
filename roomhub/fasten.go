package roomhub

import (
	"fmt"
	"slices"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// Fastenings (corrections, retractions, reactions, moderation) change an
// earlier message, so the actor checks the target in the archive and
// writes both at once: it first settles the pending messages (the target
// may be one of them, and the fastening must be delivered after them),
// then appends the fastening and updates the target's folded state with
// two synchronous writes, then fans out. They cost a write of their own
// instead of sharing the writer's batch; they are rare next to messages.

// fasten handles a Post that carries a fastening or a marker.
func (r *actor) fasten(q *room.Post, sender xmpp.JID) error {
	h := r.hub
	if h.archive == nil {
		if q.Displayed != "" {
			return xmpp.NewError(xmpp.FeatureNotImplemented, "read state needs the room history, which is off")
		}
		return r.groupchat(q, sender) // nothing to check against: delivered as sent
	}
	if !r.settle() {
		r.abandonPending()
		return xmpp.NewError(xmpp.ResourceConstraint, "the room history did not answer, try again")
	}
	if q.Displayed != "" {
		return r.markRead(q, sender)
	}
	var target archive.Message
	var err error
	switch {
	case q.Replace != "":
		target, err = r.original(sender, q.Replace)
	case q.Retract != "":
		target, err = r.target(q.Retract)
		if err == nil && target.Sender != sender {
			err = xmpp.NewError(xmpp.Forbidden, "only the author may retract a message")
		}
	default:
		target, err = r.target(q.React.ID)
		if err == nil && target.Sender.IsZero() {
			err = xmpp.NewError(xmpp.NotAcceptable, "room notices take no reactions")
		}
	}
	if err != nil {
		return err
	}
	ev, msg, err := r.frame(q.Origin.ID, r.jid.WithResource(sender.String()), sender, q.Payload, target.ID)
	if err != nil {
		return err
	}
	ev.Origin = q.Origin
	at := ev.Time
	var updates []archive.Message
	switch {
	case q.Replace != "":
		target.Edit = &archive.Edit{ID: msg.ID, Time: msg.Time, Body: q.Body}
		target.Edits = append(target.Edits, msg.ID)
		updates = []archive.Message{target}
	case q.Retract != "":
		updates = r.tombstones(target, &archive.Tombstone{At: at})
	default:
		target.Reactions = withReactions(target.Reactions, sender, q.React.Emojis, q.Occupant)
		updates = []archive.Message{target}
	}
	if err := r.commitFastening(msg, updates); err != nil {
		return err
	}
	switch {
	case q.Replace != "":
		h.m.fastenings.WithLabelValues("correction").Inc()
	case q.Retract != "":
		h.m.fastenings.WithLabelValues("retraction").Inc()
	default:
		h.m.fastenings.WithLabelValues("reactions").Inc()
	}
	r.fanout(ev)
	return nil
}

// moderate retracts another's message on an owner's behalf (XEP-0425).
func (r *actor) moderate(q *room.Moderate, sender xmpp.JID, aff room.Affiliation) error {
	h := r.hub
	if aff != room.Owner {
		return xmpp.NewError(xmpp.Forbidden, "only the room's owners may moderate")
	}
	if h.archive == nil {
		return xmpp.NewError(xmpp.FeatureNotImplemented, "moderation needs the room history, which is off")
	}
	if !r.settle() {
		r.abandonPending()
		return xmpp.NewError(xmpp.ResourceConstraint, "the room history did not answer, try again")
	}
	target, err := r.target(q.ID)
	if err != nil {
		return err
	}
	ev, msg, err := r.frame(room.RandomHex(8), r.jid, xmpp.JID{}, q.Payload, target.ID)
	if err != nil {
		return err
	}
	ev.Origin = q.Origin
	tomb := &archive.Tombstone{By: sender, ByOccupant: q.Occupant, At: ev.Time, Reason: q.Reason}
	if err := r.commitFastening(msg, r.tombstones(target, tomb)); err != nil {
		return err
	}
	h.m.fastenings.WithLabelValues("moderation").Inc()
	r.fanout(ev)
	r.ok(q, room.Reply{})
	return nil
}

// markRead stores a displayed marker: the id must be a message of this
// room. Nothing is delivered or archived.
func (r *actor) markRead(q *room.Post, sender xmpp.JID) error {
	if _, err := r.lookup(q.Displayed); err != nil {
		return err
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := r.hub.archive.SetRead(ctx, r.jid, sender, q.Displayed); err != nil {
		return fmt.Errorf("storing the last-read of %s in %s: %w", sender, r.jid, err)
	}
	r.hub.m.fastenings.WithLabelValues("displayed").Inc()
	return nil
}

// lookup reads one archived message of the room by stanza-id; an id that
// is not this room's is item-not-found.
func (r *actor) lookup(id string) (archive.Message, error) {
	notFound := xmpp.NewError(xmpp.ItemNotFound, "this room has no message with the id "+id)
	if !archive.ValidID(id) {
		return archive.Message{}, notFound
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	p, err := r.hub.archive.Query(ctx, archive.Query{Room: r.jid, IDs: []string{id}, Max: 1})
	if err != nil {
		return archive.Message{}, fmt.Errorf("reading message %s of %s: %w", id, r.jid, err)
	}
	if len(p.Messages) == 0 {
		return archive.Message{}, notFound
	}
	return p.Messages[0], nil
}

// target is a live message of its own that a fastening may name.
func (r *actor) target(id string) (archive.Message, error) {
	m, err := r.lookup(id)
	switch {
	case err != nil:
		return m, err
	case m.Tomb != nil:
		return m, xmpp.NewError(xmpp.ItemNotFound, "the message "+id+" was retracted")
	case m.Target != "":
		return m, xmpp.NewError(xmpp.NotAcceptable, "the message "+id+" is itself a correction, retraction or reaction")
	}
	return m, nil
}

// original is the message a correction names by its client id: the newest
// of the room's messages with that id (CountMax 1 ends the walk there).
// Clients that chain corrections name the previous correction, and some
// name the original's stanza-id: both lead to the original. Only its
// author may correct it.
func (r *actor) original(sender xmpp.JID, clientID string) (archive.Message, error) {
	// The sender's own first: client ids of two users may collide.
	var p archive.Page
	for _, with := range []xmpp.JID{sender, {}} {
		ctx, cancel := r.storeCtx()
		var err error
		p, err = r.hub.archive.Query(ctx, archive.Query{Room: r.jid, MsgID: clientID, With: with, Max: 1, Last: true, CountMax: 1})
		cancel()
		if err != nil {
			return archive.Message{}, fmt.Errorf("reading message %q of %s: %w", clientID, r.jid, err)
		}
		if len(p.Messages) > 0 {
			break
		}
	}
	var m archive.Message
	var err error
	switch {
	case len(p.Messages) == 1 && p.Messages[0].Target == "":
		m = p.Messages[0]
	case len(p.Messages) == 1:
		fix := p.Messages[0]
		if m, err = r.lookup(fix.Target); err != nil {
			return m, err
		}
		if !slices.Contains(m.Edits, fix.ID) {
			return m, xmpp.NewError(xmpp.NotAcceptable, "the message "+clientID+" is a retraction or reaction, not a message or correction")
		}
	case archive.ValidID(clientID):
		if m, err = r.lookup(clientID); err != nil {
			return m, err
		}
		if m.Target != "" {
			return m, xmpp.NewError(xmpp.NotAcceptable, "correct the original message, not "+clientID)
		}
	default:
		return archive.Message{}, xmpp.NewError(xmpp.ItemNotFound, "this room has no message with the id "+clientID)
	}
	switch {
	case m.Sender != sender:
		return m, xmpp.NewError(xmpp.Forbidden, "only the author may correct a message")
	case m.Tomb != nil:
		return m, xmpp.NewError(xmpp.ItemNotFound, "the message "+clientID+" was retracted")
	case len(m.Edits) >= archive.MaxEdits:
		return m, xmpp.NewError(xmpp.PolicyViolation, fmt.Sprintf("a message may be corrected %d times", archive.MaxEdits))
	}
	return m, nil
}

// frame builds a fastening's message and event: from as the room sends
// it, linked to target.
func (r *actor) frame(id string, from, sender xmpp.JID, payload []byte, target string) (*room.Posted, archive.Message, error) {
	h := r.hub
	if id == "" {
		id = room.RandomHex(8)
	}
	at, err := r.idTime()
	if err != nil {
		return nil, archive.Message{}, err
	}
	ev := &room.Posted{EventHead: room.EventHead{Room: r.jid}, Sender: sender, Audience: r.affs}
	ev.ArchiveID, ev.Time = h.ids.Next(at)
	ev.Stanza = xmpp.GroupchatFrame(id, from, payload, r.jid, ev.ArchiveID)
	msg := archive.Message{Room: r.jid, ID: ev.ArchiveID, Time: ev.Time, Sender: sender, Stanza: ev.Stanza, MsgID: id, Target: target}
	return ev, msg, nil
}

// tombstones are the updates that retract m and each of its corrections.
func (r *actor) tombstones(m archive.Message, t *archive.Tombstone) []archive.Message {
	out := []archive.Message{{Room: r.jid, ID: m.ID, Tomb: t, Edits: m.Edits}}
	for _, id := range m.Edits {
		out = append(out, archive.Message{Room: r.jid, ID: id, Tomb: t})
	}
	return out
}

// commitFastening appends the fastening, then folds it into its target.
func (r *actor) commitFastening(msg archive.Message, updates []archive.Message) error {
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := r.hub.archive.Append(ctx, []archive.Message{msg}); err != nil {
		return fmt.Errorf("archiving a fastening in %s: %w", r.jid, err)
	}
	if err := r.hub.archive.Update(ctx, updates); err != nil {
		return fmt.Errorf("folding a fastening into %s of %s: %w", msg.Target, r.jid, err)
	}
	return nil
}

// withReactions replaces user's set in rs (an empty set removes it),
// keeping users in the order they first reacted.
func withReactions(rs []archive.Reaction, user xmpp.JID, emojis []string, occ string) []archive.Reaction {
	out := slices.DeleteFunc(slices.Clone(rs), func(x archive.Reaction) bool { return x.User == user })
	if len(emojis) == 0 {
		return out
	}
	i := slices.IndexFunc(rs, func(x archive.Reaction) bool { return x.User == user })
	nr := archive.Reaction{User: user, OccupantID: occ, Emojis: emojis}
	if i < 0 || i > len(out) {
		return append(out, nr)
	}
	return slices.Insert(out, i, nr)
}

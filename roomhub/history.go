package roomhub

import (
	"context"
	"fmt"
	"github.com/wschat/xmppws/room"
	"sync"
	"time"

	"github.com/wschat/xmppws/archive"
	"github.com/wschat/xmppws/xmpp"
)

// MAMOptions configure room history ([modules.mod_mam]).
type MAMOptions struct {
	// Archive is where history is kept; nil turns history off.
	Archive archive.Archive
	// DefaultPageSize and MaxPageSize bound a query's page.
	DefaultPageSize, MaxPageSize int
	// QueueLen bounds the messages waiting for the archive writer; when it
	// is full the room waits (mailbox_wait) for room in it, and only then
	// refuses the message with resource-constraint.
	QueueLen int
	// MaxQueries bounds the archive queries running at once on this server
	// (a query over it waits, mailbox_wait at most); MaxQueriesPerRoom
	// those of one room (over it: resource-constraint). Zero: the
	// defaults of package limits.
	MaxQueries, MaxQueriesPerRoom int
	// Retention deletes entries older than this (0: keep forever).
	Retention time.Duration
}

func (o MAMOptions) withDefaults() MAMOptions {
	if o.DefaultPageSize <= 0 {
		o.DefaultPageSize = 50
	}
	if o.MaxPageSize < o.DefaultPageSize {
		o.MaxPageSize = o.DefaultPageSize
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 10000
	}
	return o
}

// PageSizes are the default and the largest page of a history query.
func (h *Hub) PageSizes() (def, max int) { return h.mam.DefaultPageSize, h.mam.MaxPageSize }

// queryTimeout bounds one history query.
const queryTimeout = 30 * time.Second

// pendingMsg is a groupchat message accepted by a room and waiting for its
// archive write before anyone receives it.
type pendingMsg struct {
	seq uint64
	req *room.Post
	ev  *room.Posted
}

// commitResult is the archive's verdict on one pending message.
type commitResult struct {
	seq uint64
	err error
}

// commits is the hand-off from the archive writer to a room actor: results
// are appended under the lock and the actor is poked through a one-slot
// channel.
type commits struct {
	mu      sync.Mutex
	results []commitResult
	poke    chan struct{}
}

func (c *commits) add(r commitResult) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

func (c *commits) take() []commitResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.results
	c.results = nil
	return out
}

// groupchat broadcasts an occupant's message to every occupant, the sender
// included, from room/sender-bare-JID: one serialisation, many deliveries.
// With history on it is archived first and delivered once durable.
func (r *actor) groupchat(q *room.Post, sender xmpp.JID) error {
	h := r.hub
	id := q.Origin.ID
	if id == "" {
		id = room.RandomHex(8)
	}
	from := r.jid.WithResource(sender.String())
	ev := &room.Posted{EventHead: room.EventHead{Room: r.jid, Origin: q.Origin}, Sender: sender, Audience: r.affs}
	if h.archiver == nil {
		ev.Time = time.UnixMicro(h.now().UnixMicro()).UTC() // as archive ids keep it
		ev.Stanza = xmpp.GroupchatFrame(id, from, q.Payload, r.jid, "")
		r.fanout(ev)
		return nil
	}
	at, err := r.idTime()
	if err != nil {
		return err
	}
	ev.ArchiveID, ev.Time = h.ids.Next(at)
	ev.Stanza = xmpp.GroupchatFrame(id, from, q.Payload, r.jid, ev.ArchiveID)
	r.seq++
	seq := r.seq
	job := archive.Job{
		Msg:  archive.Message{Room: r.jid, ID: ev.ArchiveID, Time: ev.Time, Sender: sender, Stanza: ev.Stanza, MsgID: q.Origin.ID},
		Done: func(err error) { r.commits.add(commitResult{seq: seq, err: err}) },
	}
	if !h.archiver.TryEnqueue(job) && !r.waitArchive(job) {
		r.seq--
		h.m.archiveBusy.Inc()
		return xmpp.NewError(xmpp.ResourceConstraint, "the room history is busy, try again")
	}
	r.pending = append(r.pending, pendingMsg{seq: seq, req: q, ev: ev})
	return nil
}

// fanout hands a message to the edges for every occupant.
func (r *actor) fanout(ev *room.Posted) {
	r.hub.sink.Event(ev)
	r.hub.m.fanout.Add(float64(len(ev.Audience)))
}

// waitArchive waits, bounded by mailbox_wait, for room in the archive
// queue, fanning out the messages committed meanwhile.
func (r *actor) waitArchive(job archive.Job) bool {
	h := r.hub
	h.m.archiveWaits.Inc()
	t := time.NewTimer(h.opts.MailboxWait)
	defer t.Stop()
	for {
		select {
		case h.archiver.Queue() <- job:
			return true
		case <-r.commits.poke:
			r.deliverCommitted()
		case <-t.C:
			return false
		case <-h.ctx.Done():
			return false
		}
	}
}

// settle waits until every pending message has its archive verdict and was
// delivered or refused. A room is destroyed only once settled, so the
// destroy notice is the last thing occupants get and the archive removal
// follows every write of the room. False when the archive did not answer
// within its own write timeout (and the store's).
func (r *actor) settle() bool {
	if len(r.pending) == 0 {
		return true
	}
	t := time.NewTimer(archive.WriteTimeout + r.hub.storeTimeout)
	defer t.Stop()
	for len(r.pending) > 0 {
		select {
		case <-r.commits.poke:
			r.deliverCommitted()
		case <-t.C:
			return false
		}
	}
	return true
}

// abandonPending refuses every message still waiting for the archive (its
// sender is told) and forgets them; a late verdict is then ignored.
func (r *actor) abandonPending() {
	for _, p := range r.pending {
		r.hub.fail(p.req, xmpp.NewError(xmpp.ResourceConstraint, "the room history did not answer, try again"))
		r.abandoned = max(r.abandoned, p.seq)
	}
	r.pending = nil
}

// gone settles a room that no longer exists and removes its history: after
// its last writes, whoever destroyed it (a destroy, the last occupant
// leaving, a removed user or domain).
func (r *actor) gone() {
	if !r.settle() {
		r.hub.log.Error("the archive did not settle a destroyed room's messages", "room", r.jid.String())
		r.abandonPending()
	}
	r.forget()
	r.removeArchive()
}

// deliverCommitted fans out the pending messages whose archive write ended,
// in the order they were accepted; a failed write is reported to its sender
// and delivered to nobody.
func (r *actor) deliverCommitted() {
	for _, res := range r.commits.take() {
		if res.seq <= r.abandoned {
			continue // refused already
		}
		if len(r.pending) == 0 || r.pending[0].seq != res.seq {
			r.hub.log.Error("archive commit out of order", "room", r.jid.String(), "seq", res.seq)
			continue
		}
		p := r.pending[0]
		r.pending[0] = pendingMsg{}
		r.pending = r.pending[1:]
		if res.err != nil {
			r.hub.fail(p.req, res.err)
			continue
		}
		r.fanout(p.ev)
	}
	if len(r.pending) == 0 {
		r.pending = nil
	}
}

// archiveNotice archives a room event (creation, affiliation change) in the
// form occupants page through, with the request's id, and returns its
// archive id for the live copies' stanza-id ("" when room events are not
// archived). It runs in the actor, before the notifications go out; such
// events are rare. When the write fails the event must not be announced:
// the error goes to the requester.
func (r *actor) archiveNotice(reqID, version string, items []room.AffItem) (string, error) {
	h := r.hub
	if h.archiver == nil || h.notices == nil {
		return "", nil
	}
	at, err := r.idTime()
	if err != nil {
		return "", err
	}
	id, t := h.ids.Next(at)
	b := h.notices.AffsNotice(r.jid, reqID, version, items, id)
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := h.archive.Append(ctx, []archive.Message{{Room: r.jid, ID: id, Time: t, Stanza: b}}); err != nil {
		return "", fmt.Errorf("archiving a room event of %s: %w", r.jid, err)
	}
	return id, nil
}

// idTime is the time the room's next archive id is made from: now, or
// with OrderedIDs just after the room's newest archived id, read once per
// actor, so that ids keep increasing when the room moves from a node whose
// clock ran ahead (docs/08_cluster.md, "Order and identity").
func (r *actor) idTime() (time.Time, error) {
	now := r.hub.now()
	if !r.hub.orderedIDs {
		return now, nil
	}
	if !r.floorRead {
		ctx, cancel := r.storeCtx()
		p, err := r.hub.archive.Query(ctx, archive.Query{Room: r.jid, Max: 1, Last: true})
		cancel()
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the newest archive id of %s: %w", r.jid, err)
		}
		if len(p.Messages) > 0 {
			r.floor, _ = archive.IDTime(p.Messages[0].ID)
		}
		r.floorRead = true
	}
	if !now.After(r.floor) {
		now = r.floor.Add(time.Microsecond)
	}
	return now, nil
}

// removeArchive deletes a destroyed room's history.
func (r *actor) removeArchive() {
	if r.hub.archive == nil {
		return
	}
	ctx, cancel := r.storeCtx()
	defer cancel()
	if err := r.hub.archive.RemoveRoom(ctx, r.jid); err != nil {
		r.hub.log.Error("removing a destroyed room's history failed", "room", r.jid.String(), "err", err)
		r.hub.m.internalErrors.Inc()
	}
}

// acquireQuery takes a place for a history query of room under
// max_mam_queries_per_room (refused when there is none) and max_mam_queries
// (waited for, as the caller is the sender's reader).
func (h *Hub) acquireQuery(ctx context.Context, rm xmpp.JID) (func(), error) {
	release, scope, err := h.queries.Acquire(ctx, h.ctx, rm, h.opts.MailboxWait)
	if err != nil {
		if scope != "" {
			h.m.queryRefusals.WithLabelValues(scope).Inc()
		}
		return nil, err
	}
	return release, nil
}

// runQuery answers an archive query with its page. It runs outside the
// room's actor so a long query does not hold up the room.
func (h *Hub) runQuery(q *room.QueryHistory, release func()) {
	defer h.wg.Done()
	if release != nil {
		defer release()
	}
	ctx, cancel := context.WithTimeout(h.ctx, queryTimeout)
	defer cancel()
	// XEP-0313 §6.1: paging from an id the archive does not hold is
	// item-not-found, not an empty page a client would take for the end.
	for _, cursor := range []string{q.Query.After, q.Query.Before} {
		if cursor == "" {
			continue
		}
		p, err := h.archive.Query(ctx, archive.Query{Room: q.Query.Room, IDs: []string{cursor}, Max: 1})
		if err == nil && p.Count == 0 {
			err = xmpp.NewError(xmpp.ItemNotFound, "no archived message has the id "+cursor)
		}
		if err != nil {
			h.fail(q, err)
			return
		}
	}
	page, err := h.archive.Query(ctx, q.Query)
	if err != nil {
		h.fail(q, err)
		return
	}
	h.sink.Reply(room.Reply{Room: q.Room, Origin: q.Origin, Op: room.TypeName(q), History: &room.History{
		QueryID: q.QueryID, NS: q.NS, Flip: q.Flip, CountOnly: q.CountOnly, Summary: q.Query.Summary, Page: page}})
}

// retention deletes history older than the retention period, hourly.
func (h *Hub) retention() {
	defer h.wg.Done()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Minute)
		n, err := h.archive.RemoveBefore(ctx, h.now().Add(-h.mam.Retention))
		cancel()
		if err != nil && h.ctx.Err() == nil {
			h.log.Error("archive retention failed", "err", err)
		} else if n > 0 {
			h.log.Info("archive retention", "deleted", n)
		}
		select {
		case <-tick.C:
		case <-h.ctx.Done():
			return
		}
	}
}

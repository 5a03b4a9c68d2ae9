package rooms

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/xmpp"
)

// Namespaces of room history.
const (
	NSMAM2    = "urn:xmpp:mam:2"
	NSMAM1    = "urn:xmpp:mam:1"
	NSSID     = "urn:xmpp:sid:0"
	NSForward = "urn:xmpp:forward:0"
)

// MAMOptions configure room history ([modules.mod_mam]).
type MAMOptions struct {
	// Archive is where history is kept; nil turns history off.
	Archive Archive
	// DefaultPageSize and MaxPageSize bound a query's page.
	DefaultPageSize, MaxPageSize int
	// QueueLen bounds the messages waiting for the archive writer; when it
	// is full the room waits (mailbox_wait) for room in it, and only then
	// refuses the message with resource-constraint.
	QueueLen int
	// MaxQueries bounds the archive queries running at once on this server
	// (a query over it waits, mailbox_wait at most); MaxQueriesPerRoom
	// those of one room (over it: resource-constraint). Zero: the
	// defaults below.
	MaxQueries, MaxQueriesPerRoom int
	// Retention deletes entries older than this (0: keep forever).
	Retention time.Duration
}

// archiveJob is one message on its way into the archive; done runs after
// the batch holding it is durable (or failed).
type archiveJob struct {
	msg  ArchivedMessage
	done func(error)
}

// maxBatch bounds one archive write.
const maxBatch = 512

// archiveWriteTimeout bounds one batch write of the archiver.
const archiveWriteTimeout = 30 * time.Second

// Default caps on concurrent archive queries, per server and per room: a
// query pages at most max_result_limit messages, so 64 at once keep the
// store busy without starving message writes, and 2 per room let a client
// page while another catches up, but not a script fan out.
const (
	DefaultMaxQueries        = 64
	DefaultMaxQueriesPerRoom = 2
)

// archiver writes queued messages in batches, one durable write per batch,
// so fan-out waits for a shared disk sync, never one of its own.
type archiver struct {
	a     Archive
	queue chan archiveJob
	log   interface{ Error(string, ...any) }
}

func (ar *archiver) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	batch := make([]archiveJob, 0, maxBatch)
	msgs := make([]ArchivedMessage, 0, maxBatch)
	for {
		select {
		case j := <-ar.queue:
			batch = append(batch[:0], j)
		case <-ctx.Done():
			// Commit what was accepted; nothing was delivered yet.
			for {
				select {
				case j := <-ar.queue:
					ar.write(context.Background(), append(batch[:0], j), msgs)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-ar.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		ar.write(ctx, batch, msgs)
		clear(batch)
	}
}

func (ar *archiver) write(ctx context.Context, batch []archiveJob, msgs []ArchivedMessage) {
	msgs = msgs[:0]
	for _, j := range batch {
		msgs = append(msgs, j.msg)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), archiveWriteTimeout)
	err := ar.a.Append(wctx, msgs)
	cancel()
	if err != nil {
		ar.log.Error("archive write failed", "messages", len(msgs), "err", err)
	}
	for _, j := range batch {
		j.done(err)
	}
}

// pendingMsg is a groupchat message accepted by a room and waiting for its
// archive write before anyone receives it.
type pendingMsg struct {
	seq        uint64
	st         *xmpp.Stanza
	out        *xmpp.Outbound
	recipients []Aff
}

// commitResult is the archive's verdict on one pending message.
type commitResult struct {
	seq uint64
	err error
}

// commits is the hand-off from the archiver to a room actor: results are
// appended under the lock and the actor is poked through a one-slot channel.
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

// stripStanzaIDs removes client-supplied XEP-0359 stanza-ids, which only the
// room may assign.
func stripStanzaIDs(e *etree.Element) {
	for _, c := range e.ChildElements() {
		if c.Tag == "stanza-id" && c.NamespaceURI() == NSSID {
			e.RemoveChild(c)
		}
	}
}

// archiveGroupchat queues a built groupchat message for the archive; it is
// delivered once the write is durable. When the queue is full the actor
// waits for room in it (delivering what gets committed meanwhile), so its
// mailbox fills and the senders' readers wait in turn: the back pressure
// reaches whoever floods. Only after mailbox_wait is the message refused.
func (r *room) archiveGroupchat(st *xmpp.Stanza, m *etree.Element, sender xmpp.JID) error {
	h := r.hub
	id, t := h.ids.next(h.now())
	withStanzaID(m, r.jid, id)
	out := xmpp.NewOutbound(m)
	r.seq++
	seq := r.seq
	job := archiveJob{
		msg:  ArchivedMessage{Room: r.jid, ID: id, Time: t, Sender: sender, Stanza: out.Bytes("")},
		done: func(err error) { r.commits.add(commitResult{seq: seq, err: err}) },
	}
	select {
	case h.archiver.queue <- job:
	default:
		if !r.waitArchive(job) {
			r.seq--
			h.m.archiveBusy.Inc()
			return xmpp.NewError(xmpp.ResourceConstraint, "the room history is busy, try again")
		}
	}
	r.pending = append(r.pending, pendingMsg{seq: seq, st: st, out: out, recipients: r.affs})
	return nil
}

// waitArchive waits, bounded by mailbox_wait, for room in the archive
// queue, fanning out the messages committed meanwhile.
func (r *room) waitArchive(job archiveJob) bool {
	h := r.hub
	h.m.archiveWaits.Inc()
	t := time.NewTimer(h.opts.MailboxWait)
	defer t.Stop()
	for {
		select {
		case h.archiver.queue <- job:
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
func (r *room) settle() bool {
	if len(r.pending) == 0 {
		return true
	}
	t := time.NewTimer(archiveWriteTimeout + r.hub.storeTimeout)
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
func (r *room) abandonPending() {
	for _, p := range r.pending {
		r.hub.replyError(p.st, xmpp.NewError(xmpp.ResourceConstraint, "the room history did not answer, try again"))
		r.abandoned = max(r.abandoned, p.seq)
	}
	r.pending = nil
}

// gone settles a room that no longer exists and removes its history: after
// its last writes, whoever destroyed it (a destroy, the last occupant
// leaving, a removed user or domain).
func (r *room) gone() {
	if !r.settle() {
		r.hub.log.Error("the archive did not settle a destroyed room's messages", "room", r.jid.String())
		r.abandonPending()
	}
	r.forget()
	r.removeArchive()
}

// deliverCommitted fans out the pending messages whose archive write ended,
// in the order they were accepted; a failed write is reported to its sender
// and delivered to nobody. Each delivery names the sender, so a recipient
// who is behind slows the sender rather than being dropped.
func (r *room) deliverCommitted() {
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
			r.hub.replyError(p.st, res.err)
			continue
		}
		for _, a := range p.recipients {
			r.hub.out.DeliverPaced(p.st.From, a.User, p.out)
		}
		r.hub.m.fanout.Add(float64(len(p.recipients)))
	}
	if len(r.pending) == 0 {
		r.pending = nil
	}
}

// archiveNotice archives a room event (creation, affiliation change) as
// the message occupants receive, with the request's id, without
// prev-version, and returns its archive id for the live copies' stanza-id
// ("" when history is off). It runs in the actor, before the
// notifications go out; such events are rare. When the write fails the
// event must not be announced: the error goes to the requester.
func (r *room) archiveNotice(reqID, version string, items []AffItem) (string, error) {
	h := r.hub
	if h.archiver == nil || h.opts.LegacyMode {
		return "", nil
	}
	id, t := h.ids.next(h.now())
	m := notification(r.jid, reqID, affsPayload("", version, items))
	withStanzaID(m, r.jid, id)
	ctx, cancel := r.storeCtx()
	defer cancel()
	err := h.archive.Append(ctx, []ArchivedMessage{{Room: r.jid, ID: id, Time: t, Stanza: xmpp.Marshal(m)}})
	if err != nil {
		return "", fmt.Errorf("archiving a room event of %s: %w", r.jid, err)
	}
	return id, nil
}

// withStanzaID adds the room's XEP-0359 stanza-id to a message (nothing
// when id is empty) and returns it.
func withStanzaID(m *etree.Element, room xmpp.JID, id string) *etree.Element {
	if id != "" {
		sid := m.CreateElement("stanza-id")
		sid.CreateAttr("xmlns", NSSID)
		sid.CreateAttr("by", room.String())
		sid.CreateAttr("id", id)
	}
	return m
}

// removeArchive deletes a destroyed room's history.
func (r *room) removeArchive() {
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

// mamQuery is a parsed archive query.
type mamQuery struct {
	ns, queryID string
	q           ArchiveQuery
	flip        bool
	countOnly   bool
	// release gives back the query's place under the caps; running is set
	// by the actor when the query starts (it releases at its end).
	release func()
	running bool
}

// parseMAMQuery reads a XEP-0313 query: the data form filters and RSM paging.
func (h *Hub) parseMAMQuery(st *xmpp.Stanza, q *etree.Element) (mamQuery, error) {
	ns := q.NamespaceURI()
	mq := mamQuery{ns: ns, queryID: xmpp.Attr(q, "queryid"), q: ArchiveQuery{Room: st.To.Bare(), Max: h.mam.DefaultPageSize}}
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
					return mq, badRequest("FORM_TYPE must be " + ns)
				}
			case "start", "end":
				var t time.Time
				if t, err = time.Parse(time.RFC3339Nano, one); err != nil {
					return mq, badRequest(v + ": not an XEP-0082 date-time")
				}
				if v == "start" {
					mq.q.Start = t
				} else {
					mq.q.End = t
				}
			case "with":
				if mq.q.With, err = xmpp.ParseJID(one); err != nil || mq.q.With.IsZero() {
					return mq, badRequest("with: not a JID")
				}
				mq.q.With = mq.q.With.Bare()
			case "before-id":
				mq.q.BeforeID = one
			case "after-id":
				mq.q.AfterID = one
			case "ids":
				if len(vals) == 0 {
					return mq, badRequest("ids: no id given")
				}
				mq.q.IDs = vals
			default:
				return mq, badRequest("unknown filter " + v)
			}
		}
	}
	if set := xmpp.Child(q, "set", xmpp.NSRSM); set != nil {
		if m := xmpp.Child(set, "max", xmpp.NSRSM); m != nil {
			n, err := strconv.Atoi(strings.TrimSpace(m.Text()))
			if err != nil || n < 0 {
				return mq, badRequest("RSM <max/> must be a non-negative integer")
			}
			mq.q.Max = n
		}
		if xmpp.Child(set, "index", xmpp.NSRSM) != nil {
			return mq, xmpp.NewError(xmpp.FeatureNotImplemented, "RSM <index/> is not supported; page with <after/> and <before/>")
		}
		if a := xmpp.Child(set, "after", xmpp.NSRSM); a != nil {
			mq.q.After = strings.TrimSpace(a.Text())
		}
		if b := xmpp.Child(set, "before", xmpp.NSRSM); b != nil {
			mq.q.Before = strings.TrimSpace(b.Text())
			mq.q.Last = mq.q.Before == ""
		}
	}
	mq.q.Max = min(mq.q.Max, h.mam.MaxPageSize)
	if mq.q.Max == 0 {
		mq.countOnly, mq.q.Max = true, 1
	}
	mq.flip = xmpp.Child(q, "flip-page", ns) != nil
	return mq, nil
}

// mamForm answers the query-fields request (XEP-0313 §5.1).
func mamForm(ns string) *etree.Element {
	q := xmpp.Elem("query", ns)
	x := q.CreateElement("x")
	x.CreateAttr("xmlns", xmpp.NSDataForm)
	x.CreateAttr("type", "form")
	ft := x.CreateElement("field")
	ft.CreateAttr("var", "FORM_TYPE")
	ft.CreateAttr("type", "hidden")
	textElem(ft, "value", ns)
	for _, f := range []struct{ v, t string }{{"start", "text-single"}, {"end", "text-single"}, {"with", "jid-single"},
		{"before-id", "text-single"}, {"after-id", "text-single"}, {"ids", "text-multi"}} {
		e := x.CreateElement("field")
		e.CreateAttr("var", f.v)
		e.CreateAttr("type", f.t)
	}
	return q
}

// runQuery answers an archive query: one message per result, then the
// iq result with <fin/>. It runs outside the room's actor so a long query
// does not hold up the room.
func (h *Hub) runQuery(st *xmpp.Stanza, mq mamQuery) {
	defer h.wg.Done()
	if mq.release != nil {
		defer mq.release()
	}
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	// XEP-0313 §6.1: paging from an id the archive does not hold is
	// item-not-found, not an empty page a client would take for the end.
	for _, cursor := range []string{mq.q.After, mq.q.Before} {
		if cursor == "" {
			continue
		}
		p, err := h.archive.Query(ctx, ArchiveQuery{Room: mq.q.Room, IDs: []string{cursor}, Max: 1})
		if err == nil && p.Count == 0 {
			err = xmpp.NewError(xmpp.ItemNotFound, "no archived message has the id "+cursor)
		}
		if err != nil {
			h.replyError(st, err)
			return
		}
	}
	page, err := h.archive.Query(ctx, mq.q)
	if err != nil {
		h.replyError(st, err)
		return
	}
	msgs := page.Messages
	if mq.countOnly {
		msgs = nil
	}
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
		if mq.flip {
			order[i] = len(msgs) - 1 - i
		}
	}
	for _, i := range order {
		m := msgs[i]
		fwd, err := xmpp.ParseElement(m.Stanza)
		if err != nil {
			h.log.Error("unreadable archived message", "room", m.Room.String(), "id", m.ID, "err", err)
			continue
		}
		res := xmpp.NewStanzaElement(xmpp.KindMessage, "", randomHex(8), st.To, xmpp.JID{})
		r := res.CreateElement("result")
		r.CreateAttr("xmlns", mq.ns)
		if mq.queryID != "" {
			r.CreateAttr("queryid", mq.queryID)
		}
		r.CreateAttr("id", m.ID)
		f := r.CreateElement("forwarded")
		f.CreateAttr("xmlns", NSForward)
		d := f.CreateElement("delay")
		d.CreateAttr("xmlns", xmpp.NSDelay)
		d.CreateAttr("stamp", m.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
		f.AddChild(fwd)
		h.deliver(st.From, res)
	}
	fin := xmpp.Elem("fin", mq.ns)
	if page.Complete || mq.countOnly {
		fin.CreateAttr("complete", "true")
	} else {
		fin.CreateAttr("complete", "false")
	}
	set := fin.CreateElement("set")
	set.CreateAttr("xmlns", xmpp.NSRSM)
	if len(msgs) > 0 {
		first := textElem(set, "first", msgs[0].ID)
		first.CreateAttr("index", strconv.Itoa(page.FirstIndex))
		textElem(set, "last", msgs[len(msgs)-1].ID)
	}
	textElem(set, "count", strconv.Itoa(page.Count))
	h.reply(st, fin)
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

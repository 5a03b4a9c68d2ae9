package rooms

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// The admin API acts through the same room core as XMPP clients: its
// requests carry an origin like a client's (a full JID on the acting user,
// a unique stanza id, this node), so the actor applies the same rules,
// archives the same entries and sends occupants the same notifications;
// only the answer is taken here instead of being rendered as a stanza.

// ErrCallTimeout is an admin call whose answer did not come in time (the
// context ended); the request may still be applied.
var ErrCallTimeout = errors.New("rooms: no answer from the room in time")

// CallResult is the room core's answer to an admin call: its reply, or for
// a groupchat post the accepted (and, with history on, archived) message.
type CallResult struct {
	Reply  room.Reply
	Posted *room.Posted
}

// adminCalls are the admin calls waiting for their answer, by origin id.
// It is bounded by the API's in-flight limit: one entry per waiting HTTP
// request.
type adminCalls struct {
	mu sync.Mutex
	m  map[string]*adminCall
}

type adminCall struct {
	from xmpp.JID
	ch   chan CallResult // one slot: the first answer
}

func (c *adminCalls) add(id string, from xmpp.JID) *adminCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*adminCall{}
	}
	w := &adminCall{from: from, ch: make(chan CallResult, 1)}
	c.m[id] = w
	return w
}

func (c *adminCalls) remove(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// take removes and returns the call an answer with origin o is for.
func (c *adminCalls) take(o room.Origin) *adminCall {
	if !strings.HasPrefix(o.ID, "api-") {
		return nil // a client's: no lock taken
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.m[o.ID]
	if w == nil || w.from != o.From {
		return nil
	}
	delete(c.m, o.ID)
	return w
}

// reply hands a reply to its waiting call; false: it is a client's.
func (c *adminCalls) reply(rep room.Reply) bool {
	w := c.take(rep.Origin)
	if w == nil {
		return false
	}
	w.ch <- CallResult{Reply: rep}
	return true
}

// posted hands an accepted message to the call that posted it; the message
// is delivered to the occupants as usual.
func (c *adminCalls) posted(ev *room.Posted) {
	if w := c.take(ev.Origin); w != nil {
		w.ch <- CallResult{Posted: ev}
	}
}

// Call runs req as the user as (a bare JID; for a system post, the room)
// through the room core, wherever the room's actor runs, and waits for the
// answer until ctx ends. A refusal is returned as *room.Error.
func (h *Hub) Call(ctx context.Context, as xmpp.JID, req room.Request) (CallResult, error) {
	id := "api-" + room.RandomHex(8)
	hd := req.Header()
	hd.Origin = room.Origin{From: as.Bare().WithResource(id), ID: id, To: hd.Room, Kind: xmpp.KindIQ, Dialect: room.MUCLight}
	if p, ok := req.(*room.Post); ok && !p.System {
		// As decodePost does for a client: the sender's occupant id
		// (XEP-0421) goes with the message, and its id can be corrected.
		p.MsgID = id
		p.Payload, p.Occupant = h.appendOccupantElem(p.Payload, hd.Room, hd.Origin.From)
	}
	w := h.calls.add(id, hd.Origin.From)
	defer h.calls.remove(id)
	h.tr.Dispatch(ctx, req) // a refusal is answered to the call too
	select {
	case res := <-w.ch:
		if res.Reply.Err != nil {
			return res, res.Reply.Err
		}
		return res, nil
	case <-ctx.Done():
		return CallResult{}, ErrCallTimeout
	}
}

// ActingOccupant is whom the admin API acts as in a room: its owner, or in
// a room without one (equal_occupants) its first member. The actor checks
// the request again as it would a client's.
func (h *Hub) ActingOccupant(ctx context.Context, rm xmpp.JID) (xmpp.JID, error) {
	ctx, cancel := context.WithTimeout(ctx, h.core.StoreTimeout())
	defer cancel()
	affs, _, err := h.core.Store().GetAffUsers(ctx, rm)
	if err != nil {
		return xmpp.JID{}, err
	}
	for _, a := range affs {
		if a.Aff == Owner {
			return a.User, nil
		}
	}
	if len(affs) == 0 {
		return xmpp.JID{}, ErrRoomNotFound
	}
	return affs[0].User, nil
}

// ServiceDomain is the MUC Light service of a served domain.
func (h *Hub) ServiceDomain(host string) string { return h.opts.ServiceDomain(host) }

// PageSizes are the default and the largest page of a history query.
func (h *Hub) PageSizes() (def, max int) { return h.core.PageSizes() }

// History reports whether room history is on.
func (h *Hub) History() bool { return h.core.History() }

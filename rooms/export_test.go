package rooms

import (
	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/roomhub"
	"github.com/wschat/xmppws/xmpp"
)

// hooks are the core's test hooks as the tests set them one at a time.
func (h *Hub) hooks() *roomhub.Hooks {
	if h.testHooks == nil {
		h.testHooks = &roomhub.Hooks{}
	}
	return h.testHooks
}

// SetUnloadHook lets tests wait for a room actor to be unloaded.
func SetUnloadHook(h *Hub, f func(xmpp.JID)) { h.hooks().OnUnload = f; h.core.SetHooks(*h.hooks()) }

// SetHandleHook lets tests act at the moment a room actor takes a request
// (f gets the request's origin as a stanza; From is zero for internal
// requests).
func SetHandleHook(h *Hub, f func(*xmpp.Stanza)) {
	h.hooks().OnHandle = func(req room.Request) {
		o := req.Header().Origin
		f(&xmpp.Stanza{Kind: o.Kind, ID: o.ID, From: o.From, To: o.To, Session: o.Session})
	}
	h.core.SetHooks(*h.hooks())
}

// LoadedRooms counts the loaded room actors.
func LoadedRooms(h *Hub) int { return h.core.Loaded() }

// SetWaitHook lets tests know that a dispatch is waiting for room in a full
// mailbox.
func SetWaitHook(h *Hub, f func()) { h.hooks().OnWait = f; h.core.SetHooks(*h.hooks()) }

// EnteredRooms counts the XEP-0045 occupancies in the session index.
func EnteredRooms(h *Hub) int { return h.entered.size() }

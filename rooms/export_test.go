package rooms

import "github.com/wschat/xmppws/xmpp"

// SetUnloadHook lets tests wait for a room actor to be unloaded.
func SetUnloadHook(h *Hub, f func(xmpp.JID)) { h.onUnload = f }

// SetHandleHook lets tests act at the moment a room actor takes a request
// (f gets the request's stanza; nil for internal requests).
func SetHandleHook(h *Hub, f func(*xmpp.Stanza)) { h.onHandle = f }

// LoadedRooms counts the loaded room actors.
func LoadedRooms(h *Hub) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms)
}

// SetWaitHook lets tests know that a dispatch is waiting for room in a full
// mailbox.
func SetWaitHook(h *Hub, f func()) { h.onWait = f }

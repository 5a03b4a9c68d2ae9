package rooms

import "github.com/wschat/xmppws/xmpp"

// SetUnloadHook lets tests wait for a room actor to be unloaded.
func SetUnloadHook(h *Hub, f func(xmpp.JID)) { h.onUnload = f }

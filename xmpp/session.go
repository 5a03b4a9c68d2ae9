package xmpp

// SessionRef names one bound session: the full JID it is bound to and its
// bind epoch (Stanza.Session). A session that later takes the same full JID
// (replacing it) has another epoch, so what was meant for a session, such
// as a room's events in the form it entered with, never reaches its
// successor. A zero Session names whichever session is bound to JID.
type SessionRef struct {
	JID     JID
	Session uint64
}

// Names reports whether ref names the session bound to full with epoch
// session.
func (ref SessionRef) Names(full JID, session uint64) bool {
	return ref.JID == full && (ref.Session == 0 || ref.Session == session)
}

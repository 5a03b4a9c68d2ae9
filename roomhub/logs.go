package roomhub

import (
	"log/slog"
	"time"

	"github.com/wschat/xmppws/room"
	"github.com/wschat/xmppws/xmpp"
)

// refusalLogInterval is the most often one sender's refusals are logged:
// the line after a quiet interval carries the count since the last one.
const refusalLogInterval = 10 * time.Second

// Refusal reasons the hub adds to the limiter's (limits.Reason*).
const (
	refusedCreateRate   = "create_rate"
	refusedRoomsPerUser = "rooms_per_user"
	refusedMailboxFull  = "mailbox_full"
)

// logRefused writes "limiter refusal" for user (the sender refused, or for
// rooms_per_user the user who could not be added), at most once per user and
// interval.
func (h *Hub) logRefused(user, rm xmpp.JID, reason string) {
	u := user.Bare().String()
	h.throttle.Log(h.log, slog.LevelInfo, u, "limiter refusal", "user", u, "room", rm.String(), "reason", reason)
}

// dialectName is how the log names a request's dialect.
func dialectName(d room.Dialect) string {
	if b, err := d.MarshalText(); err == nil {
		return string(b)
	}
	return "unknown"
}

// logCreated writes "room created".
func (r *actor) logCreated(hd *room.Head) {
	r.hub.log.Info("room created", "room", r.jid.String(), "by", hd.Origin.From.Bare().String(), "dialect", dialectName(hd.Origin.Dialect))
}

// logDestroyed writes "room destroyed"; why is destroy, last-occupant-left
// or removed (a user's or domain's removal emptied it).
func (r *actor) logDestroyed(hd *room.Head, why string) {
	args := []any{"room", r.jid.String(), "why", why}
	if !hd.Origin.From.IsZero() {
		args = append(args, "by", hd.Origin.From.Bare().String(), "dialect", dialectName(hd.Origin.Dialect))
	}
	r.hub.log.Info("room destroyed", args...)
}

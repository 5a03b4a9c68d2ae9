package rooms

import (
	"github.com/prometheus/client_golang/prometheus"
)

// hubMetrics are the room service's own series.
type hubMetrics struct {
	fanout         prometheus.Counter
	mailboxFull    prometheus.Counter
	internalErrors prometheus.Counter
	// limiterRefusals counts flood-limiter refusals by reason and host.
	limiterRefusals *prometheus.CounterVec
	archiveBusy     prometheus.Counter
}

func newHubMetrics(reg prometheus.Registerer, h *Hub) *hubMetrics {
	m := &hubMetrics{
		fanout: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_fanout_deliveries_total", Help: "Groupchat messages handed to occupants (one per occupant per message).",
		}),
		mailboxFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_mailbox_full_total", Help: "Room requests refused because the room's mailbox was full.",
		}),
		internalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_internal_errors_total", Help: "Room requests answered with internal-server-error (store or server faults).",
		}),
		limiterRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "muc_light_limiter_refusals_total", Help: "Room events refused by the flood limiter, by reason and served domain.",
		}, []string{"reason", "host"}),
		archiveBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_archive_queue_full_total", Help: "Groupchat messages refused because the archive queue was full.",
		}),
	}
	if reg == nil {
		return m
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "muc_light_active_rooms", Help: "Rooms with a loaded actor.",
	}, func() float64 {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return float64(len(h.rooms))
	})
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "muc_light_mailbox_depth", Help: "Requests waiting in all room mailboxes.",
	}, func() float64 {
		h.mu.RLock()
		defer h.mu.RUnlock()
		n := 0
		for _, r := range h.rooms {
			n += len(r.mailbox)
		}
		return float64(n)
	})
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "muc_light_archive_queue_depth", Help: "Groupchat messages waiting for the archive writer.",
	}, func() float64 {
		if h.archiver == nil {
			return 0
		}
		return float64(len(h.archiver.queue))
	})
	reg.MustRegister(m.fanout, m.mailboxFull, m.internalErrors, m.limiterRefusals, m.archiveBusy, active, depth, queued)
	return m
}

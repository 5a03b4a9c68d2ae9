package roomhub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/limits"
)

// hubMetrics are the room service's own series.
type hubMetrics struct {
	fanout         prometheus.Counter
	mailboxFull    prometheus.Counter
	internalErrors prometheus.Counter
	// limiterRefusals counts flood-limiter refusals by reason and served
	// domain (host_type, as the store metrics and MongooseIM name it).
	limiterRefusals *prometheus.CounterVec
	archiveBusy     prometheus.Counter
	// Flow control: waits for a full mailbox or archive queue, requests for
	// rooms that do not exist, creates over create_rate, queries over the
	// caps (by scope: room or server).
	mailboxWaits   prometheus.Counter
	archiveWaits   prometheus.Counter
	strangers      prometheus.Counter
	createRefusals prometheus.Counter
	queryRefusals  *prometheus.CounterVec
	// roomCapRefusals counts users the store refused at rooms_per_user.
	roomCapRefusals prometheus.Counter
	// fastenings counts the accepted corrections, retractions,
	// moderations, reactions and markers: each costs synchronous archive
	// writes (roomhub/fasten.go), so an operator sees what they cost.
	fastenings *prometheus.CounterVec
}

// fasteningKinds are the values of muc_light_fastenings_total's kind label.
var fasteningKinds = []string{"correction", "retraction", "moderation", "reactions", "displayed"}

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
			Name: "muc_light_limiter_refusals_total", Help: "Room events refused by the flood limiter, by reason and served domain (host_type).",
		}, []string{"reason", "host_type"}),
		archiveBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_archive_queue_full_total", Help: "Groupchat messages refused because the archive queue stayed full for mailbox_wait.",
		}),
		mailboxWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_mailbox_waits_total", Help: "Room requests whose sender waited because the room's mailbox was full.",
		}),
		archiveWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_archive_queue_waits_total", Help: "Groupchat messages for which the room waited because the archive queue was full.",
		}),
		strangers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_missing_room_requests_total", Help: "Requests for rooms that do not exist, answered without starting a room actor.",
		}),
		createRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_create_rate_refusals_total", Help: "Room creations refused by create_rate.",
		}),
		roomCapRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muc_light_rooms_per_user_refusals_total", Help: "Users refused by rooms_per_user: creators answered bad-request and occupants skipped.",
		}),
		queryRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "muc_light_mam_query_refusals_total", Help: "Archive queries refused by max_mam_queries_per_room (scope room) or max_mam_queries (scope server).",
		}, []string{"scope"}),
	}
	for _, scope := range []string{"room", "server"} {
		m.queryRefusals.WithLabelValues(scope) // at zero before the first refusal
	}
	m.fastenings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "muc_light_fastenings_total", Help: "Accepted corrections, retractions, moderations, reactions and displayed markers, by kind.",
	}, []string{"kind"})
	for _, k := range fasteningKinds {
		m.fastenings.WithLabelValues(k)
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
		return float64(h.archiver.Len())
	})
	creators := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "muc_light_create_rate_users", Help: "Users whose create_rate bucket the hub keeps (bounded).",
	}, func() float64 { return float64(h.creates.Size()) })
	reg.MustRegister(m.fanout, m.mailboxFull, m.internalErrors, m.limiterRefusals, m.archiveBusy, active, depth, queued,
		m.mailboxWaits, m.archiveWaits, m.strangers, m.createRefusals, m.queryRefusals, creators, m.roomCapRefusals, m.fastenings)
	return m
}

// limiterReasons are the flood limiter's refusal reasons, the values of
// muc_light_limiter_refusals_total's reason label.
var limiterReasons = []string{limits.ReasonRate, limits.ReasonTooLong, limits.ReasonTooManyLines, limits.ReasonNickTooLong}

// zeroHosts makes the per-domain series exist at zero for every served
// domain, so dashboards and alerts see them before the first event.
func (m *hubMetrics) zeroHosts(hosts []string) {
	for _, host := range hosts {
		for _, r := range limiterReasons {
			m.limiterRefusals.WithLabelValues(r, host)
		}
	}
}

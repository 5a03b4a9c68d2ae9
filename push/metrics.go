package push

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are push's Prometheus series.
type metrics struct {
	notifications *prometheus.CounterVec // kind, outcome
	drops         *prometheus.CounterVec // kind, reason
	postsDropped  prometheus.Counter
	online        prometheus.Counter
	retries       prometheus.Counter
	gauges        []prometheus.Collector
	// byKind holds the notifications' children, looked up once: the worker
	// counts per member.
	byKind map[string]map[string]prometheus.Counter
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppws_push_notifications_total",
			Help: "Push notifications by kind (xep0357, webhook) and outcome: sent, failed (an attempt that did not arrive; webhooks retry), dropped (given up, see xmppws_push_dropped_total), suppressed (the member was notified about the room within push.interval).",
		}, []string{"kind", "outcome"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppws_push_dropped_total",
			Help: "Push notifications given up, by kind and reason: queue_full, retries, rejected (webhook 4xx), remote (app server on another domain), throttle_full, store, shutdown.",
		}, []string{"kind", "reason"}),
		postsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppws_push_posts_dropped_total",
			Help: "Room messages not looked at for push because the push queue (push.queue_len) was full.",
		}),
		online: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppws_push_members_online_total",
			Help: "Room members not notified because they had a session somewhere.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppws_push_webhook_retries_total",
			Help: "Webhook attempts repeated after a failure.",
		}),
	}
	m.byKind = map[string]map[string]prometheus.Counter{}
	for _, k := range []string{KindXEP0357, KindWebhook} {
		m.byKind[k] = map[string]prometheus.Counter{}
		for _, o := range []string{"sent", "failed", "dropped", "suppressed"} {
			m.byKind[k][o] = m.notifications.WithLabelValues(k, o)
		}
	}
	m.gauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xmppws_push_queue_length", ConstLabels: prometheus.Labels{"queue": "posts"},
			Help: "Items waiting in a push queue: room posts for the push worker (bound push.queue_len), webhook notifications (bound push.webhook.max_queue).",
		}, func() float64 { return float64(len(s.posts)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xmppws_push_throttle_entries", ConstLabels: prometheus.Labels{"kind": KindXEP0357},
			Help: "Members and rooms remembered by the push throttle (bound push.max_throttle_entries per kind).",
		}, func() float64 { return float64(s.xep.size.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xmppws_push_throttle_entries", ConstLabels: prometheus.Labels{"kind": KindWebhook},
			Help: "Members and rooms remembered by the push throttle (bound push.max_throttle_entries per kind).",
		}, func() float64 { return float64(s.hook.size.Load()) }),
	}
	if s.webhook != nil || s.opts.Webhook.URL != "" {
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xmppws_push_queue_length", ConstLabels: prometheus.Labels{"queue": "webhook"},
			Help: "Items waiting in a push queue: room posts for the push worker (bound push.queue_len), webhook notifications (bound push.webhook.max_queue).",
		}, func() float64 {
			if s.webhook == nil {
				return 0
			}
			return float64(len(s.webhook.queue))
		}))
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.notifications, m.drops, m.postsDropped, m.online, m.retries)
	reg.MustRegister(m.gauges...)
}

func (m *metrics) outcome(kind, outcome string) { m.byKind[kind][outcome].Inc() }

// dropped counts a notification given up, under both series.
func (m *metrics) dropped(kind, reason string) {
	m.byKind[kind]["dropped"].Inc()
	m.drops.WithLabelValues(kind, reason).Inc()
}

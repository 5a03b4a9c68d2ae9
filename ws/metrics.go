package ws

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// streamConditions are the stream error conditions this server sends (the
// endpoint's and the element parser's), exported at zero from the start.
var streamConditions = []xmpp.Condition{
	xmpp.BadNamespacePrefix, xmpp.Conflict, xmpp.ConnectionTimeout, xmpp.HostUnknown, xmpp.InvalidFrom,
	xmpp.InvalidNamespace, xmpp.NotAuthorized, xmpp.NotWellFormed, xmpp.PolicyViolation, xmpp.RestrictedXML,
	xmpp.UnsupportedEncoding, xmpp.UnsupportedStanzaType, xmpp.UnsupportedVersion, xmpp.BadFormat, xmpp.UndefinedConditionName,
}

// metrics are the endpoint's own Prometheus series. Label values are drawn
// from small fixed sets (stanza kinds, mechanisms, conditions), never from
// JIDs, so cardinality stays bounded.
type metrics struct {
	connections  prometheus.Gauge
	sessions     prometheus.Gauge
	accepted     prometheus.Counter
	auth         *prometheus.CounterVec
	stanzasIn    *prometheus.CounterVec
	stanzasOut   *prometheus.CounterVec
	streamErrors *prometheus.CounterVec
	slowCloses   *prometheus.CounterVec
	stalls       prometheus.Counter
	stallSeconds prometheus.Counter

	closedWriteTimeout, closedMaxPending prometheus.Counter

	// Stream management (sm.go).
	smEnabled        prometheus.Counter
	smDetached       prometheus.Gauge
	smResumptions    *prometheus.CounterVec
	closedMaxUnacked prometheus.Counter

	outMessage, outPresence, outIQ, outOther prometheus.Counter
	inMessage, inPresence, inIQ              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmpp_ws_connections", Help: "Open WebSocket connections, authenticated or not.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmpp_sessions", Help: "Sessions with a bound resource.",
		}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_ws_connections_total", Help: "WebSocket connections accepted.",
		}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_auth_total", Help: "SASL authentication attempts by mechanism and result.",
		}, []string{"mechanism", "result"}),
		stanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_stanzas_in_total", Help: "Stanzas received from clients, by kind.",
		}, []string{"kind"}),
		stanzasOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_stanzas_out_total", Help: "Elements written to clients, by kind.",
		}, []string{"kind"}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_stream_errors_total", Help: "Streams ended with a stream error, by condition.",
		}, []string{"condition"}),
		slowCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_slow_consumer_closes_total", Help: "Sessions closed as slow consumers: no write progress for write_timeout, or pending bytes past max_pending.",
		}, []string{"reason"}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_send_stalls_total", Help: "Times a session's reader waited because a recipient it fed was above its high-water mark.",
		}),
		stallSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_send_stall_seconds_total", Help: "Time session readers spent waiting for recipients to drain.",
		}),
		smEnabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_sm_enabled_total", Help: "Sessions that enabled XEP-0198 stream management.",
		}),
		smDetached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmpp_sm_detached_sessions", Help: "Sessions whose connection dropped, waiting for a resume.",
		}),
		smResumptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_sm_resumptions_total", Help: "XEP-0198 resume attempts: ok, expired (the session timed out), unknown (no such resumable session for this user, or a bad h).",
		}, []string{"result"}),
	}
	for _, r := range []string{"ok", "expired", "unknown"} {
		m.smResumptions.WithLabelValues(r)
	}
	m.closedMaxUnacked = m.slowCloses.WithLabelValues("sm_max_unacked")
	// Every series of a known label value exists at zero from the start, so
	// a dashboard or an alert sees it before the first event.
	for _, c := range streamConditions {
		m.streamErrors.WithLabelValues(string(c))
	}
	for _, mech := range []string{account.SCRAMSHA256, account.SCRAMSHA1, "PLAIN", mechOAuthBearer, mechHTSHA256None} {
		for _, result := range []string{"success", "failure"} {
			m.auth.WithLabelValues(mech, result)
		}
	}
	m.closedWriteTimeout = m.slowCloses.WithLabelValues("write_timeout")
	m.closedMaxPending = m.slowCloses.WithLabelValues("max_pending")
	m.outMessage = m.stanzasOut.WithLabelValues("message")
	m.outPresence = m.stanzasOut.WithLabelValues("presence")
	m.outIQ = m.stanzasOut.WithLabelValues("iq")
	m.outOther = m.stanzasOut.WithLabelValues("other")
	m.inMessage = m.stanzasIn.WithLabelValues("message")
	m.inPresence = m.stanzasIn.WithLabelValues("presence")
	m.inIQ = m.stanzasIn.WithLabelValues("iq")
	if reg != nil {
		reg.MustRegister(m.connections, m.sessions, m.accepted, m.auth, m.stanzasIn, m.stanzasOut, m.streamErrors,
			m.slowCloses, m.stalls, m.stallSeconds, m.smEnabled, m.smDetached, m.smResumptions)
	}
	return m
}

// outCounter returns the pre-resolved counter for an element written out,
// so the write path does no label lookup for the common kinds.
func (m *metrics) outCounter(kind string) prometheus.Counter {
	switch kind {
	case "message":
		return m.outMessage
	case "presence":
		return m.outPresence
	case "iq":
		return m.outIQ
	}
	return m.outOther
}

// inCounter is outCounter for received stanzas (always one of the three).
func (m *metrics) inCounter(kind string) prometheus.Counter {
	switch kind {
	case "message":
		return m.inMessage
	case "presence":
		return m.inPresence
	}
	return m.inIQ
}

// pendingCollector reports the bytes waiting for session writers at scrape
// time, so the delivery path pays nothing for it: the total and the largest
// single session's backlog (how close anyone is to max_pending), without a
// per-session label.
type pendingCollector struct {
	srv                   *Server
	total, worst, unacked *prometheus.Desc
}

func newPendingCollector(srv *Server) *pendingCollector {
	return &pendingCollector{
		srv:     srv,
		total:   prometheus.NewDesc("xmpp_send_pending_bytes", "Encoded bytes waiting for session writers, all sessions.", nil, nil),
		unacked: prometheus.NewDesc("xmpp_sm_unacked_bytes", "Encoded bytes of stanzas sent (or held while detached) and not yet acknowledged, all stream-managed sessions.", nil, nil),
		worst:   prometheus.NewDesc("xmpp_send_pending_max_bytes", "Encoded bytes waiting for the most backlogged session's writer.", nil, nil),
	}
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.worst
	ch <- c.unacked
}

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	total, worst := c.srv.pendingBytes()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(c.worst, prometheus.GaugeValue, float64(worst))
	unacked := c.srv.smt.unackedBytes()
	ch <- prometheus.MustNewConstMetric(c.unacked, prometheus.GaugeValue, float64(unacked))
}

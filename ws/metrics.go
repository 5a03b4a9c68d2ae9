package ws

import (
	"github.com/prometheus/client_golang/prometheus"
)

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
	queueKills   prometheus.Counter

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
		queueKills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_send_queue_overflows_total", Help: "Sessions closed because their send queue was full or a write timed out.",
		}),
	}
	m.outMessage = m.stanzasOut.WithLabelValues("message")
	m.outPresence = m.stanzasOut.WithLabelValues("presence")
	m.outIQ = m.stanzasOut.WithLabelValues("iq")
	m.outOther = m.stanzasOut.WithLabelValues("other")
	m.inMessage = m.stanzasIn.WithLabelValues("message")
	m.inPresence = m.stanzasIn.WithLabelValues("presence")
	m.inIQ = m.stanzasIn.WithLabelValues("iq")
	if reg != nil {
		reg.MustRegister(m.connections, m.sessions, m.accepted, m.auth, m.stanzasIn, m.stanzasOut, m.streamErrors, m.queueKills)
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

package ws

import (
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection is refused before it is served, as metric labels.
const (
	refusedTotal      = "unauthenticated_total"
	refusedPerAddress = "unauthenticated_per_address"
)

// admission counts the connections that have not bound a resource, in
// total and per remote IP, from TCP accept (through ConnState) until the
// session binds or the connection ends. It is what keeps one host that
// opens sockets and never logs in from holding every file descriptor.
type admission struct {
	maxTotal, maxPerAddr int

	mu     sync.Mutex
	conns  map[net.Conn]string // counted connection -> its IP
	perIP  map[string]int
	gauge  prometheus.Gauge
	refuse *prometheus.CounterVec
}

func newAdmission(cfg Config, im *ingressMetrics) *admission {
	return &admission{
		maxTotal:   cfg.MaxUnauthenticated,
		maxPerAddr: cfg.MaxUnauthenticatedPerAddress,
		conns:      make(map[net.Conn]string),
		perIP:      make(map[string]int),
		gauge:      im.unauthenticated,
		refuse:     im.refused,
	}
}

// admit counts c, or reports the cap it would exceed.
func (a *admission) admit(c net.Conn) (reason string, ok bool) {
	ip := remoteIP(c.RemoteAddr().String())
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.conns[c]; dup {
		return "", true
	}
	switch {
	case a.maxTotal > 0 && len(a.conns) >= a.maxTotal:
		reason = refusedTotal
	case a.maxPerAddr > 0 && a.perIP[ip] >= a.maxPerAddr:
		reason = refusedPerAddress
	}
	if reason != "" {
		a.refuse.WithLabelValues(reason).Inc()
		return reason, false
	}
	a.conns[c] = ip
	a.perIP[ip]++
	a.gauge.Inc()
	return "", true
}

// release stops counting c; releasing a connection that is not counted
// (refused, or already released) does nothing.
func (a *admission) release(c net.Conn) {
	if c == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ip, ok := a.conns[c]
	if !ok {
		return
	}
	delete(a.conns, c)
	if a.perIP[ip]--; a.perIP[ip] <= 0 {
		delete(a.perIP, ip)
	}
	a.gauge.Dec()
}

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// ConnState is the hook to install as http.Server.ConnState: it counts a
// connection against the unauthenticated caps from the moment it is
// accepted, so that connections still sending their request headers count
// too, and closes one over a cap at once. A hijacked connection stays
// counted until its session binds or ends.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		if reason, ok := s.admit.admit(c); !ok {
			s.logRefused(c.RemoteAddr().String(), reason)
			c.Close()
		}
	case http.StateClosed:
		s.admit.release(c)
	}
}

// ingressMetrics are the series of the ingress side: shaping and admission.
type ingressMetrics struct {
	shaperDelays    [2]prometheus.Counter
	shaperSeconds   [2]prometheus.Counter
	refused         *prometheus.CounterVec
	unauthenticated prometheus.Gauge
	bindRefused     prometheus.Counter
}

func newIngressMetrics(reg prometheus.Registerer) *ingressMetrics {
	delays := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xmpp_shaper_delays_total", Help: "Frames after which a session's reader waited for the ingress shaper, by bucket.",
	}, []string{"bucket"})
	seconds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xmpp_shaper_delay_seconds_total", Help: "Time the ingress shaper's buckets asked readers to wait, by bucket (the reader waits the larger of the two).",
	}, []string{"bucket"})
	im := &ingressMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmpp_ws_connections_refused_total", Help: "Connections closed at accept or refused at the upgrade because a cap was reached, by reason.",
		}, []string{"reason"}),
		unauthenticated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmpp_ws_unauthenticated_connections", Help: "Connections counted against the unauthenticated caps: accepted, not yet bound.",
		}),
		bindRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmpp_bind_refused_total", Help: "Resource binds refused because the account had max_sessions_per_account sessions.",
		}),
	}
	for i, name := range bucketNames {
		im.shaperDelays[i] = delays.WithLabelValues(name)
		im.shaperSeconds[i] = seconds.WithLabelValues(name)
	}
	for _, r := range []string{refusedTotal, refusedPerAddress} {
		im.refused.WithLabelValues(r) // exported at zero, so a dashboard sees the series before the first refusal
	}
	if reg != nil {
		reg.MustRegister(delays, seconds, im.refused, im.unauthenticated, im.bindRefused)
	}
	return im
}

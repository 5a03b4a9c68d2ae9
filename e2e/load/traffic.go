package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/e2e/client"
	"github.com/wschat/xmppws/xmpp"
)

// bodyPrefix starts every body the tool sends. A body reads
// "xmppload RUN m|w SENDER SEQ OFFSET [padding]": the run's id (bodies of
// other runs are ignored), measured or warm-up, the sender's user index and
// its sequence number, and the send time in nanoseconds since the run's
// traffic started, which every receiver subtracts from its own clock
// reading (same process, monotonic clock) to get the end-to-end latency.
const bodyPrefix = "xmppload "

// traffic runs the sending and receiving phase: warm-up, measured period,
// drain. It returns when every sender and receiver goroutine has.
func (e *engine) traffic(ctx context.Context) {
	var senders []*session
	for _, s := range e.sessions {
		if s != nil && len(s.rooms) > 0 {
			senders = append(senders, s)
		}
	}
	var interval time.Duration
	if e.cfg.Rate > 0 {
		interval = time.Duration(float64(len(senders)) / e.cfg.Rate * float64(time.Second))
	}
	e.warmup = e.cfg.Warmup
	e.end = e.cfg.Warmup + e.cfg.Duration
	cpu := newCPUSampler(e.cfg.ServerPID)
	defer cpu.Close()
	e.t0 = time.Now()

	recvCtx, stopReceivers := context.WithCancel(context.Background())
	defer stopReceivers()
	var receivers sync.WaitGroup
	for _, s := range e.sessions {
		if s != nil {
			receivers.Go(func() { e.receive(recvCtx, s) })
		}
	}
	// sendCtx is cancelled only to unblock writes stuck after the stop.
	sendCtx, cancelSends := context.WithCancel(context.Background())
	defer cancelSends()
	var sendersWG sync.WaitGroup
	for _, s := range senders {
		sendersWG.Go(func() { e.send(sendCtx, s, interval) })
	}
	// With a per-sender quota the run ends when every sender has sent it.
	allSent := make(chan struct{})
	if e.cfg.PerSender > 0 {
		go func() { sendersWG.Wait(); close(allSent) }()
	}
	e.say("traffic: %d senders, %s, window %d, warm-up %s, then %s", len(senders), rateText(e.cfg.Rate), e.cfg.Window, e.cfg.Warmup, e.cfg.Duration)

	e.setStatus(e.trafficStatus())

	before := cpu.sample()
	if e.warmup > 0 {
		t := time.NewTimer(e.warmup)
		select {
		case <-t.C:
			before = cpu.sample()
		case <-ctx.Done():
		}
		t.Stop()
	}
	// Senders also stop by themselves at the end: under heavy load this
	// goroutine may wake up well after its timer fired.
	end := time.NewTimer(time.Until(e.t0.Add(e.end)))
	defer end.Stop()
	e.sum.Stopped = "interrupted"
	if ctx.Err() == nil {
		select {
		case <-end.C:
			e.sum.Stopped = "duration"
		case <-e.capReached:
			e.sum.Stopped = "messages"
		case <-allSent:
			e.sum.Stopped = "per-sender"
		case <-ctx.Done():
		}
	}
	close(e.stop)
	after := cpu.sample()
	stopAt := time.Since(e.t0)
	switch e.sum.Stopped {
	case "duration":
		stopAt = e.end
	case "per-sender":
		stopAt = max(time.Since(e.t0), e.warmup)
	case "messages":
		stopAt = e.capAt
	}
	e.measureResources(before, after, cpu.err)

	drain := e.cfg.Drain
	if ctx.Err() != nil {
		drain = min(drain, interruptedDrain)
	}
	deadline := time.Now().Add(drain)
	e.setStatus(func() string {
		return fmt.Sprintf("draining: %d of %d deliveries, in flight %d", e.deliveredAll.Load(), e.expectedAll.Load(), e.inFlight.Load())
	})

	// Senders see the stop between messages. A write still blocked when
	// the drain is over (the server has stopped reading that connection)
	// is cancelled, which closes the connection: the session is marked so
	// that its end is not blamed on the server.
	if !waitTimeout(&sendersWG, max(drain, senderStopTimeout)) {
		for _, s := range senders {
			if s.writing.Load() {
				s.cut.Store(true)
			}
		}
		cancelSends()
		sendersWG.Wait()
	}

	// Deliveries to sessions that ended never come: a drain that sees
	// nothing arrive for drainIdle is over.
	tick := time.NewTicker(10 * time.Millisecond)
	last, lastAt := e.deliveredAll.Load(), time.Now()
	for e.deliveredAll.Load() < e.expectedAll.Load() && time.Now().Before(deadline) && time.Since(lastAt) < drainIdle {
		<-tick.C
		if n := e.deliveredAll.Load(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	tick.Stop()
	e.setStatus(nil)
	stopReceivers()
	receivers.Wait()

	measured := max(stopAt-e.warmup, 0)
	e.sum.WarmupSeconds = min(e.warmup, stopAt).Seconds()
	e.sum.MeasuredSeconds = measured.Seconds()
	if measured > 0 {
		e.sum.SendRate = float64(e.sent.Load()) / measured.Seconds()
		window := max(measured, time.Duration(e.lastDelivery.Load())-e.warmup)
		e.sum.DeliveryRate = float64(e.delivered.Load()) / window.Seconds()
	}
	e.say("traffic done: stopped by %s, %d deliveries of %d expected", e.sum.Stopped, e.deliveredAll.Load(), e.expectedAll.Load())
}

// trafficStatus is the progress line of the traffic phase: totals, rates
// since the previous line, messages in flight, errors.
func (e *engine) trafficStatus() func() string {
	var (
		lastAt             = e.t0
		lastSent, lastRecv uint64
	)
	return func() string {
		now := time.Now()
		secs := now.Sub(lastAt).Seconds()
		if secs < 0.5 {
			return "" // a tick that came late and one on time: no rate yet
		}
		sent := e.sent.Load() + e.warmupSent.Load()
		recv := e.deliveredAll.Load()
		phase := ""
		if now.Sub(e.t0) < e.warmup {
			phase = " (warm-up)"
		}
		line := fmt.Sprintf("[%4.1fs] sent %d (%.0f/s), delivered %d (%.0f/s), in flight %d, errors %d%s",
			now.Sub(e.t0).Seconds(), sent, float64(sent-lastSent)/secs, recv, float64(recv-lastRecv)/secs,
			e.inFlight.Load(), e.stanzaErr.total()+e.streamErr.total()+e.otherErr.total(), phase)
		lastAt, lastSent, lastRecv = now, sent, recv
		return line
	}
}

// measureResources fills the server's memory and the CPU split between the
// server and the tool over the measured period.
func (e *engine) measureResources(before, after cpuSample, cpuErr error) {
	s := &e.sum
	if e.cfg.ServerPID > 0 {
		if rss, peak, err := procRSS(e.cfg.ServerPID); err == nil {
			s.ServerRSSBytes, s.ServerPeakRSSBytes = rss, peak
		} else {
			s.ResourceNotes = append(s.ResourceNotes, err.Error())
		}
		if cpuErr != nil {
			s.ResourceNotes = append(s.ResourceNotes, cpuErr.Error())
		}
		s.ServerCPUPercent = cpuPercent(before, after, true)
	}
	s.ToolCPUPercent = cpuPercent(before, after, false)
	if e.cfg.MetricsURL != "" {
		if v, err := metricsRSS(context.Background(), e.cfg.MetricsURL); err == nil {
			s.ServerMetricsRSSBytes = v
		} else {
			s.ResourceNotes = append(s.ResourceNotes, err.Error())
		}
	}
}

func rateText(r float64) string {
	if r == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g msgs/s", r)
}

// waitTimeout waits for wg for at most d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// send is one sender: it writes groupchat messages to its rooms in turn,
// paced to its share of Rate, never with more than Window of them not yet
// reflected back to it, until the stop.
func (e *engine) send(ctx context.Context, s *session, interval time.Duration) {
	var next time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if interval > 0 {
		// A random phase spreads the senders over the interval.
		next = e.t0.Add(rand.N(interval))
	}
	buf := make([]byte, 0, 256+e.cfg.BodySize)
	var seq uint64
	for i := 0; ; i++ {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-e.stop:
					return
				}
			}
			next = next.Add(interval)
			if time.Since(next) > time.Second {
				next = time.Now() // fell behind (window full): do not burst to catch up
			}
		}
		select {
		case s.window <- struct{}{}:
		case <-e.stop:
			return
		}
		select {
		case <-e.stop:
			<-s.window
			return
		default:
		}
		at := time.Since(e.t0)
		if at >= e.end {
			<-s.window
			return
		}
		measured := at >= e.warmup
		if measured && e.cfg.PerSender > 0 && s.quota >= e.cfg.PerSender {
			<-s.window
			return
		}
		if measured && e.cfg.Messages > 0 && e.reserved.Add(1) > uint64(e.cfg.Messages) {
			<-s.window
			e.capOnce.Do(func() {
				e.capAt = at
				close(e.capReached)
			})
			return
		}
		r := s.rooms[i%len(s.rooms)]
		seq++
		buf = e.appendMessage(buf[:0], r, s.idx, seq, measured, at)
		e.inFlight.Add(1)
		s.writing.Store(true)
		err := s.c.SendRaw(ctx, string(buf))
		s.writing.Store(false)
		if err != nil {
			e.inFlight.Add(-1)
			<-s.window
			if !s.cut.Load() && !s.dead.Load() {
				e.otherErr.add("send failed: " + classify(err))
			}
			return
		}
		occ := uint64(len(r.joined))
		e.expectedAll.Add(occ)
		if measured {
			s.quota++
			e.sent.Add(1)
			e.expected.Add(occ)
		} else {
			e.warmupSent.Add(1)
		}
	}
}

// appendMessage writes one groupchat message. Every part is ASCII without
// XML specials (room JIDs are the tool's own), so no escaping is needed.
func (e *engine) appendMessage(b []byte, r *room, sender int, seq uint64, measured bool, at time.Duration) []byte {
	b = append(b, "<message xmlns='jabber:client' type='groupchat' to='"...)
	b = append(b, r.jid.String()...)
	b = append(b, "' id='xl-"...)
	b = append(b, e.run...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "'><body>"...)
	start := len(b)
	b = append(b, bodyPrefix...)
	b = append(b, e.run...)
	if measured {
		b = append(b, " m "...)
	} else {
		b = append(b, " w "...)
	}
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(at), 10)
	if pad := e.cfg.BodySize - (len(b) - start); pad > 0 {
		b = append(b, ' ')
		for range pad - 1 {
			b = append(b, 'x')
		}
	}
	return append(b, "</body></message>"...)
}

// stamp is what a body says about its message.
type stamp struct {
	measured bool
	sender   int
	at       time.Duration
}

// parseBody reads a body of this run; ok is false for anything else.
func (e *engine) parseBody(body string) (st stamp, ok bool) {
	rest, ok := strings.CutPrefix(body, bodyPrefix)
	if !ok {
		return st, false
	}
	var f [5]string // run, m|w, sender, seq, offset
	for i := range f {
		var more bool
		f[i], rest, more = strings.Cut(rest, " ")
		if !more && i < len(f)-1 {
			return st, false
		}
	}
	if f[0] != e.run || (f[1] != "m" && f[1] != "w") {
		return st, false
	}
	sender, err1 := strconv.Atoi(f[2])
	at, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil {
		return st, false
	}
	return stamp{measured: f[1] == "m", sender: sender, at: time.Duration(at)}, true
}

// senderOfID reads the sender's index from a message id this run gave.
func (e *engine) senderOfID(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, "xl-"+e.run+"-")
	if !ok {
		return 0, false
	}
	s, _, _ := strings.Cut(rest, "-")
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// receive is the consumer of one session's stanzas for the whole traffic
// phase: it counts deliveries, records their latency, releases its
// sender's window when its own messages come back, and tallies errors.
func (e *engine) receive(ctx context.Context, s *session) {
	s.c.SetRawHandler(func(b []byte) bool { return e.onRaw(s, b) })
	defer s.c.SetRawHandler(nil)
	for {
		el, err := s.c.Next(ctx)
		if err != nil {
			var pe *client.ParseError
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &pe):
				e.otherErr.add("unparseable frame from the server")
				continue
			}
			s.dead.Store(true)
			var se *client.StreamError
			switch {
			case errors.As(err, &se):
				e.streamErr.add(se.Condition)
			case s.cut.Load():
				e.otherErr.add("connection cut by the tool: a write was still blocked after the drain")
			case errors.Is(err, io.EOF):
				e.otherErr.add("connection ended without a stream error (server write timeout?)")
			default:
				e.otherErr.add("receive: " + classify(err))
			}
			return
		}
		at := time.Since(e.t0)
		if ns := el.NamespaceURI(); ns != xmpp.NSClient && ns != "" {
			continue // a stream error: counted when the stream ends
		}
		typ := el.SelectAttrValue("type", "")
		switch el.Tag {
		case "message":
			e.onMessage(s, el, typ, at)
		case "presence":
			if typ == "error" {
				e.stanzaErr.add("presence/" + conditionOf(el))
			}
		case "iq":
			e.onIQ(s, el, typ)
		}
	}
}

func (e *engine) onMessage(s *session, el *etree.Element, typ string, at time.Duration) {
	if typ == "error" {
		e.stanzaErr.add("message/" + conditionOf(el))
		if sender, ok := e.senderOfID(el.SelectAttrValue("id", "")); ok && sender == s.idx {
			e.release(s)
		}
		return
	}
	var body string
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok && c.Tag == "body" {
			body = c.Text()
			break
		}
	}
	e.onBody(s, body, at) // false: notifications, subjects, other traffic
}

// onRaw handles the tool's own groupchat deliveries straight from the
// bytes: the server writes them as <message … type='groupchat' …><body>…
// with a body of plain ASCII (see appendMessage). Anything else goes on to
// the parser and receive.
func (e *engine) onRaw(s *session, b []byte) bool {
	if !bytes.HasPrefix(b, []byte("<message ")) {
		return false
	}
	head, _, ok := bytes.Cut(b, []byte(">"))
	if !ok || !bytes.Contains(head, []byte("type='groupchat'")) {
		return false
	}
	_, rest, ok := bytes.Cut(b, []byte("<body>"))
	if !ok {
		return false
	}
	body, _, ok := bytes.Cut(rest, []byte("</body>"))
	if !ok || bytes.IndexByte(body, '&') >= 0 {
		return false
	}
	return e.onBody(s, string(body), time.Since(e.t0))
}

// onBody counts one delivery of a body of this run; false when the body
// is not one.
func (e *engine) onBody(s *session, body string, at time.Duration) bool {
	st, ok := e.parseBody(body)
	if !ok {
		return false
	}
	if st.sender == s.idx {
		e.release(s)
	}
	e.deliveredAll.Add(1)
	if !st.measured {
		return true
	}
	e.delivered.Add(1)
	e.hist.Record(at - st.at)
	for {
		last := e.lastDelivery.Load()
		if int64(at) <= last || e.lastDelivery.CompareAndSwap(last, int64(at)) {
			break
		}
	}
	return true
}

// release frees one slot of s's window: one of its messages came back.
func (e *engine) release(s *session) {
	select {
	case <-s.window:
		e.inFlight.Add(-1)
	default:
	}
}

// onIQ answers the server's requests (a ping gets a result, anything else
// service-unavailable, as RFC 6120 requires every get/set be answered) and
// counts iq errors.
func (e *engine) onIQ(s *session, el *etree.Element, typ string) {
	switch typ {
	case "error":
		e.stanzaErr.add("iq/" + conditionOf(el))
		return
	case "get", "set":
	default:
		return
	}
	res := xmpp.Elem("iq", xmpp.NSClient)
	res.CreateAttr("id", el.SelectAttrValue("id", ""))
	if from := el.SelectAttrValue("from", ""); from != "" {
		res.CreateAttr("to", from)
	}
	if typ == "get" && xmpp.Child(el, "ping", xmpp.NSPing) != nil {
		res.CreateAttr("type", "result")
	} else {
		res.CreateAttr("type", "error")
		er := res.CreateElement("error")
		er.CreateAttr("type", "cancel")
		er.CreateElement("service-unavailable").CreateAttr("xmlns", xmpp.NSStanzas)
	}
	ctx, cancel := context.WithTimeout(context.Background(), iqTimeout)
	defer cancel()
	s.c.Send(ctx, res)
}

func conditionOf(el *etree.Element) string {
	if se := client.ErrorOf(el); se != nil && se.Condition != "" {
		return se.Condition
	}
	return "undefined-condition"
}

package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The webhook's headers. The signature is HMAC-SHA256, keyed with the
// secret, over the timestamp header's value, a '.', and the body; the
// receiver recomputes it and refuses old timestamps, so a captured request
// cannot be replayed later.
const (
	HeaderSignature = "X-Xmppws-Signature" // "sha256=" + hex
	HeaderTimestamp = "X-Xmppws-Timestamp" // Unix seconds when this attempt was sent
)

// maxBackoff caps the wait between two attempts.
const maxBackoff = time.Minute

// WebhookOptions configure the webhook ([push.webhook]); an empty URL is
// no webhook.
type WebhookOptions struct {
	URL    string
	Secret string
	// Timeout bounds one attempt (connect, send, response headers and body).
	Timeout time.Duration
	// MaxQueue bounds the notifications waiting to be sent (items); a full
	// queue drops the new one and counts it.
	MaxQueue int
	// MaxRetries is how many times a failed attempt is repeated before the
	// notification is dropped and counted.
	MaxRetries int
	// Backoff is the wait before the first retry; it doubles each time (at
	// most a minute), with jitter.
	Backoff time.Duration
	// Workers is how many requests are in flight at once.
	Workers int
	// Client makes the requests (default: one with Timeout, no redirects).
	Client *http.Client
}

// payload is the JSON body of one webhook POST: one room message and the
// offline members it should wake.
type payload struct {
	ID      string   `json:"id"`
	Room    string   `json:"room"`
	Sender  string   `json:"sender"`
	Body    string   `json:"body,omitempty"`
	Members []string `json:"members"`
	Time    string   `json:"time"`
}

// webhook sends payloads from a bounded queue with a few workers, retrying
// with exponential back-off; nothing waits for it but its own workers.
type webhook struct {
	o     WebhookOptions
	m     *metrics
	log   *slog.Logger
	queue chan payload
}

func newWebhook(o WebhookOptions, m *metrics, log *slog.Logger) *webhook {
	if o.MaxQueue <= 0 {
		o.MaxQueue = 1
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirected POST would become a GET
		}}
	}
	return &webhook{o: o, m: m, log: log, queue: make(chan payload, o.MaxQueue)}
}

func (w *webhook) start(ctx context.Context, wg *sync.WaitGroup) {
	for range w.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-w.queue:
					w.deliver(ctx, p)
				}
			}
		}()
	}
}

// enqueue never blocks: a full queue drops p.
func (w *webhook) enqueue(p payload) {
	select {
	case w.queue <- p:
	default:
		w.m.dropped(KindWebhook, "queue_full")
	}
}

// drain counts what is left at shutdown.
func (w *webhook) drain() {
	for {
		select {
		case <-w.queue:
			w.m.dropped(KindWebhook, "shutdown")
		default:
			return
		}
	}
}

// deliver makes the attempts for one payload.
func (w *webhook) deliver(ctx context.Context, p payload) {
	body, err := json.Marshal(p)
	if err != nil {
		w.m.dropped(KindWebhook, "encode")
		return
	}
	for attempt := 0; ; attempt++ {
		retry, err := w.attempt(ctx, body)
		if err == nil {
			w.m.outcome(KindWebhook, "sent")
			return
		}
		w.m.outcome(KindWebhook, "failed")
		if ctx.Err() != nil {
			w.m.dropped(KindWebhook, "shutdown")
			return
		}
		if !retry {
			w.m.dropped(KindWebhook, "rejected")
			w.log.Warn("webhook refused a notification", "room", p.Room, "err", err)
			return
		}
		if attempt >= w.o.MaxRetries {
			w.m.dropped(KindWebhook, "retries")
			w.log.Warn("webhook notification dropped after retries", "room", p.Room, "attempts", attempt+1, "err", err)
			return
		}
		w.m.retries.Inc()
		t := time.NewTimer(backoff(w.o.Backoff, attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			w.m.dropped(KindWebhook, "shutdown")
			return
		case <-t.C:
		}
	}
}

// attempt POSTs once; retry says whether a failure is worth repeating
// (network errors, timeouts, 5xx, 408 and 429; not other 4xx).
func (w *webhook) attempt(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "xmppws-push")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.o.Secret, ts, body))
	resp, err := w.o.Client.Do(req)
	if err != nil {
		// Without the URL, which may carry a token the operator put in it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("webhook: HTTP %d", c)
	default:
		return false, fmt.Errorf("webhook: HTTP %d", c)
	}
}

// Sign is the signature header's value for a body sent at timestamp ts:
// what a receiver computes to check one (with hmac.Equal).
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// backoff is base × 2^attempt, at most maxBackoff, with jitter: a random
// time between half and all of it, so that retries of many notifications
// after an outage do not arrive together.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for range attempt {
		if d >= maxBackoff/2 {
			d = maxBackoff
			break
		}
		d *= 2
	}
	d = min(d, maxBackoff)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

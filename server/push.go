package main

import (
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wschat/xmppws/push"
	"github.com/wschat/xmppws/rooms"
	"github.com/wschat/xmppws/ws"
)

// PushConfig is [push]: notifications to room members who are offline,
// by XEP-0357 to app servers and/or by a webhook (README, Push).
type PushConfig struct {
	// XEP0357 accepts clients' enable/disable and publishes to the app
	// servers they named; off by default, as every room message then costs a
	// presence check per member and a store read for those offline.
	XEP0357 bool `toml:"xep0357"`
	// Interval is the least time between two notifications of one member
	// about one room (per kind).
	Interval duration `toml:"interval"`
	// IncludeBody puts the first 100 characters of the body in
	// notifications; false sends only room and sender.
	IncludeBody bool `toml:"include_body"`
	// MaxRegistrations caps one account's XEP-0357 registrations.
	MaxRegistrations int `toml:"max_registrations"`
	// QueueLen bounds the room messages waiting for the push worker.
	QueueLen int `toml:"queue_len"`
	// MaxThrottleEntries bounds the (member, room) pairs the throttle
	// remembers, per kind.
	MaxThrottleEntries int           `toml:"max_throttle_entries"`
	Webhook            WebhookConfig `toml:"webhook"`
}

// WebhookConfig is [push.webhook]; an empty URL turns it off.
type WebhookConfig struct {
	URL string `toml:"url"`
	// Secret keys the HMAC-SHA256 signature of every request; never logged.
	Secret       string   `toml:"secret"`
	Timeout      duration `toml:"timeout"`
	MaxQueue     int      `toml:"max_queue"`
	MaxRetries   int      `toml:"max_retries"`
	RetryBackoff duration `toml:"retry_backoff"`
	Workers      int      `toml:"workers"`
}

func defaultPush() PushConfig {
	return PushConfig{
		Interval: duration{30 * time.Second}, IncludeBody: true, MaxRegistrations: 5, QueueLen: 10000,
		MaxThrottleEntries: 100000,
		Webhook: WebhookConfig{Timeout: duration{5 * time.Second}, MaxQueue: 1000, MaxRetries: 3,
			RetryBackoff: duration{time.Second}, Workers: 2},
	}
}

// on reports whether any kind of push is configured.
func (c PushConfig) on() bool { return c.XEP0357 || c.Webhook.URL != "" }

func (c *PushConfig) validate() error {
	w := c.Webhook
	switch {
	case c.Interval.Duration <= 0:
		return errors.New("push.interval: must be positive")
	case c.MaxRegistrations < 1 || c.MaxRegistrations > 100:
		return errors.New("push.max_registrations: must be between 1 and 100")
	case c.QueueLen < 1:
		return errors.New("push.queue_len: must be at least 1")
	case c.MaxThrottleEntries < 1:
		return errors.New("push.max_throttle_entries: must be at least 1")
	case w.Timeout.Duration <= 0:
		return errors.New("push.webhook.timeout: must be positive")
	case w.MaxQueue < 1:
		return errors.New("push.webhook.max_queue: must be at least 1")
	case w.MaxRetries < 0 || w.MaxRetries > 20:
		return errors.New("push.webhook.max_retries: must be between 0 and 20")
	case w.RetryBackoff.Duration <= 0:
		return errors.New("push.webhook.retry_backoff: must be positive")
	case w.Workers < 1 || w.Workers > 64:
		return errors.New("push.webhook.workers: must be between 1 and 64")
	}
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("push.webhook.url: must be an absolute http:// or https:// URL")
		}
		if w.Secret == "" {
			return errors.New("push.webhook.secret: must be set when push.webhook.url is (it signs every request)")
		}
	}
	return nil
}

// startPush builds the push service when [push] asks for one: the room
// hook goes into ho, the XEP-0357 handler and feature onto the router.
func startPush(cfg Config, st *stores, w *ws.Server, reg prometheus.Registerer, log *slog.Logger) (*push.Service, func(*rooms.HubOptions)) {
	p := cfg.Push
	if !p.on() {
		return nil, func(*rooms.HubOptions) {}
	}
	wh := p.Webhook
	svc := push.New(push.Options{
		Logger: log, Registerer: reg, Store: st.push, Presence: w.Router(), Router: w.Router(), Hosts: cfg.General.Hosts,
		XEP0357: p.XEP0357 && st.push != nil, Interval: p.Interval.Duration, IncludeBody: p.IncludeBody,
		MaxRegistrations: p.MaxRegistrations, QueueLen: p.QueueLen, MaxThrottleEntries: p.MaxThrottleEntries,
		StoreTimeout: cfg.Storage.MongoDB.OpTimeout.Duration,
		Webhook: push.WebhookOptions{URL: wh.URL, Secret: wh.Secret, Timeout: wh.Timeout.Duration, MaxQueue: wh.MaxQueue,
			MaxRetries: wh.MaxRetries, Backoff: wh.RetryBackoff.Duration, Workers: wh.Workers},
	})
	if p.XEP0357 {
		w.Router().HandleAccountIQ(push.NS, svc)
		w.Router().AddAccountFeature(push.NS)
	}
	log.Info("module", "name", "push", "xep0357", p.XEP0357, "webhook", wh.URL != "", "interval", p.Interval.Duration.String(),
		"include_body", p.IncludeBody)
	return svc, func(ho *rooms.HubOptions) { ho.OnPosted = svc.OnPosted }
}

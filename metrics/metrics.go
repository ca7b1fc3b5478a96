// Package metrics is what careline tells the people who run it: Prometheus counters, gauges
// and histograms on a private listener, and the readiness checks behind /readyz.
//
// No label ever carries a phone number, a name, an ID or free text: label values come only
// from the short fixed lists below, so a scrape reveals volumes and latencies, never who.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values. Callers pass these constants, never anything they read from a message.
const (
	In  = "in"
	Out = "out"

	ModeSMS    = "sms"    // a patient's SMS, or a text careline sends that is not staff content (codes, HELP)
	ModeSecure = "secure" // staff content by secure link
	ModePlain  = "plain"  // staff content as plain SMS
	ModePortal = "portal" // a patient's portal reply or upload

	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultRefused = "refused" // opted out, or refused by a rule before Twilio

	CodeSent   = "sent"
	CodeFailed = "failed" // a wrong code entered
	CodeLocked = "locked" // a patient locked out
	CodeCapped = "capped" // refused by a per-patient or per-login cap
)

// Backlog is the state of a durable queue: how many items wait and how old the oldest is.
type Backlog struct {
	Depth     int
	OldestAge time.Duration
}

// Metrics holds careline's collectors in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	Messages        *prometheus.CounterVec // direction, mode, result
	OutboxRetries   prometheus.Counter
	OutboxGiveUps   prometheus.Counter
	Codes           *prometheus.CounterVec // event
	WebhookDuration *prometheus.HistogramVec
	PortalDuration  *prometheus.HistogramVec
}

// New makes the collectors and registers them, with Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careline_messages_total",
			Help: "Messages careline handled, by direction (in, out), mode (sms, secure, plain, portal) and result (ok, failed, refused).",
		}, []string{"direction", "mode", "result"}),
		OutboxRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careline_outbox_retries_total",
			Help: "Texts whose send to Twilio failed temporarily and was scheduled again.",
		}),
		OutboxGiveUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "careline_outbox_give_ups_total",
			Help: "Texts given up on after network.twilio.give_up_after of temporary failures.",
		}),
		Codes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "careline_portal_codes_total",
			Help: "One-time codes: sent, failed (wrong code entered), locked (patient locked out), capped (refused by a cap).",
		}, []string{"event"}),
		WebhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "careline_webhook_duration_seconds",
			Help:    "Time to answer Twilio's webhooks, by kind (sms, status, voice) and HTTP status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}, []string{"kind", "code"}),
		PortalDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "careline_portal_request_duration_seconds",
			Help:    "Time to answer portal requests, by route and HTTP status class.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "code"}),
	}
	m.Registry.MustRegister(m.Messages, m.OutboxRetries, m.OutboxGiveUps, m.Codes, m.WebhookDuration, m.PortalDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchDB exports the database pool's statistics (open, idle, in use, waits).
func (m *Metrics) WatchDB(db *sql.DB) {
	m.Registry.MustRegister(collectors.NewDBStatsCollector(db, "careline"))
}

// WatchBacklog exports a durable queue's depth and oldest item's age as
// careline_<name>_depth and careline_<name>_oldest_age_seconds, read at each scrape.
func (m *Metrics) WatchBacklog(name, help string, read func(context.Context) (Backlog, error)) {
	get := func() Backlog {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b, err := read(ctx)
		if err != nil {
			return Backlog{Depth: -1, OldestAge: -1}
		}
		return b
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "careline_" + name + "_depth",
			Help: help + ": items waiting (-1: the database could not be read)."},
			func() float64 { return float64(get().Depth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "careline_" + name + "_oldest_age_seconds",
			Help: help + ": age of the oldest item waiting, 0 when none (-1: the database could not be read)."},
			func() float64 { return get().OldestAge.Seconds() }),
	)
}

// Handler serves the registry for Prometheus.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Message counts one message.
func (m *Metrics) Message(direction, mode, result string) {
	if m != nil {
		m.Messages.WithLabelValues(direction, mode, result).Inc()
	}
}

// OutboxRetry counts a text scheduled again after a temporary failure.
func (m *Metrics) OutboxRetry() {
	if m != nil {
		m.OutboxRetries.Inc()
	}
}

// OutboxGiveUp counts a text given up on after give_up_after.
func (m *Metrics) OutboxGiveUp() {
	if m != nil {
		m.OutboxGiveUps.Inc()
	}
}

// Code counts one code event.
func (m *Metrics) Code(event string) {
	if m != nil {
		m.Codes.WithLabelValues(event).Inc()
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// statusClass keeps the label set small: "2xx", "4xx"…
func statusClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	return strconv.Itoa(code/100) + "xx"
}

// TimeWebhook wraps a Twilio webhook handler of the given kind.
func (m *Metrics) TimeWebhook(kind string, h http.HandlerFunc) http.HandlerFunc {
	if m == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		m.WebhookDuration.WithLabelValues(kind, statusClass(rec.status)).Observe(time.Since(start).Seconds())
	}
}

// TimePortal wraps the portal; route names the request by its pattern, never its path (which
// holds link tokens and attachment IDs).
func (m *Metrics) TimePortal(h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		m.PortalDuration.WithLabelValues(portalRoute(r), statusClass(rec.status)).Observe(time.Since(start).Seconds())
	})
}

// portalRoutes are the portal's routes as metric labels; anything else is "other".
var portalRoutes = map[string]string{
	"/verify": "verify", "/code/send": "code_send", "/code/verify": "code_verify", "/thread": "thread",
	"/reply": "reply", "/upload": "upload", "/signout": "signout", "/static/portal.css": "static", "/": "home",
}

func portalRoute(r *http.Request) string {
	path := r.URL.Path
	switch {
	case len(path) > 3 && path[:3] == "/l/":
		return "link"
	case len(path) > 12 && path[:12] == "/attachment/":
		return "attachment"
	}
	if route, ok := portalRoutes[path]; ok {
		return route
	}
	return "other"
}

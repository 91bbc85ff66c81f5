// Package observability holds mpauth's operational signals: Prometheus
// metrics, OpenTelemetry tracing, request ids and JSON logs.
//
// Nothing here reads or writes secrets: label values come from the request's
// platform and app_id (bounded to the configured apps), operation names,
// error reasons and audit actions.
package observability

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mpauth/mpauth/internal/provider"
)

// unknownLabel replaces a platform or app_id that is not configured, so a
// client sending made-up values cannot grow the number of series.
const unknownLabel = "unknown"

// Metrics is mpauth's Prometheus registry and its metrics. It implements
// provider.Observer. Every method is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	// apps are the configured "platform/app_id" pairs and platforms are
	// their platforms: the only label values requests may produce.
	apps      map[string]bool
	platforms map[string]bool

	logins           *prometheus.CounterVec
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	upstreamCalls    *prometheus.CounterVec
	circuitOpen      *prometheus.GaugeVec
	tokensIssued     *prometheus.CounterVec
	refreshReuse     prometheus.Counter
	merges           *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
}

var _ provider.Observer = (*Metrics)(nil)

// App names a configured app: the label values logins may carry.
type App struct{ Platform, AppID string }

// NewMetrics returns a fresh registry (Go runtime and process collectors
// included) with mpauth's metrics. apps are the configured apps: a login
// for any other (platform, app_id) is counted under "unknown".
func NewMetrics(apps []App) *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		apps:      map[string]bool{},
		platforms: map[string]bool{},
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_logins_total",
			Help: "Logins by platform, app and result (\"ok\" or the error reason).",
		}, []string{"platform", "app_id", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_requests_total",
			Help: "API requests (HTTP and gRPC) by operation, status code and error reason (\"OK\" on success).",
		}, []string{"operation", "code", "reason"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mpauth_request_duration_seconds",
			Help:    "API request duration by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mpauth_upstream_duration_seconds",
			Help:    "Duration of calls to the platforms by platform, call and result (\"ok\" or the error kind and platform code).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 3, 5, 10},
		}, []string{"platform", "op", "result"}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_upstream_calls_total",
			Help: "Calls to the platforms by platform, call and result.",
		}, []string{"platform", "op", "result"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mpauth_circuit_open",
			Help: "1 while the circuit breaker of a platform is open (calls fail fast), else 0.",
		}, []string{"platform"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_tokens_issued_total",
			Help: "Tokens issued by kind (access or refresh).",
		}, []string{"kind"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mpauth_refresh_reuse_total",
			Help: "Rotated refresh tokens presented again (the session was revoked).",
		}),
		merges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_merges_total",
			Help: "User merges by who merged (system, admin or user).",
		}, []string{"actor_kind"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpauth_rate_limited_total",
			Help: "Requests refused by a rate limit or load shedding, by limit (ip, identity, overload, other).",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.logins, m.requests, m.requestDuration, m.upstreamDuration, m.upstreamCalls,
		m.circuitOpen, m.tokensIssued, m.refreshReuse, m.merges, m.rateLimited,
	)
	for _, a := range apps {
		m.apps[a.Platform+"/"+a.AppID] = true
		m.platforms[a.Platform] = true
	}
	// Series that exist from the start, so dashboards and alerts see zeros
	// rather than nothing.
	for p := range m.platforms {
		m.circuitOpen.WithLabelValues(p)
	}
	for _, k := range []string{"access", "refresh"} {
		m.tokensIssued.WithLabelValues(k)
	}
	for _, k := range []string{"system", "admin", "user"} {
		m.merges.WithLabelValues(k)
	}
	return m
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// PlatformCall implements provider.Observer.
func (m *Metrics) PlatformCall(platform, op, result string, d time.Duration) {
	platform = m.platform(platform)
	m.upstreamDuration.WithLabelValues(platform, op, result).Observe(d.Seconds())
	m.upstreamCalls.WithLabelValues(platform, op, result).Inc()
}

// BreakerState implements provider.Observer.
func (m *Metrics) BreakerState(platform string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.circuitOpen.WithLabelValues(m.platform(platform)).Set(v)
}

// Login counts one login of (platform, appID) with result "ok" or the
// error reason.
func (m *Metrics) Login(platform, appID, result string) {
	if !m.apps[platform+"/"+appID] {
		appID = unknownLabel
		platform = m.platform(platform)
	}
	m.logins.WithLabelValues(platform, appID, result).Inc()
}

// TokensIssued counts issued tokens of a kind ("access" or "refresh").
func (m *Metrics) TokensIssued(kind string, n int) {
	m.tokensIssued.WithLabelValues(kind).Add(float64(n))
}

// RefreshReuse counts one rotated refresh token presented again.
func (m *Metrics) RefreshReuse() { m.refreshReuse.Inc() }

// Merge counts one merge by an audit actor ("system", "admin:<key id>",
// "user:<user id>").
func (m *Metrics) Merge(actor string) { m.merges.WithLabelValues(actorKind(actor)).Inc() }

// RateLimited counts one request refused by a limit ("ip", "identity",
// "overload", ...).
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// request observes one API request.
func (m *Metrics) request(operation, code, reason string, d time.Duration) {
	m.requests.WithLabelValues(operation, code, reason).Inc()
	m.requestDuration.WithLabelValues(operation).Observe(d.Seconds())
}

// platform bounds a platform label to the configured ones.
func (m *Metrics) platform(p string) string {
	if m.platforms[p] {
		return p
	}
	return unknownLabel
}

// actorKind is the kind of an audit actor: "system", "admin", "user" or
// "other".
func actorKind(actor string) string {
	kind, _, _ := strings.Cut(actor, ":")
	switch kind {
	case "system", "admin", "user":
		return kind
	}
	return "other"
}

package main

import (
	"github.com/google/wire"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/observability"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/server"
)

// Metrics, tracing, health checks (config `observability`).

// observabilitySet provides the telemetry, the provider.Observer the
// platform resilience wrapper reports to, the audit repository that counts
// merges and refresh-token reuse, and the readiness check of /readyz.
var observabilitySet = wire.NewSet(
	newTelemetry, newObserver, newAuditRepo, newReadiness,
)

// newTelemetry returns the metrics (labelled by the configured apps) and the
// tracer provider; the cleanup flushes and stops the trace exporter.
func newTelemetry(bc *conf.Bootstrap) (*observability.Telemetry, func(), error) {
	apps := make([]observability.App, 0, len(bc.Apps))
	for _, a := range bc.Apps {
		apps = append(apps, observability.App{Platform: a.Platform, AppID: a.AppId})
	}
	return observability.New(bc.GetObservability(), apps, Version)
}

// newObserver is what the providers report platform calls and circuit
// breaker changes to (pass it in provider.Env.Observer).
func newObserver(tel *observability.Telemetry) provider.Observer { return tel.Metrics }

// newAuditRepo is the database's audit repository, counting merges and
// refresh-token reuse once their transaction commits.
func newAuditRepo(d *data.Data, tel *observability.Telemetry) biz.AuditRepo {
	return tel.Metrics.AuditRepo(data.NewAuditRepo(d), data.AfterCommit)
}

// newReadiness is the /readyz check: the database answers and is migrated.
func newReadiness(d *data.Data) server.Readiness { return d }

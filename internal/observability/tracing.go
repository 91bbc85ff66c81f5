package observability

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mpauth/mpauth/internal/conf"
)

// DefaultSampleRatio is the fraction of requests traced when
// observability.trace_sample_ratio is unset.
const DefaultSampleRatio = 0.1

// Telemetry is one server's metrics and tracer provider.
type Telemetry struct {
	Metrics *Metrics
	Tracer  trace.TracerProvider
}

// New checks the observability config and returns the telemetry of a
// server whose configured apps are apps, and a cleanup that flushes and
// stops the trace exporter.
//
// Every request gets a trace id (propagated from a W3C traceparent when the
// caller sent one) for logs and X-Request-Id. Spans are recorded and
// exported only when otlp_endpoint is set, for trace_sample_ratio of the
// requests (a caller's sampling decision is followed); unsampled requests
// cost an id and a non-recording span.
func New(c *conf.Observability, apps []App, version string) (*Telemetry, func(), error) {
	if err := conf.ValidateObservability(c); err != nil { // Load checked it; New may be called without
		return nil, nil, err
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "mpauth"),
			attribute.String("service.version", version),
		)),
	}
	if ep := c.GetOtlpEndpoint(); ep != "" {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(tracesURL(ep)))
		if err != nil {
			return nil, nil, fmt.Errorf("config observability.otlp_endpoint: %w", err)
		}
		ratio := c.GetTraceSampleRatio()
		if ratio == 0 {
			ratio = DefaultSampleRatio
		}
		opts = append(opts,
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
			sdktrace.WithBatcher(exp),
		)
	} else {
		// Nowhere to send spans: record none, but still give every request
		// a trace id (the request id of logs and X-Request-Id).
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}
	return &Telemetry{Metrics: NewMetrics(apps), Tracer: tp}, cleanup, nil
}

// tracesURL is the OTLP/HTTP traces URL of an endpoint: its path, or the
// standard /v1/traces when it has none.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

// Middleware is the server middleware of t: kratos's tracing (a span per
// operation, the trace context taken from the request's headers), then
// Metrics.Server. It goes first in the chain, so every log line, refusal
// and error of the request is in its trace. A nil Telemetry traces with the
// global provider and records no metrics.
func (t *Telemetry) Middleware() middleware.Middleware {
	var (
		topts []tracing.Option
		m     *Metrics
	)
	if t != nil {
		topts = append(topts, tracing.WithTracerProvider(t.Tracer))
		m = t.Metrics
	}
	return middleware.Chain(tracing.Server(topts...), m.Server())
}

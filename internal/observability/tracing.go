package observability

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	"github.com/go-kratos/kratos/v2/transport"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.4.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

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
	return middleware.Chain(serverTracing(tracing.NewTracer(trace.SpanKindServer, topts...)), m.Server())
}

// serverTracing is kratos's tracing.Server, except that it describes only
// the spans that are recorded: kratos builds every span's attributes (and
// sizes the request and reply) whether or not it is sampled, and most are
// not — none without otlp_endpoint, 1 in 10 by default with one. That was
// the largest single allocation of a login once the database's were gone.
func serverTracing(tracer *tracing.Tracer) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (reply any, err error) {
			tr, ok := transport.FromServerContext(ctx)
			if !ok {
				return next(ctx, req)
			}
			ctx, span := tracer.Start(ctx, tr.Operation(), tr.RequestHeader())
			if !span.IsRecording() {
				defer span.End()
				return next(ctx, req)
			}
			span.SetAttributes(spanAttributes(tr, req)...)
			defer func() { tracer.End(ctx, span, reply, err) }()
			return next(ctx, req)
		}
	}
}

// spanAttributes describes a server span as kratos does (OpenTelemetry's
// semantic conventions v1.4.0, kratos's own recv_msg.size).
func spanAttributes(tr transport.Transporter, req any) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.RPCSystemKey.String(tr.Kind().String())}
	if ht, ok := tr.(khttp.Transporter); ok {
		r := ht.Request()
		attrs = append(attrs,
			semconv.HTTPMethodKey.String(r.Method),
			semconv.HTTPRouteKey.String(ht.PathTemplate()),
			semconv.HTTPTargetKey.String(r.URL.Path))
		if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			attrs = append(attrs, semconv.NetPeerIPKey.String(host), semconv.NetPeerPortKey.String(port))
		}
	}
	if service, method, ok := strings.Cut(strings.TrimPrefix(tr.Operation(), "/"), "/"); ok {
		attrs = append(attrs, semconv.RPCServiceKey.String(service), semconv.RPCMethodKey.String(method))
	}
	if m, ok := req.(proto.Message); ok {
		attrs = append(attrs, attribute.Key("recv_msg.size").Int(proto.Size(m)))
	}
	return attrs
}

package observability

import (
	"context"
	"strconv"
	"time"

	"github.com/go-kratos/kratos/v2/errors"
	"github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/transport"
	"go.opentelemetry.io/otel/trace"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
)

// RequestIDHeader carries the request id (the trace id) in every API answer.
const RequestIDHeader = "X-Request-Id"

// Server is the middleware that observes every API operation: it echoes the
// request id (the trace id the tracing middleware before it started) in
// X-Request-Id and records the operation's metrics: requests, durations,
// logins, issued tokens and rate-limit refusals. Put it after the tracing
// middleware and before everything that may refuse a request, so it sees
// every outcome of a request that decoded (a body or query that does not
// fit the method is answered before any middleware runs, uncounted). A nil
// Metrics only sets the header.
func (m *Metrics) Server() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (reply any, err error) {
			start := time.Now()
			tr, ok := transport.FromServerContext(ctx)
			if ok {
				if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
					tr.ReplyHeader().Set(RequestIDHeader, sc.TraceID().String())
				}
			}
			reply, err = next(ctx, req)
			if m != nil && ok {
				m.observe(tr.Operation(), req, reply, err, time.Since(start))
			}
			return reply, err
		}
	}
}

func (m *Metrics) observe(op string, req, reply any, err error, d time.Duration) {
	code, reason := 200, "OK"
	if err != nil {
		se := errors.FromError(err)
		code, reason = int(se.Code), se.Reason
		if reason == "" {
			reason = "UNKNOWN"
		}
		switch reason {
		case v1.ErrorReason_RATE_LIMITED.String(), v1.ErrorReason_OVERLOADED.String():
			m.RateLimited(limitOf(se))
		}
	}
	m.request(op, strconv.Itoa(code), reason, d)
	if op == v1.AuthService_Login_FullMethodName {
		if lr, ok := req.(*v1.LoginRequest); ok {
			result := "ok"
			if err != nil {
				result = reason
			}
			m.Login(lr.GetPlatform(), lr.GetAppId(), result)
		}
	}
	if tr, ok := reply.(*v1.TokenReply); ok && err == nil {
		if tr.GetAccessToken() != "" {
			m.TokensIssued("access", 1)
		}
		if tr.GetRefreshToken() != "" {
			m.TokensIssued("refresh", 1)
		}
	}
}

// limitOf names the limit that refused a request: the error's "limit"
// metadata (biz.RateLimited sets it), "overload" for load shedding.
func limitOf(e *errors.Error) string {
	if l := e.GetMetadata()["limit"]; l != "" {
		return l
	}
	if e.Reason == v1.ErrorReason_OVERLOADED.String() {
		return "overload"
	}
	return "other"
}

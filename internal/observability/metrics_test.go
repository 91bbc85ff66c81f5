package observability_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/transport"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/observability"
)

var testApps = []observability.App{{Platform: "wechat", AppID: "wxapp1"}, {Platform: "douyin", AppID: "ttapp1"}}

// fakeTransport is a server transport of one operation.
type fakeTransport struct {
	op         string
	req, reply headerCarrier
}

type headerCarrier http.Header

func (h headerCarrier) Get(k string) string      { return http.Header(h).Get(k) }
func (h headerCarrier) Set(k, v string)          { http.Header(h).Set(k, v) }
func (h headerCarrier) Add(k, v string)          { http.Header(h).Add(k, v) }
func (h headerCarrier) Values(k string) []string { return http.Header(h).Values(k) }
func (h headerCarrier) Keys() []string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	return ks
}

func (t *fakeTransport) Kind() transport.Kind            { return transport.KindHTTP }
func (t *fakeTransport) Endpoint() string                { return "http://127.0.0.1:8000" }
func (t *fakeTransport) Operation() string               { return t.op }
func (t *fakeTransport) RequestHeader() transport.Header { return t.req }
func (t *fakeTransport) ReplyHeader() transport.Header   { return t.reply }

func newTransport(op string) *fakeTransport {
	return &fakeTransport{op: op, req: headerCarrier{}, reply: headerCarrier{}}
}

// serve runs one request of op through the Telemetry middleware with a
// handler answering reply, err.
func serve(t *testing.T, tel *observability.Telemetry, tr *fakeTransport, req, reply any, err error) {
	t.Helper()
	h := tel.Middleware()(func(context.Context, any) (any, error) { return reply, err })
	_, gotErr := h(transport.NewServerContext(context.Background(), tr), req)
	if !errors.Is(gotErr, err) && gotErr != err { //nolint:errorlint // the very error is passed through
		t.Fatalf("middleware changed the error: %v, want %v", gotErr, err)
	}
}

func newTelemetry(t *testing.T) *observability.Telemetry {
	t.Helper()
	tel, cleanup, err := observability.New(nil, testApps, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return tel
}

func login(platform, app string) *v1.LoginRequest {
	return &v1.LoginRequest{Platform: platform, AppId: app, Code: "secret-code"}
}

var tokens = &v1.TokenReply{AccessToken: "at", RefreshToken: "rt"}

func TestLoginsAreCountedByPlatformAppAndResult(t *testing.T) {
	loginOp := v1.AuthService_Login_FullMethodName
	tests := []struct {
		name                   string
		req                    any
		reply                  any
		err                    error
		platform, app, result  string
		requestCode, requestRe string
	}{
		{"ok", login("wechat", "wxapp1"), tokens, nil, "wechat", "wxapp1", "ok", "200", "OK"},
		{"invalid code", login("wechat", "wxapp1"), nil, v1.ErrorCodeInvalid("bad code"), "wechat", "wxapp1", "CODE_INVALID", "400", "CODE_INVALID"},
		{"unconfigured app of a known platform", login("douyin", "made-up"), nil, v1.ErrorUnknownApp("no"), "douyin", "unknown", "UNKNOWN_APP", "400", "UNKNOWN_APP"},
		{"unknown platform", login("myspace", "x"), nil, v1.ErrorUnknownApp("no"), "unknown", "unknown", "UNKNOWN_APP", "400", "UNKNOWN_APP"},
		{"a plain error", login("wechat", "wxapp1"), nil, errors.New("boom"), "wechat", "wxapp1", "UNKNOWN", "500", "UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			m := tel.Metrics
			serve(t, tel, newTransport(loginOp), tt.req, tt.reply, tt.err)
			reg := m.Registry()
			if n := testutil.CollectAndCount(reg, "mpauth_logins_total"); n != 1 {
				t.Fatalf("%d login series, want 1", n)
			}
			want := `
# HELP mpauth_logins_total Logins by platform, app and result ("ok" or the error reason).
# TYPE mpauth_logins_total counter
mpauth_logins_total{app_id="` + tt.app + `",platform="` + tt.platform + `",result="` + tt.result + `"} 1
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mpauth_logins_total"); err != nil {
				t.Error(err)
			}
			wantReq := `
# HELP mpauth_requests_total API requests (HTTP and gRPC) by operation, status code and error reason ("OK" on success).
# TYPE mpauth_requests_total counter
mpauth_requests_total{code="` + tt.requestCode + `",operation="` + loginOp + `",reason="` + tt.requestRe + `"} 1
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(wantReq), "mpauth_requests_total"); err != nil {
				t.Error(err)
			}
			issued := 0.0
			if tt.err == nil {
				issued = 1
			}
			for _, kind := range []string{"access", "refresh"} {
				if got := gauge(t, reg, "mpauth_tokens_issued_total", map[string]string{"kind": kind}); got != issued {
					t.Errorf("tokens issued %s = %v, want %v", kind, got, issued)
				}
			}
			if n := histogramCount(t, reg, "mpauth_request_duration_seconds", map[string]string{"operation": loginOp}); n != 1 {
				t.Errorf("request duration samples = %d, want 1", n)
			}
		})
	}
}

func TestRefreshCountsIssuedTokensButNoLogin(t *testing.T) {
	tel := newTelemetry(t)
	serve(t, tel, newTransport(v1.AuthService_Refresh_FullMethodName), &v1.RefreshRequest{RefreshToken: "rt"}, tokens, nil)
	serve(t, tel, newTransport(v1.AuthService_Refresh_FullMethodName), &v1.RefreshRequest{RefreshToken: "rt"}, nil, v1.ErrorRefreshTokenInvalid("no"))
	reg := tel.Metrics.Registry()
	if n := testutil.CollectAndCount(reg, "mpauth_logins_total"); n != 0 {
		t.Errorf("a refresh counted as a login (%d series)", n)
	}
	for _, kind := range []string{"access", "refresh"} {
		if got := gauge(t, reg, "mpauth_tokens_issued_total", map[string]string{"kind": kind}); got != 1 {
			t.Errorf("tokens issued %s = %v, want 1", kind, got)
		}
	}
}

func TestRateLimitRefusalsAreCountedByLimit(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		limit string
	}{
		{"per address", biz.RateLimited(biz.LimitIP, "too many logins from this address", time.Second), "ip"},
		{"per account", biz.RateLimited(biz.LimitIdentity, "too many logins for this account", time.Second), "identity"},
		{"named by the limiter", v1.ErrorRateLimited("slow down").WithMetadata(map[string]string{"limit": "refresh"}), "refresh"},
		{"load shedding", v1.ErrorOverloaded("busy"), "overload"},
		{"unnamed", v1.ErrorRateLimited("slow down"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			serve(t, tel, newTransport(v1.AuthService_Login_FullMethodName), login("wechat", "wxapp1"), nil, tt.err)
			reg := tel.Metrics.Registry()
			if got := gauge(t, reg, "mpauth_rate_limited_total", map[string]string{"limit": tt.limit}); got != 1 {
				t.Errorf("rate_limited{limit=%q} = %v, want 1", tt.limit, got)
			}
			if n := testutil.CollectAndCount(reg, "mpauth_rate_limited_total"); n != 1 {
				t.Errorf("%d rate-limit series, want 1", n)
			}
		})
	}
	t.Run("other errors are not refusals", func(t *testing.T) {
		tel := newTelemetry(t)
		serve(t, tel, newTransport(v1.AuthService_Login_FullMethodName), login("wechat", "wxapp1"), nil, v1.ErrorPlatformRateLimited("the platform"))
		if n := testutil.CollectAndCount(tel.Metrics.Registry(), "mpauth_rate_limited_total"); n != 0 {
			t.Errorf("PLATFORM_RATE_LIMITED counted as our rate limit")
		}
	})
}

func TestEveryAnswerCarriesTheTraceIDAsRequestID(t *testing.T) {
	tel := newTelemetry(t)
	tr := newTransport(v1.AccountService_GetMe_FullMethodName)
	serve(t, tel, tr, nil, nil, v1.ErrorUnauthenticated("no"))
	id := tr.reply.Get(observability.RequestIDHeader)
	if len(id) != 32 || strings.Trim(id, "0") == "" {
		t.Fatalf("X-Request-Id = %q, want a trace id", id)
	}

	// A caller's W3C trace context is continued: same trace id.
	const parent = "4bf92f3577b34da6a3ce929d0e0e4736"
	tr = newTransport(v1.AccountService_GetMe_FullMethodName)
	tr.req.Set("traceparent", "00-"+parent+"-00f067aa0ba902b7-01")
	serve(t, tel, tr, nil, nil, nil)
	if got := tr.reply.Get(observability.RequestIDHeader); got != parent {
		t.Fatalf("X-Request-Id = %q, want the caller's trace id %s", got, parent)
	}

	// Two requests, two ids.
	tr2 := newTransport(v1.AccountService_GetMe_FullMethodName)
	serve(t, tel, tr2, nil, nil, nil)
	if tr2.reply.Get(observability.RequestIDHeader) == id {
		t.Fatal("two requests got one request id")
	}
}

func TestPlatformCallsAndBreakerState(t *testing.T) {
	m := observability.NewMetrics(testApps)
	m.PlatformCall("wechat", "exchange", "ok", 120*time.Millisecond)
	m.PlatformCall("wechat", "exchange", "ok", 80*time.Millisecond)
	m.PlatformCall("wechat", "exchange", "transient:-1", 3*time.Second)
	m.PlatformCall("nowhere", "exchange", "ok", time.Millisecond)
	reg := m.Registry()
	for _, c := range []struct {
		labels map[string]string
		want   uint64
	}{
		{map[string]string{"platform": "wechat", "op": "exchange", "result": "ok"}, 2},
		{map[string]string{"platform": "wechat", "op": "exchange", "result": "transient:-1"}, 1},
		{map[string]string{"platform": "unknown", "op": "exchange", "result": "ok"}, 1},
	} {
		if got := histogramCount(t, reg, "mpauth_upstream_duration_seconds", c.labels); got != c.want {
			t.Errorf("upstream duration %v: %d samples, want %d", c.labels, got, c.want)
		}
		if got := gauge(t, reg, "mpauth_upstream_calls_total", c.labels); got != float64(c.want) {
			t.Errorf("upstream calls %v = %v, want %d", c.labels, got, c.want)
		}
	}

	if got := gauge(t, reg, "mpauth_circuit_open", map[string]string{"platform": "douyin"}); got != 0 {
		t.Errorf("a configured platform's breaker starts at %v, want 0", got)
	}
	m.BreakerState("douyin", true)
	if got := gauge(t, reg, "mpauth_circuit_open", map[string]string{"platform": "douyin"}); got != 1 {
		t.Errorf("open breaker = %v, want 1", got)
	}
	m.BreakerState("douyin", false)
	if got := gauge(t, reg, "mpauth_circuit_open", map[string]string{"platform": "douyin"}); got != 0 {
		t.Errorf("closed breaker = %v, want 0", got)
	}
}

// fakeAudit records events, failing when err is set.
type fakeAudit struct {
	biz.AuditRepo
	events []biz.AuditEvent
	err    error
}

func (f *fakeAudit) Record(_ context.Context, e biz.AuditEvent) error {
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, e)
	return nil
}

func TestAuditRepoCountsCommittedMergesAndReuse(t *testing.T) {
	m := observability.NewMetrics(testApps)
	inner := &fakeAudit{}
	// The "transaction": callbacks held until commit.
	var pending []func()
	repo := m.AuditRepo(inner, func(_ context.Context, fn func()) { pending = append(pending, fn) })
	ctx := context.Background()
	for _, e := range []biz.AuditEvent{
		{Actor: "system", Action: biz.AuditUserMerge},
		{Actor: "admin:ops", Action: biz.AuditUserMerge},
		{Actor: "admin:ops", Action: biz.AuditUserMerge},
		{Actor: "user:u1", Action: biz.AuditUserMerge},
		{Actor: "system", Action: biz.AuditRefreshTokenReuse},
		{Actor: "admin:ops", Action: biz.AuditIdentityLink},
	} {
		if err := repo.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if len(inner.events) != 6 {
		t.Fatalf("the wrapped repository got %d events, want 6", len(inner.events))
	}
	reg := m.Registry()
	if got := gauge(t, reg, "mpauth_merges_total", map[string]string{"actor_kind": "admin"}); got != 0 {
		t.Fatalf("merges counted before the commit: %v", got)
	}
	for _, fn := range pending {
		fn()
	}
	for kind, want := range map[string]float64{"system": 1, "admin": 2, "user": 1} {
		if got := gauge(t, reg, "mpauth_merges_total", map[string]string{"actor_kind": kind}); got != want {
			t.Errorf("merges{actor_kind=%s} = %v, want %v", kind, got, want)
		}
	}
	if got := gauge(t, reg, "mpauth_refresh_reuse_total", nil); got != 1 {
		t.Errorf("refresh reuse = %v, want 1", got)
	}

	// A failed write counts nothing.
	inner.err = errors.New("db down")
	pending = nil
	if err := repo.Record(ctx, biz.AuditEvent{Actor: "system", Action: biz.AuditUserMerge}); err == nil {
		t.Fatal("the wrapped repository's error was swallowed")
	}
	if len(pending) != 0 {
		t.Fatal("a failed audit write was scheduled for counting")
	}
}

// gauge returns the value of the counter or gauge series of name with
// exactly labels (0 when absent).
func gauge(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string, labels map[string]string) float64 {
	t.Helper()
	for _, m := range family(t, reg, name) {
		if matches(m.GetLabel(), labels) {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func histogramCount(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string, labels map[string]string) uint64 {
	t.Helper()
	for _, m := range family(t, reg, name) {
		if matches(m.GetLabel(), labels) {
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func family(t *testing.T, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func matches(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

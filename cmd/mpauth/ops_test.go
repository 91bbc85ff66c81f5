package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	stdgrpc "google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/sandbox"
)

// get fetches path from the instance's HTTP server.
func (in *instance) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(in.httpURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// metric returns the value of one sample line of /metrics ("" if absent).
func metric(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestHealthAndReadiness(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			in := start(t, testConfig(t, driver))
			for _, path := range []string{"/healthz", "/readyz"} {
				status, body := in.get(t, path)
				if status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
					t.Errorf("%s: %d %s, want 200 {\"status\":\"ok\"}", path, status, body)
				}
			}
		})
	}
}

// TestReadyzFailsOnAnUnmigratedDatabase: an instance started on a database
// nobody migrated serves (liveness) but is not ready.
func TestReadyzFailsOnAnUnmigratedDatabase(t *testing.T) {
	bc := testConfig(t, "sqlite")
	bc.Data.Database.MigrateOnStart = false
	in := start(t, bc)
	if status, _ := in.get(t, "/healthz"); status != 200 {
		t.Fatalf("healthz = %d", status)
	}
	status, body := in.get(t, "/readyz")
	if status != 503 || !strings.Contains(body, `"reason":"database schema not migrated (run mpauth migrate)"`) {
		t.Fatalf("readyz = %d %s, want 503 schema not migrated", status, body)
	}
	if strings.Contains(body, bc.Data.Database.Source) {
		t.Fatalf("readyz quotes the database source: %s", body)
	}
}

func TestMetricsCountLoginsTokensAndMerges(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	tok := in.login(t, appA, "alice")
	status, _, body := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": "not-a-code-from-the-sandbox"})
	assertError(t, status, body, 400, "CODE_INVALID")
	// A made-up app is counted, but not under its made-up name.
	status, _, body = in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": "wxmadeup000000001", "code": "x"})
	assertError(t, status, body, 400, "UNKNOWN_APP")
	if status, _, body := in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)}); status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	// An operator merges two users.
	bob := in.login(t, appC, "bob")
	carol := in.login(t, appB, "carol")
	status, _, body = in.call(t, "POST", "/v1/admin/users/"+bob["user_id"].(string)+"/merge", adminKey,
		map[string]any{"source_user_id": carol["user_id"], "reason": "same person (ticket 42)"})
	if status != 200 {
		t.Fatalf("merge: %d %v", status, body)
	}

	status, text := in.get(t, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	for series, want := range map[string]string{
		`mpauth_logins_total{app_id="` + appA + `",platform="wechat",result="ok"}`:                         "1",
		`mpauth_logins_total{app_id="` + appA + `",platform="wechat",result="CODE_INVALID"}`:               "1",
		`mpauth_logins_total{app_id="` + appC + `",platform="wechat",result="ok"}`:                         "1",
		`mpauth_logins_total{app_id="` + appB + `",platform="wechat",result="ok"}`:                         "1",
		`mpauth_logins_total{app_id="unknown",platform="wechat",result="UNKNOWN_APP"}`:                     "1",
		`mpauth_tokens_issued_total{kind="access"}`:                                                        "4",
		`mpauth_tokens_issued_total{kind="refresh"}`:                                                       "4",
		`mpauth_merges_total{actor_kind="admin"}`:                                                          "1",
		`mpauth_merges_total{actor_kind="system"}`:                                                         "0",
		`mpauth_refresh_reuse_total`:                                                                       "0",
		`mpauth_requests_total{code="400",operation="/mpauth.v1.AuthService/Login",reason="CODE_INVALID"}`: "1",
		`mpauth_requests_total{code="200",operation="/mpauth.v1.AuthService/Refresh",reason="OK"}`:         "1",
		`mpauth_requests_total{code="200",operation="/mpauth.v1.AdminService/MergeUsers",reason="OK"}`:     "1",
		`mpauth_request_duration_seconds_count{operation="/mpauth.v1.AuthService/Login"}`:                  "5",
	} {
		if got := metric(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if strings.Contains(text, "wxmadeup") {
		t.Error("a client's made-up app_id became a label value")
	}
	// The operational endpoints are not API requests.
	if strings.Contains(text, "healthz") || strings.Contains(text, `operation="/metrics"`) {
		t.Error("operational endpoints are counted as API requests")
	}
}

// logLines parses every log line as JSON.
func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestLogsAreJSONAndCarryTheRequestID(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	code := in.mintCode(t, appA, "dave")

	// A caller's W3C trace context is continued; without one, a fresh id.
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	send := func(traceparent string, body any) (int, string) {
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", in.httpURL+"/v1/auth/login", bytes.NewReader(js))
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Request-Id")
	}
	status, id1 := send("", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	if status != 200 || len(id1) != 32 {
		t.Fatalf("login: %d, X-Request-Id %q", status, id1)
	}
	status, id2 := send("00-"+callerTrace+"-00f067aa0ba902b7-01", map[string]string{"platform": "wechat", "app_id": appA, "code": "bad-code"})
	if status != 400 || id2 != callerTrace {
		t.Fatalf("login with traceparent: %d, X-Request-Id %q, want the caller's trace id", status, id2)
	}

	// Over gRPC the id is in the reply header metadata.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint(in.grpcAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var md metadata.MD
	_, err = v1.NewAuthServiceClient(conn).Refresh(ctx, &v1.RefreshRequest{RefreshToken: "nope"}, stdgrpc.Header(&md))
	if !v1.IsRefreshTokenInvalid(err) {
		t.Fatalf("gRPC refresh: %v", err)
	}
	grpcID := md.Get("x-request-id")
	if len(grpcID) != 1 || len(grpcID[0]) != 32 {
		t.Fatalf("gRPC reply header x-request-id = %v", grpcID)
	}

	lines := logLines(t, in.logs.String())
	byTrace := map[string]map[string]any{}
	for _, l := range lines {
		if l["operation"] != nil {
			if tid, _ := l["trace_id"].(string); tid != "" {
				byTrace[tid] = l
			} else {
				t.Errorf("a request log line has no trace_id: %v", l)
			}
			if sid, _ := l["span_id"].(string); len(sid) != 16 {
				t.Errorf("a request log line has no span_id: %v", l)
			}
		}
		for _, k := range []string{"level", "ts", "service"} {
			if l[k] == nil {
				t.Errorf("log line without %s: %v", k, l)
			}
		}
	}
	for id, want := range map[string]string{id1: "", id2: "CODE_INVALID", grpcID[0]: "REFRESH_TOKEN_INVALID"} {
		l := byTrace[id]
		if l == nil {
			t.Errorf("no request log line with trace_id %s", id)
			continue
		}
		if l["reason"] != want {
			t.Errorf("log line of %s: reason %v, want %q", id, l["reason"], want)
		}
	}
}

// startApp runs mpauth with bc like start, and also returns the app and
// a channel receiving what its Run returns.
func startApp(t *testing.T, bc *conf.Bootstrap) (*instance, *kratos.App, <-chan error) {
	t.Helper()
	logs := &syncBuffer{}
	app, cleanup, err := wireApp(bc, newLogger(bc, logs))
	if err != nil {
		t.Fatalf("wireApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run() }()
	t.Cleanup(func() {
		_ = app.Stop()
		cleanup()
	})
	in := &instance{logs: logs}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && in.httpURL == "" {
		for _, e := range app.Endpoint() {
			if u, err := url.Parse(e); err == nil && u.Scheme == "http" {
				in.httpURL = "http://" + u.Host
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if in.httpURL == "" {
		t.Fatal("mpauth did not start")
	}
	waitReady(t, in.httpURL+"/readyz")
	return in, app, done
}

// gate is a WeChat fake (a standalone sandbox) that holds every code
// exchange until released.
type gate struct {
	sb       http.Handler
	arrived  chan struct{}
	release  chan struct{}
	arriveMu sync.Once
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/sns/jscode2session" {
		g.arriveMu.Do(func() { close(g.arrived) })
		<-g.release
	}
	g.sb.ServeHTTP(w, r)
}

// TestShutdownFinishesInFlightRequests stops the server while a login is
// waiting on the platform: the server stops accepting connections at
// once, but the login completes and only then does the server exit.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	g := &gate{
		sb:      sandbox.New([]provider.App{{Platform: "wechat", AppID: appA, Secret: "secret-a", UnionScope: "scope-1"}}),
		arrived: make(chan struct{}),
		release: make(chan struct{}),
	}
	platform := httptest.NewServer(g)
	defer platform.Close()
	defer func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	}()
	bc := testConfig(t, "sqlite")
	bc.Sandbox.Enabled = false
	bc.Apps = []*conf.App{{Platform: "wechat", AppId: appA, Secret: "secret-a", UnionScope: "scope-1", Endpoint: platform.URL, Timeout: durationpb.New(30 * time.Second)}}
	in, app, done := startApp(t, bc)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := sandbox.MintCode(ctx, platform.URL, "wechat", appA, "erin")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		body   map[string]any
		err    error
	}
	loginDone := make(chan result, 1)
	go func() {
		js, _ := json.Marshal(map[string]string{"platform": "wechat", "app_id": appA, "code": code})
		resp, err := http.Post(in.httpURL+"/v1/auth/login", "application/json", bytes.NewReader(js))
		if err != nil {
			loginDone <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		loginDone <- result{status: resp.StatusCode, body: body, err: err}
	}()
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the login never reached the platform")
	}

	go func() { _ = app.Stop() }()
	// The listener closes: new connections are refused.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := fresh.Get(in.httpURL + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after Stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the server exited (%v) with a request in flight", err)
	case r := <-loginDone:
		t.Fatalf("the in-flight login ended before the platform answered: %+v", r)
	default:
	}

	close(g.release)
	select {
	case r := <-loginDone:
		if r.err != nil || r.status != 200 || r.body["access_token"] == nil {
			t.Fatalf("the in-flight login: %d %v %v, want 200 with tokens", r.status, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight login never finished")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not exit after its last request")
	}
}

func TestMetricsCountRateLimitRefusals(t *testing.T) {
	bc := testConfig(t, "sqlite")
	bc.Limits = &conf.Limits{LoginPerIpPerMinute: 1}
	in := start(t, bc)
	in.login(t, appA, "frank")
	status, _, body := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": in.mintCode(t, appA, "frank")})
	assertError(t, status, body, 429, "RATE_LIMITED")
	// The ops endpoints are not limited, whatever the address sends.
	for i := 0; i < 5; i++ {
		if status, _ := in.get(t, "/readyz"); status != 200 {
			t.Fatalf("readyz after the limit: %d", status)
		}
	}
	_, text := in.get(t, "/metrics")
	for series, want := range map[string]string{
		`mpauth_rate_limited_total{limit="ip"}`:                                              "1",
		`mpauth_logins_total{app_id="` + appA + `",platform="wechat",result="RATE_LIMITED"}`: "1",
	} {
		if got := metric(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	stdhttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/transport/http"

	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/observability"
)

// opsServer serves the operational endpoints of tel and ready.
func opsServer(t *testing.T, tel *observability.Telemetry, ready Readiness, logger log.Logger) *httptest.Server {
	t.Helper()
	srv := http.NewServer()
	registerOps(srv, tel, ready, logger)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, method, url string) (int, stdhttp.Header, map[string]string) {
	t.Helper()
	req, _ := stdhttp.NewRequest(method, url, nil)
	resp, err := stdhttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if method != stdhttp.MethodHead && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: not JSON: %q", url, raw)
		}
	}
	return resp.StatusCode, resp.Header, body
}

func TestReadyzFollowsTheDatabase(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			c := dbtest.Config(t, driver)
			d, err := data.Open(c, log.DefaultLogger, data.WithSecretBox(dbtest.Box(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var logs bytes.Buffer
			ts := opsServer(t, nil, d, log.NewStdLogger(&logs))

			status, hdr, body := get(t, "GET", ts.URL+"/readyz")
			if status != 503 || body["status"] != "unavailable" || body["reason"] != data.ErrSchemaNotMigrated.Error() {
				t.Fatalf("unmigrated: %d %v, want 503 schema not migrated", status, body)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("a probe answer may be cached: %q", hdr.Get("Cache-Control"))
			}
			if err := d.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if status, _, body := get(t, "GET", ts.URL+"/readyz"); status != 200 || body["status"] != "ok" {
				t.Fatalf("migrated: %d %v, want 200 ok", status, body)
			}
			if !strings.Contains(logs.String(), "ready again") {
				t.Errorf("becoming ready again is not logged:\n%s", logs.String())
			}

			_ = d.Close()
			status, _, body = get(t, "GET", ts.URL+"/readyz")
			if status != 503 || body["reason"] != data.ErrDatabaseUnreachable.Error() {
				t.Fatalf("closed database: %d %v, want 503 database unreachable", status, body)
			}
			// The answer names no driver detail (DSN, host, path).
			for _, secretish := range []string{c.GetDatabase().GetSource(), "sql:", "closed", "127.0.0.1"} {
				if strings.Contains(body["reason"], secretish) {
					t.Errorf("the reason %q quotes %q", body["reason"], secretish)
				}
			}
			// Probes every few seconds: one warning per outage, not per probe.
			get(t, "GET", ts.URL+"/readyz")
			if n := strings.Count(logs.String(), "not ready"); n != 2 {
				t.Errorf("%d 'not ready' log lines for two outages, want 2:\n%s", n, logs.String())
			}
			// /healthz is liveness: the process serves, whatever the database.
			if status, _, body := get(t, "GET", ts.URL+"/healthz"); status != 200 || body["status"] != "ok" {
				t.Fatalf("healthz with the database down: %d %v, want 200", status, body)
			}
		})
	}
}

// slowReadiness never answers until its context ends.
type slowReadiness struct{}

func (slowReadiness) Ready(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

type failing struct{ err error }

func (f failing) Ready(context.Context) error { return f.err }

func TestReadyzAnswersWithoutDetails(t *testing.T) {
	tests := []struct {
		name   string
		ready  Readiness
		reason string
	}{
		{"hanging database", slowReadiness{}, data.ErrDatabaseUnreachable.Error()},
		{"unexpected error", failing{errors.New("dial tcp 10.0.0.7:3306: user mpauth password hunter2")}, "not ready"},
		{"no check", nil, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := opsServer(t, nil, tt.ready, log.NewStdLogger(io.Discard))
			status, _, body := get(t, "GET", ts.URL+"/readyz")
			if status != 503 || body["reason"] != tt.reason {
				t.Fatalf("%d %v, want 503 %q", status, body, tt.reason)
			}
		})
	}
}

func TestOpsEndpoints(t *testing.T) {
	tel, cleanup, err := observability.New(nil, []observability.App{{Platform: "wechat", AppID: "wx1"}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	tel.Metrics.Login("wechat", "wx1", "ok")
	ts := opsServer(t, tel, failing{}, log.NewStdLogger(io.Discard))

	resp, err := stdhttp.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `mpauth_logins_total{app_id="wx1",platform="wechat",result="ok"} 1`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, raw)
	}
	if !strings.Contains(string(raw), "go_goroutines") {
		t.Error("/metrics lacks the Go runtime metrics")
	}

	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"POST", "/healthz", 405},
		{"DELETE", "/readyz", 405},
		{"POST", "/metrics", 405},
	}
	for _, tt := range tests {
		if status, _, _ := get(t, tt.method, ts.URL+tt.path); status != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, status, tt.status)
		}
	}
}

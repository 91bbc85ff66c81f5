package observability_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	khttp "github.com/go-kratos/kratos/v2/transport/http"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/observability"
)

// collector is a fake OTLP/HTTP receiver recording the paths posted to.
type collector struct {
	mu     sync.Mutex
	paths  []string
	bodies [][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) received() ([]string, [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...), append([][]byte(nil), c.bodies...)
}

func TestSpansAreExportedOnlyWithAnEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(url string) string
		ratio    float64
		traced   bool // a client's sampled trace context is sent
		want     bool
	}{
		{"endpoint, everything sampled", func(u string) string { return u }, 1, false, true},
		{"endpoint with its own path", func(u string) string { return u + "/custom/traces" }, 1, false, true},
		{"endpoint, caller sampled, ratio tiny", func(u string) string { return u }, 1e-12, true, true},
		{"no endpoint", func(string) string { return "" }, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := &collector{}
			srv := httptest.NewServer(col)
			defer srv.Close()
			c := &conf.Observability{OtlpEndpoint: tt.endpoint(srv.URL), TraceSampleRatio: tt.ratio}
			tel, cleanup, err := observability.New(c, testApps, "test")
			if err != nil {
				t.Fatal(err)
			}
			tr := newTransport(v1.AuthService_Login_FullMethodName)
			if tt.traced {
				tr.req.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			}
			serve(t, tel, tr, login("wechat", "wxapp1"), nil, v1.ErrorCodeInvalid("bad code"))
			cleanup() // flushes the batch
			paths, bodies := col.received()
			if !tt.want {
				if len(paths) != 0 {
					t.Fatalf("spans were exported without an endpoint: %v", paths)
				}
				return
			}
			wantPath := "/v1/traces"
			if strings.HasSuffix(c.OtlpEndpoint, "/custom/traces") {
				wantPath = "/custom/traces"
			}
			if len(paths) != 1 || paths[0] != wantPath {
				t.Fatalf("exports to %v, want one to %s", paths, wantPath)
			}
			if !strings.Contains(string(bodies[0]), v1.AuthService_Login_FullMethodName) {
				t.Errorf("the exported span does not name the operation")
			}
			// A recorded span is described (only those are).
			for _, attr := range []string{"rpc.system", "rpc.service", "rpc.method", "recv_msg.size", "rpc.status_code"} {
				if !strings.Contains(string(bodies[0]), attr) {
					t.Errorf("the exported span has no %s", attr)
				}
			}
			if strings.Contains(string(bodies[0]), "secret-code") {
				t.Errorf("the login code reached the exported span")
			}
		})
	}
}

func TestUnsampledRequestsExportNothing(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	// A caller that decided not to sample: the parent's decision holds.
	tel, cleanup, err := observability.New(&conf.Observability{OtlpEndpoint: srv.URL, TraceSampleRatio: 1}, testApps, "test")
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(v1.AuthService_Login_FullMethodName)
	tr.req.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	serve(t, tel, tr, login("wechat", "wxapp1"), tokens, nil)
	cleanup()
	if paths, _ := col.received(); len(paths) != 0 {
		t.Fatalf("an unsampled request was exported: %v", paths)
	}
	if got := tr.reply.Get(observability.RequestIDHeader); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("an unsampled request has request id %q, want the trace id", got)
	}
}

func TestObservabilityConfigIsChecked(t *testing.T) {
	tests := []struct {
		name  string
		c     *conf.Observability
		field string // "" means valid
	}{
		{"unset", nil, ""},
		{"json", &conf.Observability{LogFormat: "json"}, ""},
		{"text", &conf.Observability{LogFormat: "text", TraceSampleRatio: 1, OtlpEndpoint: "https://otel.example:4318"}, ""},
		{"unknown log format", &conf.Observability{LogFormat: "xml"}, "observability.log_format"},
		{"ratio above 1", &conf.Observability{TraceSampleRatio: 1.5}, "observability.trace_sample_ratio"},
		{"negative ratio", &conf.Observability{TraceSampleRatio: -0.1}, "observability.trace_sample_ratio"},
		{"endpoint without scheme", &conf.Observability{OtlpEndpoint: "otel:4318"}, "observability.otlp_endpoint"},
		{"grpc endpoint", &conf.Observability{OtlpEndpoint: "grpc://otel:4317"}, "observability.otlp_endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := conf.ValidateObservability(tt.c)
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
			if tt.field != "" {
				if _, _, err := observability.New(tt.c, nil, "test"); err == nil {
					t.Fatal("New accepted an invalid config")
				}
			}
		})
	}
}

// A sampled HTTP request's span says which route, method and peer it was,
// as kratos's own tracing middleware would.
func TestSampledHTTPSpansDescribeTheRequest(t *testing.T) {
	col := &collector{}
	otlp := httptest.NewServer(col)
	defer otlp.Close()
	tel, cleanup, err := observability.New(&conf.Observability{OtlpEndpoint: otlp.URL, TraceSampleRatio: 1}, testApps, "test")
	if err != nil {
		t.Fatal(err)
	}
	api := khttp.NewServer(khttp.Middleware(tel.Middleware()))
	api.Route("/").POST("/v1/auth/login", func(ctx khttp.Context) error {
		khttp.SetOperation(ctx, v1.AuthService_Login_FullMethodName)
		h := ctx.Middleware(func(context.Context, any) (any, error) { return &v1.TokenReply{}, nil })
		out, err := h(ctx, login("wechat", "wxapp1"))
		if err != nil {
			return err
		}
		return ctx.Result(200, out)
	})
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/auth/login", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cleanup()
	_, bodies := col.received()
	if len(bodies) != 1 {
		t.Fatalf("%d exports, want 1", len(bodies))
	}
	for _, want := range []string{"http.method", "POST", "http.route", "/v1/auth/login", "net.peer.ip", "127.0.0.1", "rpc.method", "Login"} {
		if !strings.Contains(string(bodies[0]), want) {
			t.Errorf("the exported span does not hold %q", want)
		}
	}
}

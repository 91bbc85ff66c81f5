package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware"
	khttp "github.com/go-kratos/kratos/v2/transport/http"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/ratelimit"
)

type trailKey struct{}

// trailing is a middleware that appends name to the context's trail and
// counts how often it wraps a handler and how often it runs.
type trailing struct {
	name        string
	wraps, runs atomic.Int32
}

func (m *trailing) middleware(next middleware.Handler) middleware.Handler {
	m.wraps.Add(1)
	return func(ctx context.Context, req any) (any, error) {
		m.runs.Add(1)
		trail, _ := ctx.Value(trailKey{}).(string)
		return next(context.WithValue(ctx, trailKey{}, trail+m.name), req)
	}
}

// echoLogin answers Login with the trail the middleware left and the code it
// was sent, as user_id and access_token.
type echoLogin struct {
	v1.UnimplementedAuthServiceServer
}

func (echoLogin) Login(ctx context.Context, in *v1.LoginRequest) (*v1.TokenReply, error) {
	trail, _ := ctx.Value(trailKey{}).(string)
	return &v1.TokenReply{UserId: trail, AccessToken: in.GetCode()}, nil
}

// A route runs the middleware chain in order, with the request bound, and
// builds the chain when it is registered, not on every request.
func TestRoutesRunTheMiddlewareChainBuiltOnce(t *testing.T) {
	first, second := &trailing{name: "a"}, &trailing{name: "b"}
	srv := khttp.NewServer()
	if err := RegisterHTTP(srv, &v1.AuthService_ServiceDesc, echoLogin{}, first.middleware, second.middleware); err != nil {
		t.Fatal(err)
	}
	wrapsAtRegistration := first.wraps.Load()
	if wrapsAtRegistration == 0 || second.wraps.Load() != wrapsAtRegistration {
		t.Fatalf("wraps at registration: %d and %d; want one per route for each middleware", wrapsAtRegistration, second.wraps.Load())
	}
	api := httptest.NewServer(srv)
	defer api.Close()

	const calls = 3
	for i := 0; i < calls; i++ {
		code := fmt.Sprintf("c%d", i)
		resp, err := api.Client().Post(api.URL+"/v1/auth/login", "application/json",
			strings.NewReader(`{"platform":"wechat","app_id":"wx1","code":"`+code+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			UserID      string `json:"user_id"`
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %v", i, resp.StatusCode, err)
		}
		if out.UserID != "ab" || out.AccessToken != code {
			t.Fatalf("call %d: trail %q, code %q; want the chain in order (ab) and the request's code", i, out.UserID, out.AccessToken)
		}
	}
	if first.runs.Load() != calls || second.runs.Load() != calls {
		t.Fatalf("runs: %d and %d; want %d each", first.runs.Load(), second.runs.Load(), calls)
	}
	if first.wraps.Load() != wrapsAtRegistration || second.wraps.Load() != wrapsAtRegistration {
		t.Fatalf("wraps after %d calls: %d and %d; want %d (none per request)", calls, first.wraps.Load(), second.wraps.Load(), wrapsAtRegistration)
	}
}

// BenchmarkLoginRoute serves POST /v1/auth/login through the server's
// middleware chain (without telemetry or a database, with and without the
// per-address limit) to count what the route itself costs per request.
func BenchmarkLoginRoute(b *testing.B) {
	logger := log.NewStdLogger(io.Discard)
	for _, bc := range []struct {
		name string
		prot *Protection
	}{
		{"no limits", nil},
		{"per-address limit", &Protection{LoginPerIP: ratelimit.New(ratelimit.NewMemory(1000), "ip", 1<<30, time.Minute, logger)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := khttp.NewServer()
			if err := RegisterHTTP(srv, &v1.AuthService_ServiceDesc, echoLogin{}, middlewares(nil, nil, bc.prot, nil, logger)...); err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"platform":"wechat","app_id":"wx1","code":"c0"}`)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/auth/login", bytes.NewReader(body)))
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

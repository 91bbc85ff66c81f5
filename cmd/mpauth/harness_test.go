package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/sandbox"
)

// Demo apps of the test config: two WeChat apps sharing a union scope.
const (
	appA = "wxtest00000000001"
	appB = "wxtest00000000002"
	// appC has no union scope: its users are only joined by hand.
	appC = "wxtest00000000003"
	// Apps of the other platforms.
	appDouyin      = "tttest0000000001"
	appDouyinGuest = "tttest0000000002"
	appKuaishou    = "ks000000000000001"
	appAlipay      = "2021000000000001"
	appBaidu       = "bdtestappkey0000000001"
)

// API keys of the test config.
const (
	backendKey = "test-backend-key-0123456789abcdef0123456789"
	adminKey   = "test-admin-key-0123456789abcdef0123456789ab"
)

// instance is one running mpauth (HTTP, gRPC and the sandbox on loopback
// ports picked by the OS).
type instance struct {
	httpURL  string
	grpcAddr string
	sandbox  string
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is the embedded-default shape on ephemeral ports and a fresh
// database of the given driver.
func testConfig(t *testing.T, driver string) *conf.Bootstrap {
	t.Helper()
	d := dbtest.Config(t, driver)
	d.Database.MigrateOnStart = true
	return &conf.Bootstrap{
		Server: &conf.Server{
			Http: &conf.Server_HTTP{Addr: "127.0.0.1:0", Timeout: durationpb.New(10 * time.Second)},
			Grpc: &conf.Server_GRPC{Addr: "127.0.0.1:0", Timeout: durationpb.New(10 * time.Second)},
		},
		Data: d,
		Auth: &conf.Auth{
			Issuer: "https://auth.test", Audience: "test-backend",
			AccessTokenTtl: durationpb.New(15 * time.Minute), RefreshTokenTtl: durationpb.New(24 * time.Hour),
			DevGenerateKey: true,
		},
		Apps: []*conf.App{
			{Platform: "wechat", AppId: appA, Secret: "secret-a", UnionScope: "scope-1", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
			{Platform: "wechat", AppId: appB, Secret: "secret-b", UnionScope: "scope-1", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
			{Platform: "wechat", AppId: appC, Secret: "secret-c", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
			{Platform: "douyin", AppId: appDouyin, Secret: "secret-dy", UnionScope: "dy-entity", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
			{Platform: "douyin", AppId: appDouyinGuest, Secret: "secret-dy2", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second), AllowGuests: true},
			{Platform: "kuaishou", AppId: appKuaishou, Secret: "secret-ks", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
			{Platform: "alipay", AppId: appAlipay, UnionScope: "ali-group", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second),
				PrivateKey: sandbox.AlipayDemoAppPrivateKeyPEM, PlatformPublicKey: sandbox.AlipaySandboxPublicKeyPEM, AesKey: sandbox.AlipayDemoAESKey},
			{Platform: "baidu", AppId: appBaidu, Secret: "secret-bd", UnionScope: "bd-entity", Endpoint: sandboxEndpoint, Timeout: durationpb.New(3 * time.Second)},
		},
		ApiKeys: []*conf.APIKey{
			{Id: "test-backend", Key: backendKey, Scopes: []string{"backend"}},
			{Id: "test-admin", Key: adminKey, Scopes: []string{"admin"}},
		},
		Accounts: &conf.Accounts{UnionMerge: "auto"},
		Secrets:  &conf.Secrets{DevGenerateKey: true},
		Sandbox:  &conf.Sandbox{Enabled: true, Addr: "127.0.0.1:0", CodeTtl: durationpb.New(5 * time.Minute)},
		Log:      &conf.Log{Level: "debug"},
	}
}

// start runs mpauth with bc until the test ends.
func start(t *testing.T, bc *conf.Bootstrap) *instance {
	t.Helper()
	if err := conf.Validate(bc); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &syncBuffer{}
	app, cleanup, err := wireApp(bc, newLogger(bc, logs))
	if err != nil {
		t.Fatalf("wireApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run() }()
	t.Cleanup(func() {
		_ = app.Stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("mpauth did not stop")
		}
		cleanup()
	})
	in := &instance{logs: logs}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (in.httpURL == "" || in.grpcAddr == "") {
		for _, e := range app.Endpoint() {
			u, err := url.Parse(e)
			if err != nil {
				continue
			}
			switch u.Scheme {
			case "http":
				in.httpURL = "http://" + u.Host
			case "grpc":
				in.grpcAddr = u.Host
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if in.httpURL == "" || in.grpcAddr == "" {
		t.Fatalf("mpauth did not start: endpoints %v", app.Endpoint())
	}
	waitReady(t, in.httpURL+"/.well-known/jwks.json")
	if bc.Sandbox.GetEnabled() {
		in.sandbox = sandboxURL(t, in)
	}
	return in
}

// sandboxURL finds the sandbox's address in the startup announcement.
func sandboxURL(t *testing.T, in *instance) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s := in.logs.String()
		if i := strings.Index(s, "sandbox platforms at "); i >= 0 {
			rest := s[i+len("sandbox platforms at "):]
			return strings.Fields(rest)[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no sandbox announcement in the logs")
	return ""
}

func waitReady(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", u)
}

// mintCode asks the sandbox for a WeChat login code of user in app.
func (in *instance) mintCode(t *testing.T, app, user string) string {
	t.Helper()
	return in.mintCodeOn(t, "wechat", app, user)
}

// mintCodeOn asks the sandbox for a login code of user in an app of platform.
func (in *instance) mintCodeOn(t *testing.T, platform, app, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, err := sandbox.MintCode(ctx, in.sandbox, platform, app, user)
	if err != nil {
		t.Fatalf("mint code: %v", err)
	}
	return code
}

// call sends a JSON request and decodes the JSON answer.
func (in *instance) call(t *testing.T, method, path, bearer string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, in.httpURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func (in *instance) login(t *testing.T, app, user string) map[string]any {
	t.Helper()
	code := in.mintCode(t, app, user)
	status, _, out := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": app, "code": code})
	if status != 200 {
		t.Fatalf("login %s/%s: %d %v", app, user, status, out)
	}
	return out
}

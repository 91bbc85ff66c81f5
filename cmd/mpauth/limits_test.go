package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/sandbox"
)

// limitsConfig is the test config with login limits (-1: none) and the
// given trusted proxies.
func limitsConfig(t *testing.T, perIP, perIdentity int32, trusted ...string) *conf.Bootstrap {
	bc := testConfig(t, "sqlite")
	bc.Limits = &conf.Limits{LoginPerIpPerMinute: perIP, LoginPerIdentityPerMinute: perIdentity, TrustedProxies: trusted}
	return bc
}

// post sends a JSON POST with extra headers and decodes the answer.
func (in *instance) post(t *testing.T, path string, body any, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest("POST", in.httpURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: answer is not JSON: %q", path, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// loginFrom logs user in to app with a fresh code, sending X-Forwarded-For
// xff (none if empty).
func (in *instance) loginFrom(t *testing.T, app, user, xff string) (int, http.Header, map[string]any) {
	t.Helper()
	hdr := map[string]string{}
	if xff != "" {
		hdr["X-Forwarded-For"] = xff
	}
	return in.post(t, "/v1/auth/login", map[string]string{"platform": "wechat", "app_id": app, "code": in.mintCode(t, app, user)}, hdr)
}

// assertRateLimited checks a 429 RATE_LIMITED with a Retry-After within the
// minute window whose message says what was limited.
func assertRateLimited(t *testing.T, status int, hdr http.Header, body map[string]any, what string) {
	t.Helper()
	assertError(t, status, body, 429, "RATE_LIMITED")
	secs, err := strconv.Atoi(hdr.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", hdr.Get("Retry-After"))
	}
	if md, _ := body["metadata"].(map[string]any); md["retry_after"] != hdr.Get("Retry-After") {
		t.Errorf("metadata.retry_after %v differs from Retry-After %q", md["retry_after"], hdr.Get("Retry-After"))
	}
	if msg, _ := body["message"].(string); !strings.Contains(msg, what) {
		t.Errorf("message %q does not say %q", msg, what)
	}
}

func TestLoginsPerAddressAreLimited(t *testing.T) {
	in := start(t, limitsConfig(t, 3, -1))
	var refresh string
	for i, user := range []string{"ip-a", "ip-b", "ip-c"} {
		// No proxy is trusted: a client's X-Forwarded-For changes nothing.
		st, _, body := in.loginFrom(t, appA, user, "198.51.100."+strconv.Itoa(i+1))
		if st != 200 {
			t.Fatalf("login %d: %d %v", i+1, st, body)
		}
		refresh = body["refresh_token"].(string)
	}
	st, hdr, body := in.loginFrom(t, appA, "ip-d", "198.51.100.9")
	assertRateLimited(t, st, hdr, body, "address")

	// Refresh counts against the same limit.
	st, hdr, body = in.post(t, "/v1/auth/refresh", map[string]string{"refresh_token": refresh}, nil)
	assertRateLimited(t, st, hdr, body, "address")

	// So does gRPC from the same address.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint(in.grpcAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = v1.NewAuthServiceClient(conn).Login(ctx, &v1.LoginRequest{Platform: "wechat", AppId: appA, Code: in.mintCode(t, appA, "ip-e")})
	if !v1.IsRateLimited(err) {
		t.Fatalf("gRPC login over the limit: %v, want RATE_LIMITED", err)
	}

	// Other operations are not limited.
	if st, _, body := in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": "x"}); st != 200 {
		t.Fatalf("introspect after the login limit: %d %v", st, body)
	}
}

func TestForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		// whether the client addresses in X-Forwarded-For count apart
		apart bool
	}{
		{"untrusted peer", []string{"10.0.0.0/8"}, false},
		{"trusted peer by address", []string{"127.0.0.1"}, true},
		{"trusted peer by CIDR", []string{"10.0.0.0/8", "127.0.0.0/8"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := start(t, limitsConfig(t, 2, -1, tt.trusted...))
			for i := 0; i < 2; i++ {
				if st, _, body := in.loginFrom(t, appA, "xff-"+strconv.Itoa(i), "6.6.6.6, 203.0.113.1"); st != 200 {
					t.Fatalf("login %d: %d %v", i+1, st, body)
				}
			}
			st, hdr, body := in.loginFrom(t, appA, "xff-2", "203.0.113.1")
			assertRateLimited(t, st, hdr, body, "address")

			// Another client behind the proxy (the client-supplied first
			// hop is not what counts).
			st, hdr, body = in.loginFrom(t, appA, "xff-3", "203.0.113.1, 203.0.113.2")
			if tt.apart && st != 200 {
				t.Fatalf("another client behind a trusted proxy was limited: %d %v", st, body)
			}
			if !tt.apart {
				assertRateLimited(t, st, hdr, body, "address")
			}
		})
	}
}

func TestLoginsPerAccountAreLimitedAcrossAddresses(t *testing.T) {
	in := start(t, limitsConfig(t, -1, 2, "127.0.0.1"))
	for i := 1; i <= 2; i++ {
		if st, _, body := in.loginFrom(t, appA, "alice", "203.0.113."+strconv.Itoa(i)); st != 200 {
			t.Fatalf("login %d: %d %v", i, st, body)
		}
	}
	st, hdr, body := in.loginFrom(t, appA, "alice", "203.0.113.3")
	assertRateLimited(t, st, hdr, body, "account")
	// The limit is per (app, openid): bob, and alice in another app, log in.
	if st, _, body := in.loginFrom(t, appA, "bob", "203.0.113.3"); st != 200 {
		t.Fatalf("another user limited by alice's logins: %d %v", st, body)
	}
	if st, _, body := in.loginFrom(t, appB, "alice", "203.0.113.3"); st != 200 {
		t.Fatalf("alice in another app limited by her logins in the first: %d %v", st, body)
	}
}

func TestLoginLimitsAreSharedThroughRedis(t *testing.T) {
	prefix := "mpauth-test:" + randomHex(t) + ":"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, err := rdb.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	first := limitsConfig(t, 4, 2)
	first.Redis = &conf.Redis{Addr: "127.0.0.1:6379", KeyPrefix: prefix}
	second := proto.Clone(first).(*conf.Bootstrap) // the same database, the same Redis
	in1, in2 := start(t, first), start(t, second)

	// Per account: alice's two logins are spread over both instances.
	if st, _, body := in1.loginFrom(t, appA, "alice", ""); st != 200 {
		t.Fatalf("alice on instance 1: %d %v", st, body)
	}
	if st, _, body := in2.loginFrom(t, appA, "alice", ""); st != 200 {
		t.Fatalf("alice on instance 2: %d %v", st, body)
	}
	st, hdr, body := in1.loginFrom(t, appA, "alice", "")
	assertRateLimited(t, st, hdr, body, "account")

	// Per address: that was the third login from 127.0.0.1; one more is
	// allowed, on either instance, then none on either.
	if st, _, body := in2.loginFrom(t, appA, "bob", ""); st != 200 {
		t.Fatalf("bob on instance 2: %d %v", st, body)
	}
	for _, in := range []*instance{in1, in2} {
		st, hdr, body := in.loginFrom(t, appA, "carol", "")
		assertRateLimited(t, st, hdr, body, "address")
	}
	if n, err := rdb.Keys(context.Background(), prefix+"*").Result(); err != nil || len(n) == 0 {
		t.Fatalf("no limit keys under the configured prefix %q: %v %v", prefix, n, err)
	}
}

func TestBadInputIsRejectedBeforeThePlatform(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("oversized body", func(t *testing.T) {
		code := in.mintCode(t, appA, "big")
		body := `{"platform":"wechat","app_id":"` + appA + `","code":"` + code + `","pad":"` + strings.Repeat("x", 64<<10) + `"}`
		st, _, e := in.post(t, "/v1/auth/login", body, nil)
		assertError(t, st, e, 400, "INVALID_ARGUMENT")
		if msg := e["message"].(string); !strings.Contains(msg, "larger than 64 KiB") {
			t.Fatalf("message %q does not say the body is too large", msg)
		}
		if st, _, e := in.post(t, "/v1/auth/login", map[string]string{"platform": "wechat", "app_id": appA, "code": code}, nil); st != 200 {
			t.Fatalf("the code was spent by the oversized request: %d %v", st, e)
		}
	})

	alice := in.login(t, appA, "alice")["access_token"].(string)
	bad := []string{"<script>", " ", "\"", "%00", "码", "'--", "\n"}
	tests := []struct {
		name  string
		field string
		// send sends req with its code field set to code; real returns a
		// fresh valid code.
		real func(t *testing.T) string
		send func(t *testing.T, code string) (int, map[string]any)
	}{
		{"login code", "code",
			func(t *testing.T) string { return in.mintCode(t, appA, "carol") },
			func(t *testing.T, code string) (int, map[string]any) {
				st, _, e := in.post(t, "/v1/auth/login", map[string]string{"platform": "wechat", "app_id": appA, "code": code}, nil)
				return st, e
			}},
		{"douyin anonymous code", "anonymous_code",
			func(t *testing.T) string {
				c, err := sandbox.MintDouyinAnonymousCode(ctx, in.sandbox, appDouyinGuest, "guest")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			func(t *testing.T, code string) (int, map[string]any) {
				st, _, e := in.post(t, "/v1/auth/login", map[string]string{"platform": "douyin", "app_id": appDouyinGuest, "anonymous_code": code}, nil)
				return st, e
			}},
		{"bind code", "code",
			func(t *testing.T) string { return in.mintCode(t, appC, "alice-elsewhere") },
			func(t *testing.T, code string) (int, map[string]any) {
				st, _, e := in.post(t, "/v1/me/identities", map[string]string{"platform": "wechat", "app_id": appC, "code": code}, map[string]string{"Authorization": "Bearer " + alice})
				return st, e
			}},
		{"phone code", "code",
			func(t *testing.T) string {
				c, err := sandbox.MintWeChatPhoneCode(ctx, in.sandbox, appA, "alice", "13800138000", "")
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
			func(t *testing.T, code string) (int, map[string]any) {
				st, _, e := in.post(t, "/v1/me/phone", map[string]string{"code": code}, map[string]string{"Authorization": "Bearer " + alice})
				return st, e
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.real(t)
			for _, b := range bad {
				st, e := tt.send(t, code+b)
				assertError(t, st, e, 400, "INVALID_ARGUMENT")
				md, _ := e["metadata"].(map[string]any)
				msg, _ := e["message"].(string)
				if md["field"] != tt.field || !strings.Contains(msg, tt.field) {
					t.Fatalf("error does not name %s: %v", tt.field, e)
				}
				if strings.Contains(mustJSON(e), code) {
					t.Fatalf("error echoes the code: %v", e)
				}
			}
			// The platform never saw the code: it is still unspent.
			if st, e := tt.send(t, code); st != 200 {
				t.Fatalf("the real code after the rejected ones: %d %v", st, e)
			}
		})
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/provider"
)

// TestDeadPlatformAnswersUnavailableAtOnce: once WeChat keeps failing, its
// circuit breaker opens and logins get PLATFORM_UNAVAILABLE without reaching
// WeChat at all; other platforms are not affected.
func TestDeadPlatformAnswersUnavailableAtOnce(t *testing.T) {
	bc := testConfig(t, "sqlite")
	// Open for longer than the test: every refusal below is the breaker's.
	bc.Upstream = &conf.Upstream{BreakerOpenFor: durationpb.New(time.Hour)}
	in := start(t, bc)
	const budget = 1000
	in.sandboxPost(t, "/sandbox/faults", map[string]any{"platform": "wechat", "user": "dead", "error": "unavailable_http", "count": budget})
	// The fault answers before the code is spent, so one code serves every
	// attempt.
	code := in.mintCode(t, appA, "dead")
	const logins = 50
	for i := 0; i < logins; i++ {
		status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
		assertError(t, status, e, 503, "PLATFORM_UNAVAILABLE")
	}
	// Each failed login is tried twice (one retry of the 503) until the
	// breaker opens after DefaultBreakerFailures failures in a row; no
	// login after that reaches the sandbox.
	if hits := budget - in.faultRemaining(t, "wechat", "dead"); hits != provider.DefaultBreakerFailures {
		t.Errorf("the sandbox answered %d of %d logins, want %d (then the breaker refuses)", hits, logins, provider.DefaultBreakerFailures)
	}
	// Another WeChat app shares the platform's breaker...
	status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appB, "code": in.mintCode(t, appB, "alice")})
	assertError(t, status, e, 503, "PLATFORM_UNAVAILABLE")
	// ...other platforms do not.
	in.loginOn(t, "douyin", appDouyin, "alice")
	in.loginOn(t, "kuaishou", appKuaishou, "alice")
}

// faultRemaining is how many answers the sandbox fault of (platform, user)
// has left.
func (in *instance) faultRemaining(t *testing.T, platform, user string) int {
	t.Helper()
	resp, err := http.Get(in.sandbox + "/sandbox/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Faults []struct {
			Platform, User string
			Count          int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for _, f := range out.Faults {
		if f.Platform == platform && f.User == user {
			return f.Count
		}
	}
	return 0 // used up (or never set)
}

// TestRateLimitsTellWhenToRetry: PLATFORM_RATE_LIMITED always carries
// Retry-After, the platform's hint or a minute when it gives none.
func TestRateLimitsTellWhenToRetry(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	for _, tt := range []struct {
		platform, app, want string
	}{
		{"wechat", appA, "60"},      // 45011: "retry next minute"
		{"alipay", appAlipay, "60"}, // 40005 call limited: no hint
		{"baidu", appBaidu, "1"},    // error_code 18: per-second quota
	} {
		t.Run(tt.platform, func(t *testing.T) {
			user := "throttled-" + tt.platform
			in.sandboxPost(t, "/sandbox/faults", map[string]any{"platform": tt.platform, "user": user, "error": "rate_limited", "count": 1})
			status, hdr, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": tt.platform, "app_id": tt.app, "code": in.mintCodeOn(t, tt.platform, tt.app, user)})
			assertError(t, status, e, 429, "PLATFORM_RATE_LIMITED")
			if got := hdr.Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

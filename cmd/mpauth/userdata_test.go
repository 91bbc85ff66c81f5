package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/sandbox"
)

// sandboxPost posts JSON to a sandbox control route and decodes the answer.
func (in *instance) sandboxPost(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	js, _ := json.Marshal(body)
	resp, err := http.Post(in.sandbox+path, "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("sandbox %s: %d %v", path, resp.StatusCode, out)
	}
	return out
}

func (in *instance) loginOn(t *testing.T, platform, app, user string) map[string]any {
	t.Helper()
	status, _, out := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": platform, "app_id": app, "code": in.mintCodeOn(t, platform, app, user)})
	if status != 200 {
		t.Fatalf("login %s/%s/%s: %d %v", platform, app, user, status, out)
	}
	return out
}

// TestPhoneAndProfileOnEveryPlatform: the client's encrypted data, sealed by
// the sandbox with the session_key of the user's login, decrypts through
// /v1/me/phone and /v1/me/profile and lands on the user.
func TestPhoneAndProfileOnEveryPlatform(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	for _, tt := range []struct{ platform, app string }{
		{"wechat", appA},
		{"douyin", appDouyin},
		{"kuaishou", appKuaishou},
		{"baidu", appBaidu},
		{"alipay", appAlipay},
	} {
		t.Run(tt.platform, func(t *testing.T) {
			user := "phone-" + tt.platform
			tok := in.loginOn(t, tt.platform, tt.app, user)
			access := tok["access_token"].(string)

			sealed := in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": tt.platform, "app_id": tt.app, "user": user, "kind": "phone", "phone": "13800138000", "country_code": "86"})
			status, _, got := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"], "sign": sealed["sign"]})
			// Baidu and Alipay give mainland numbers without a country code.
			wantCC := "86"
			if tt.platform == "baidu" || tt.platform == "alipay" {
				wantCC = ""
			}
			if status != 200 || got["phone_number"] != "13800138000" || got["country_code"] != wantCC {
				t.Fatalf("phone: %d %v", status, got)
			}
			if tt.platform == "alipay" {
				// Alipay's phone data is sealed with the app's key and signed
				// by Alipay; there is no session_key, no profile data, no
				// watermark, and tampering breaks the signature.
				sealed = in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": tt.platform, "app_id": tt.app, "user": user, "kind": "phone", "phone": "13800138009"})
				status, _, e := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "sign": "AAAA" + sealed["sign"].(string)[4:]})
				assertError(t, status, e, 400, "DECRYPT_FAILED")
				status, _, e = in.call(t, "POST", "/v1/me/profile", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": "x"})
				if status < 400 {
					t.Fatalf("alipay encrypted profile accepted: %d %v", status, e)
				}
				status, _, me := in.call(t, "POST", "/v1/me/profile", access, map[string]any{"nickname": "Ali", "avatar_url": "https://example.com/a.png"})
				if status != 200 || me["nickname"] != "Ali" {
					t.Fatalf("plain profile: %d %v", status, me)
				}
				return
			}
			sealed = in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": tt.platform, "app_id": tt.app, "user": user, "kind": "profile", "nickname": "Band", "avatar_url": "https://example.com/a.png"})
			status, _, me := in.call(t, "POST", "/v1/me/profile", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"]})
			if status != 200 || me["nickname"] != "Band" || me["phone_number"] != got["phone_number"] {
				t.Fatalf("profile: %d %v", status, me)
			}

			// Data for another app is refused; so is data sealed before the
			// user logged in again (the platform rotated the session_key).
			sealed = in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": tt.platform, "app_id": tt.app, "user": user, "kind": "phone", "phone": "13800138001", "watermark_app_id": "someoneelse"})
			status, _, e := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"]})
			if tt.platform != "kuaishou" { // Kuaishou's phone data has no watermark
				assertError(t, status, e, 400, "WATERMARK_MISMATCH")
			}
			old := in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": tt.platform, "app_id": tt.app, "user": user, "kind": "phone", "phone": "13800138002"})
			in.loginOn(t, tt.platform, tt.app, user) // new session_key
			status, _, e = in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": old["encrypted_data"], "iv": old["iv"]})
			assertError(t, status, e, 409, "SESSION_KEY_STALE")
			status, _, e = in.call(t, "POST", "/v1/me/phone", access, map[string]any{"encrypted_data": "!!notbase64", "iv": "x"})
			assertError(t, status, e, 400, "DECRYPT_FAILED")
		})
	}
}

// TestWeChatPhoneCode: the getPhoneNumber button's code goes through
// getuserphonenumber with the broker's access token, which survives the
// platform expiring it.
func TestWeChatPhoneCode(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	access := in.login(t, appA, "grace")["access_token"].(string)
	code := in.sandboxPost(t, "/sandbox/wechat/phone-codes", map[string]any{"app_id": appA, "user": "grace", "phone": "13900139000"})["code"]
	status, _, got := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"code": code})
	if status != 200 || got["phone_number"] != "13900139000" {
		t.Fatalf("phone by code: %d %v", status, got)
	}
	status, _, e := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"code": code})
	assertError(t, status, e, 400, "CODE_INVALID")

	// The platform expires every token: the broker gets a new one, once.
	in.sandboxPost(t, "/sandbox/wechat/expire-tokens", map[string]any{"app_id": appA})
	code = in.sandboxPost(t, "/sandbox/wechat/phone-codes", map[string]any{"app_id": appA, "user": "grace", "phone": "13900139001"})["code"]
	status, _, got = in.call(t, "POST", "/v1/me/phone", access, map[string]any{"code": code})
	if status != 200 || got["phone_number"] != "13900139001" {
		t.Fatalf("phone by code after the token expired: %d %v", status, got)
	}
	status, _, me := in.call(t, "GET", "/v1/me", access, nil)
	if status != 200 || me["phone_number"] != "13900139001" {
		t.Fatalf("me: %v", me)
	}
	// Douyin offers no phone codes: a clear error, not a crash.
	dy := in.loginOn(t, "douyin", appDouyin, "grace-dy")["access_token"].(string)
	status, _, e = in.call(t, "POST", "/v1/me/phone", dy, map[string]any{"code": "abc"})
	assertError(t, status, e, 400, "INVALID_ARGUMENT")
}

// TestDouyinGuests: anonymous logins need allow_guests; a guest who logs in
// for real keeps their user id.
func TestDouyinGuests(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	anon := func(app string) string {
		c, err := sandbox.MintDouyinAnonymousCode(ctx, in.sandbox, app, "henry")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "douyin", "app_id": appDouyin, "anonymous_code": anon(appDouyin)})
	assertError(t, status, e, 403, "GUEST_NOT_ALLOWED")

	status, _, guest := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "douyin", "app_id": appDouyinGuest, "anonymous_code": anon(appDouyinGuest)})
	if status != 200 || guest["is_new_user"] != true {
		t.Fatalf("guest login: %d %v", status, guest)
	}
	status, _, real := in.call(t, "POST", "/v1/auth/login", "", map[string]string{
		"platform": "douyin", "app_id": appDouyinGuest,
		"code": in.mintCodeOn(t, "douyin", appDouyinGuest, "henry"), "anonymous_code": anon(appDouyinGuest),
	})
	if status != 200 || real["user_id"] != guest["user_id"] || real["is_new_user"] != false {
		t.Fatalf("guest becoming real: %d %v, want user %v", status, real, guest["user_id"])
	}
	status, _, e = in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "anonymous_code": "x"})
	assertError(t, status, e, 400, "INVALID_ARGUMENT")
}

// TestLoginOnEveryPlatform: each platform's sandbox, through that
// platform's real provider; same person twice, same user; unionids join
// apps of one scope only.
func TestLoginOnEveryPlatform(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	for _, tt := range []struct{ platform, app string }{
		{"wechat", appA}, {"alipay", appAlipay}, {"douyin", appDouyin}, {"kuaishou", appKuaishou}, {"baidu", appBaidu},
	} {
		t.Run(tt.platform, func(t *testing.T) {
			first := in.loginOn(t, tt.platform, tt.app, "multi")
			again := in.loginOn(t, tt.platform, tt.app, "multi")
			if first["is_new_user"] != true || again["user_id"] != first["user_id"] || again["is_new_user"] != false {
				t.Fatalf("first %v, again %v", first, again)
			}
			u := in.adminUser(t, first["user_id"].(string))
			ids := u["identities"].([]any)
			if len(ids) != 1 || ids[0].(map[string]any)["platform"] != tt.platform {
				t.Fatalf("identities = %v", ids)
			}
			// unionids are compared within one platform only: one person on
			// five platforms is five users until they bind their accounts.
			if tt.platform != "kuaishou" && ids[0].(map[string]any)["unionid"] == "" {
				t.Errorf("%s app with a union scope got no unionid", tt.platform)
			}
		})
	}
}

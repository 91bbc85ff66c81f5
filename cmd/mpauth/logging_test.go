package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLogsCarryNoSecrets runs a full login, retried code, refresh, phone
// decryption and phone code, /v1/me, introspection, admin calls and error
// paths with debug logging, and proves that no login or phone code, token,
// refresh token, session_key, app secret, API key or full phone number
// reaches the logs or any error body.
func TestLogsCarryNoSecrets(t *testing.T) {
	fake := newPlatformFake() // a sandbox we hold, so we know the session_keys it issues
	fake.switched.Store(true)
	platform := httptest.NewServer(fake)
	defer platform.Close()
	bc := instancesConfig(t, "sqlite", platform.URL, false)
	bc.Log.Level = "debug"
	in := start(t, bc)
	in.sandbox = platform.URL

	var errorBodies []string
	call := func(method, path, bearer string, body any) map[string]any {
		st, _, out := in.call(t, method, path, bearer, body)
		if st >= 400 {
			errorBodies = append(errorBodies, mustJSON(out))
		}
		return out
	}
	code := in.mintCode(t, appA, "dave")
	tok := call("POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	if tok["access_token"] == nil {
		t.Fatalf("login: %v", tok)
	}
	retried := call("POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	sessionKey, ok := fake.late.SessionKey(appA, "dave")
	if !ok || sessionKey == "" {
		t.Fatal("no session_key issued")
	}
	next := call("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)})
	access := next["access_token"].(string)

	const phone, phone2 = "13812345678", "13987654321"
	sealed := in.sandboxPost(t, "/sandbox/user-data", map[string]any{"platform": "wechat", "app_id": appA, "user": "dave", "kind": "phone", "phone": phone})
	if got := call("POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": sealed["iv"]}); got["phone_number"] != phone {
		t.Fatalf("phone: %v", got)
	}
	call("POST", "/v1/me/phone", access, map[string]any{"encrypted_data": sealed["encrypted_data"], "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}) // wrong iv
	phoneCode := in.sandboxPost(t, "/sandbox/wechat/phone-codes", map[string]any{"app_id": appA, "user": "dave", "phone": phone2})["code"].(string)
	call("POST", "/v1/me/phone", access, map[string]any{"code": phoneCode})
	call("POST", "/v1/me/phone", access, map[string]any{"code": phoneCode}) // used
	call("GET", "/v1/me", access, nil)
	call("POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": access})
	call("POST", "/v1/tokens/introspect", adminKey, map[string]string{"token": access}) // wrong scope
	user := tok["user_id"].(string)
	call("GET", "/v1/admin/users/"+user, adminKey, nil)
	call("GET", "/v1/admin/users?phone="+phone, adminKey, nil)
	other := in.login(t, appB, "someone")["user_id"].(string)
	call("POST", "/v1/admin/users/"+user+"/merge", adminKey, map[string]any{"source_user_id": other, "reason": "log test"})
	call("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)}) // replay
	call("POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code + "x"})
	call("POST", "/v1/auth/logout", access, nil)

	logs := in.logs.String()
	if !strings.Contains(logs, "/mpauth.v1.AuthService/Login") || !strings.Contains(logs, "/mpauth.v1.AdminService/MergeUsers") {
		t.Fatalf("requests were not logged:\n%s", logs)
	}
	if len(errorBodies) < 4 {
		t.Fatalf("only %d error bodies: the error paths did not run", len(errorBodies))
	}
	secrets := map[string]string{
		"login code":               code,
		"phone code":               phoneCode,
		"session_key":              sessionKey,
		"access token":             tok["access_token"].(string),
		"retried access token":     retried["access_token"].(string),
		"refresh token":            tok["refresh_token"].(string),
		"retried refresh token":    retried["refresh_token"].(string),
		"rotated access token":     access,
		"rotated refresh token":    next["refresh_token"].(string),
		"app secret":               "secret-a",
		"backend API key":          backendKey,
		"admin API key":            adminKey,
		"phone number":             phone,
		"phone number (code)":      phone2,
		"encrypted phone data":     sealed["encrypted_data"].(string),
		"the session_key's middle": sessionKey[4:20],
	}
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the logs", name)
		}
		for _, b := range errorBodies {
			if strings.Contains(b, s) {
				t.Errorf("the %s appears in an error body: %s", name, b)
			}
		}
	}
}

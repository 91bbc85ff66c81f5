package main

import (
	"strings"
	"testing"
)

// TestLogsCarryNoSecrets logs a full login, refresh, /v1/me and logout at
// debug level and checks that no code, token or session_key reaches the log.
func TestLogsCarryNoSecrets(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	code := in.mintCode(t, appA, "dave")
	status, _, tok := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	if status != 200 {
		t.Fatalf("login: %d %v", status, tok)
	}
	_, _, next := in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)})
	in.call(t, "GET", "/v1/me", next["access_token"].(string), nil)
	in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)})   // rejected replay
	in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code}) // CODE_USED
	in.call(t, "POST", "/v1/auth/logout", next["access_token"].(string), nil)

	logs := in.logs.String()
	if !strings.Contains(logs, "/mpauth.v1.AuthService/Login") {
		t.Fatalf("requests were not logged at all:\n%s", logs)
	}
	secrets := map[string]string{
		"login code":            code,
		"access token":          tok["access_token"].(string),
		"refresh token":         tok["refresh_token"].(string),
		"rotated access token":  next["access_token"].(string),
		"rotated refresh token": next["refresh_token"].(string),
		"app secret":            "secret-a",
	}
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	// Session keys are 24 base64 chars ending in "=="; none may be logged.
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "session_key") && strings.Contains(line, "==") {
			t.Errorf("a session_key may be logged: %s", line)
		}
	}
}

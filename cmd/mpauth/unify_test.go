package main

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// adminUser returns GET /v1/admin/users/{id}.
func (in *instance) adminUser(t *testing.T, id string) map[string]any {
	t.Helper()
	status, _, u := in.call(t, "GET", "/v1/admin/users/"+id, adminKey, nil)
	if status != 200 {
		t.Fatalf("admin get %s: %d %v", id, status, u)
	}
	return u
}

// openidOf returns the openid of the user's identity in app.
func openidOf(t *testing.T, u map[string]any, app string) string {
	t.Helper()
	ids, _ := u["identities"].([]any)
	for _, i := range ids {
		m := i.(map[string]any)
		if m["app_id"] == app {
			return m["openid"].(string)
		}
	}
	t.Fatalf("user %v has no identity in %s", u["user_id"], app)
	return ""
}

func TestBackendAPI(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	tok := in.login(t, appA, "erin")
	user := tok["user_id"].(string)

	status, _, got := in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": tok["access_token"].(string)})
	if status != 200 || got["active"] != true || got["sub"] != user || got["user_id"] != user || got["platform"] != "wechat" || got["app_id"] != appA || got["sid"] == "" {
		t.Fatalf("introspect: %d %v", status, got)
	}
	if exp, ok := got["exp"].(float64); !ok || exp <= got["iat"].(float64) {
		t.Fatalf("exp/iat must be JSON numbers with exp > iat: %v", got)
	}
	for name, bad := range map[string]string{"garbage": "garbage", "empty": "", "refresh token": tok["refresh_token"].(string), "truncated": tok["access_token"].(string)[:40]} {
		status, _, got := in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": bad})
		if status != 200 || got["active"] != false {
			t.Errorf("introspect %s: %d %v, want 200 active:false", name, status, got)
		}
	}

	openid := openidOf(t, in.adminUser(t, user), appA)
	status, _, got = in.call(t, "GET", "/v1/identities/wechat/"+appA+"/"+url.PathEscape(openid), backendKey, nil)
	if status != 200 || got["user_id"] != user {
		t.Fatalf("lookup identity: %d %v", status, got)
	}
	status, _, got = in.call(t, "GET", "/v1/identities/wechat/"+appA+"/onosuchopenid", backendKey, nil)
	assertError(t, status, got, 404, "NOT_FOUND")
	status, _, got = in.call(t, "GET", "/v1/users/"+user, backendKey, nil)
	if status != 200 || got["canonical_user_id"] != user || got["merged_into"] != "" {
		t.Fatalf("get user: %d %v", status, got)
	}
	status, _, got = in.call(t, "GET", "/v1/users/u_nosuchuser", backendKey, nil)
	assertError(t, status, got, 404, "NOT_FOUND")

	// Keys: none, unknown, wrong scope; an access token is not an API key.
	status, _, got = in.call(t, "POST", "/v1/tokens/introspect", "", map[string]string{"token": "x"})
	assertError(t, status, got, 401, "UNAUTHENTICATED")
	status, _, got = in.call(t, "POST", "/v1/tokens/introspect", "not-a-key-0123456789abcdef0123456789", map[string]string{"token": "x"})
	assertError(t, status, got, 401, "UNAUTHENTICATED")
	status, _, got = in.call(t, "POST", "/v1/tokens/introspect", adminKey, map[string]string{"token": "x"})
	assertError(t, status, got, 403, "PERMISSION_DENIED")
	status, _, got = in.call(t, "GET", "/v1/admin/users/"+user, backendKey, nil)
	assertError(t, status, got, 403, "PERMISSION_DENIED")
	status, _, got = in.call(t, "GET", "/v1/users/"+user, tok["access_token"].(string), nil)
	assertError(t, status, got, 401, "UNAUTHENTICATED")

	// After logout the token is inactive.
	in.call(t, "POST", "/v1/auth/logout", tok["access_token"].(string), nil)
	_, _, got = in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": tok["access_token"].(string)})
	if got["active"] != false {
		t.Fatalf("introspect after logout: %v", got)
	}
}

func TestAdminMergeKeepsAliasesAndAudit(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	alice := in.login(t, appA, "alice")
	other := in.login(t, appC, "alice-elsewhere") // appC has no union scope: a second user
	a, b := alice["user_id"].(string), other["user_id"].(string)
	if a == b {
		t.Fatal("expected two users")
	}
	in.call(t, "POST", "/v1/me/phone", "", nil) // noise: unauthenticated, must not matter

	// Every change needs a reason.
	status, _, e := in.call(t, "POST", "/v1/admin/users/"+a+"/merge", adminKey, map[string]any{"source_user_id": b})
	assertError(t, status, e, 400, "INVALID_ARGUMENT")

	status, _, merged := in.call(t, "POST", "/v1/admin/users/"+a+"/merge", adminKey, map[string]any{"source_user_id": b, "reason": "ticket 42: same person"})
	if status != 200 || merged["canonical_user_id"] != a || len(merged["identities"].([]any)) != 2 {
		t.Fatalf("merge: %d %v", status, merged)
	}
	if al, _ := merged["aliases"].([]any); len(al) != 1 || al[0] != b {
		t.Fatalf("aliases = %v, want [%s]", merged["aliases"], b)
	}
	// The alias resolves, and says so.
	status, _, got := in.call(t, "GET", "/v1/users/"+b, backendKey, nil)
	if status != 200 || got["canonical_user_id"] != a || got["merged_into"] != a || got["user_id"] != b {
		t.Fatalf("alias lookup: %d %v", status, got)
	}
	// B's still-valid access token now answers with A; its refresh token is dead.
	_, _, got = in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": other["access_token"].(string)})
	if got["active"] != true || got["sub"] != a {
		t.Fatalf("introspect merged user's token: %v, want active with sub %s", got, a)
	}
	status, _, e = in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": other["refresh_token"].(string)})
	assertError(t, status, e, 401, "REFRESH_TOKEN_INVALID")
	// Logging in again through B's app lands on A.
	if again := in.login(t, appC, "alice-elsewhere"); again["user_id"] != a {
		t.Fatalf("login after merge = %v, want %s", again["user_id"], a)
	}
	// Merging again is refused: they are one user.
	status, _, e = in.call(t, "POST", "/v1/admin/users/"+b+"/merge", adminKey, map[string]any{"source_user_id": a, "reason": "again"})
	assertError(t, status, e, 400, "INVALID_ARGUMENT")

	// Two users with identities in one app: a conflict unless forced.
	c := in.login(t, appA, "carol")["user_id"].(string)
	d := in.login(t, appA, "dave")["user_id"].(string)
	status, _, e = in.call(t, "POST", "/v1/admin/users/"+c+"/merge", adminKey, map[string]any{"source_user_id": d, "reason": "test"})
	assertError(t, status, e, 409, "IDENTITY_CONFLICT")
	status, _, got = in.call(t, "POST", "/v1/admin/users/"+c+"/merge", adminKey, map[string]any{"source_user_id": d, "reason": "test", "force": true})
	if status != 200 || len(got["identities"].([]any)) != 2 {
		t.Fatalf("forced merge: %d %v", status, got)
	}

	// Unlink: the identity becomes a user of its own.
	openidC := openidOf(t, in.adminUser(t, a), appC)
	status, _, un := in.call(t, "POST", "/v1/admin/users/"+a+"/unlink", adminKey, map[string]any{"platform": "wechat", "app_id": appC, "openid": openidC, "reason": "wrong merge"})
	if status != 200 {
		t.Fatalf("unlink: %d %v", status, un)
	}
	nu := un["new_user"].(map[string]any)
	if nu["canonical_user_id"] == a || openidOf(t, nu, appC) != openidC {
		t.Fatalf("unlinked user = %v", nu)
	}
	// Link it back.
	status, _, got = in.call(t, "POST", "/v1/admin/users/"+a+"/link", adminKey, map[string]any{"platform": "wechat", "app_id": appC, "openid": openidC, "reason": "right after all"})
	if status != 200 || len(got["identities"].([]any)) != 2 {
		t.Fatalf("link: %d %v", status, got)
	}
	// The last identity cannot be unlinked.
	status, _, e = in.call(t, "POST", "/v1/admin/users/"+nu["canonical_user_id"].(string)+"/unlink", adminKey, map[string]any{"platform": "wechat", "app_id": appC, "openid": openidC, "reason": "x"})
	if status < 400 {
		t.Fatalf("unlink from a user that no longer has it: %d", status)
	}

	// Search.
	status, _, list := in.call(t, "GET", "/v1/admin/users?platform=wechat&app_id="+appC+"&openid="+url.QueryEscape(openidC), adminKey, nil)
	if status != 200 || len(list["users"].([]any)) != 1 || list["users"].([]any)[0].(map[string]any)["canonical_user_id"] != a {
		t.Fatalf("search by openid: %d %v", status, list)
	}
	status, _, list = in.call(t, "GET", "/v1/admin/users?page_size=2", adminKey, nil)
	if status != 200 || len(list["users"].([]any)) != 2 || list["next_page_token"] == "" {
		t.Fatalf("first page: %d %v", status, list)
	}
	status, _, page2 := in.call(t, "GET", "/v1/admin/users?page_size=2&page_token="+list["next_page_token"].(string), adminKey, nil)
	if status != 200 || len(page2["users"].([]any)) == 0 {
		t.Fatalf("second page: %d %v", status, page2)
	}
	status, _, e = in.call(t, "GET", "/v1/admin/users?page_token=bogus!", adminKey, nil)
	assertError(t, status, e, 400, "INVALID_ARGUMENT")

	// Revoke sessions.
	status, _, rv := in.call(t, "POST", "/v1/admin/users/"+a+"/revoke-sessions", adminKey, map[string]any{"reason": "lost phone"})
	if status != 200 || len(rv["revoked_session_ids"].([]any)) == 0 {
		t.Fatalf("revoke: %d %v", status, rv)
	}
	_, _, got = in.call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": alice["access_token"].(string)})
	if got["active"] != false {
		t.Fatalf("token after revoke-sessions: %v", got)
	}

	// The audit log: newest first, with actor, reason and what moved.
	status, _, audit := in.call(t, "GET", "/v1/admin/audit?user_id="+a, adminKey, nil)
	if status != 200 {
		t.Fatalf("audit: %d %v", status, audit)
	}
	events := audit["events"].([]any)
	var actions []string
	for _, ev := range events {
		m := ev.(map[string]any)
		actions = append(actions, m["action"].(string))
		if m["actor"] != "admin:test-admin" || m["reason"] == "" {
			t.Errorf("audit event without actor or reason: %v", m)
		}
	}
	want := []string{"sessions.revoke", "identity.link", "identity.unlink", "user.merge"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	mergeEv := events[3].(map[string]any)["details"].(map[string]any)
	if mergeEv["source_user_id"] != b || len(mergeEv["identities_moved"].([]any)) != 1 {
		t.Fatalf("merge audit details = %v", mergeEv)
	}
}

func TestMeBindAndUnbind(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	tok := in.login(t, appA, "frank")
	access, user := tok["access_token"].(string), tok["user_id"].(string)
	// frank also used the appC version of the app, as a separate user.
	other := in.login(t, appC, "frank-c")["user_id"].(string)

	status, _, me := in.call(t, "POST", "/v1/me/identities", access, map[string]string{"platform": "wechat", "app_id": appC, "code": in.mintCode(t, appC, "frank-c")})
	if status != 200 || len(me["identities"].([]any)) != 2 {
		t.Fatalf("bind: %d %v", status, me)
	}
	_, _, got := in.call(t, "GET", "/v1/users/"+other, backendKey, nil)
	if got["canonical_user_id"] != user {
		t.Fatalf("the bound account's old user should be an alias of %s: %v", user, got)
	}
	// Binding an account in an app where frank already has one: conflict.
	status, _, e := in.call(t, "POST", "/v1/me/identities", access, map[string]string{"platform": "wechat", "app_id": appA, "code": in.mintCode(t, appA, "someone-else")})
	assertError(t, status, e, 409, "IDENTITY_CONFLICT")

	status, _, me = in.call(t, "DELETE", "/v1/me/identities/wechat/"+appC, access, nil)
	if status != 200 || len(me["identities"].([]any)) != 1 {
		t.Fatalf("unbind: %d %v", status, me)
	}
	status, _, e = in.call(t, "DELETE", "/v1/me/identities/wechat/"+appA, access, nil)
	assertError(t, status, e, 400, "FAILED_PRECONDITION")
	status, _, e = in.call(t, "DELETE", "/v1/me/identities/wechat/"+appC, access, nil)
	assertError(t, status, e, 404, "NOT_FOUND")
}

// TestAliasesChain: B merged into A, then A into C: B resolves to C.
func TestAliasesChain(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	a := in.login(t, appC, "chain-a")["user_id"].(string)
	b := in.login(t, appC, "chain-b")["user_id"].(string)
	c := in.login(t, appC, "chain-c")["user_id"].(string)
	merge := func(target, source string) {
		t.Helper()
		st, _, body := in.call(t, "POST", "/v1/admin/users/"+target+"/merge", adminKey, map[string]any{"source_user_id": source, "reason": "chain", "force": true})
		if st != 200 {
			t.Fatalf("merge %s into %s: %d %v", source, target, st, body)
		}
	}
	merge(a, b)
	merge(c, a)
	for _, id := range []string{a, b} {
		_, _, got := in.call(t, "GET", "/v1/users/"+id, backendKey, nil)
		if got["canonical_user_id"] != c {
			t.Fatalf("%s resolves to %v, want %s", id, got["canonical_user_id"], c)
		}
	}
	// Merging C into its own alias is refused: no loops.
	st, _, e := in.call(t, "POST", "/v1/admin/users/"+b+"/merge", adminKey, map[string]any{"source_user_id": c, "reason": "loop"})
	assertError(t, st, e, 400, "INVALID_ARGUMENT")
	u := in.adminUser(t, c)
	if al := u["aliases"].([]any); len(al) != 2 {
		t.Fatalf("aliases of the end of the chain = %v, want both", al)
	}
}

// TestUnionMergeConflictMode: with union_merge: conflict a late unionid
// does not merge; the login proceeds as the identity's own user and an
// identity.conflict event tells operators.
func TestUnionMergeConflictMode(t *testing.T) {
	fake := newPlatformFake()
	platform := httptest.NewServer(fake)
	defer platform.Close()
	bc := instancesConfig(t, "sqlite", platform.URL, false)
	bc.Accounts.UnionMerge = "conflict"
	in := start(t, bc)
	in.sandbox = platform.URL
	late := in.login(t, appLate, "mia")["user_id"].(string) // no unionid yet
	viaA := in.login(t, appA, "mia")["user_id"].(string)    // owns the unionid
	fake.switched.Store(true)
	again := in.login(t, appLate, "mia")["user_id"].(string)
	if late == viaA || again != late {
		t.Fatalf("conflict mode: late=%s viaA=%s again=%s; want two users, the login as its own", late, viaA, again)
	}
	st, _, audit := in.call(t, "GET", "/v1/admin/audit?action=identity.conflict", adminKey, nil)
	if st != 200 || len(audit["events"].([]any)) != 1 {
		t.Fatalf("audit: %d %v", st, audit)
	}
	ev := audit["events"].([]any)[0].(map[string]any)["details"].(map[string]any)
	if ev["union_owner"] != viaA || ev["identity_owner"] != late {
		t.Fatalf("conflict details = %v", ev)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/sandbox"
)

// appLate is in union scope scope-1 on mpauth's side, but at first its
// platform sends no unionid (the app was bound to the Open Platform after
// its first users logged in): their unionids arrive late.
const appLate = "wxtest00000000009"

// platformFake fronts two sandboxes: before the switch appLate's users get
// no unionid, after it they do (openids are the same in both: they derive
// from app and user). It counts every code exchange and token fetch.
type platformFake struct {
	early, late *sandbox.Sandbox
	switched    atomic.Bool
	mu          sync.Mutex
	exchanges   map[string]int // by js_code
	tokenCalls  atomic.Int32
}

func newPlatformFake() *platformFake {
	secret := "secret-late"
	return &platformFake{
		early: sandbox.New([]provider.App{{Platform: "wechat", AppID: appLate, Secret: secret}}),
		late: sandbox.New([]provider.App{
			{Platform: "wechat", AppID: appA, Secret: "secret-a", UnionScope: "scope-1"},
			{Platform: "wechat", AppID: appB, Secret: "secret-b", UnionScope: "scope-1"},
			{Platform: "wechat", AppID: appLate, Secret: secret, UnionScope: "scope-1"},
		}),
		exchanges: map[string]int{},
	}
}

func (f *platformFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("appid")
	if r.URL.Path == "/sandbox/codes" {
		var body struct {
			AppID string `json:"app_id"`
		}
		raw, _ := readAll(r)
		_ = json.Unmarshal(raw, &body)
		app = body.AppID
		r.Body = ioNopCloser(raw)
	}
	switch r.URL.Path {
	case "/sns/jscode2session":
		f.mu.Lock()
		f.exchanges[r.URL.Query().Get("js_code")]++
		f.mu.Unlock()
	case "/cgi-bin/stable_token":
		f.tokenCalls.Add(1)
		raw, _ := readAll(r)
		var body struct {
			AppID string `json:"appid"`
		}
		_ = json.Unmarshal(raw, &body)
		app = body.AppID
		r.Body = ioNopCloser(raw)
	}
	if app == appLate && !f.switched.Load() {
		f.early.ServeHTTP(w, r)
		return
	}
	f.late.ServeHTTP(w, r)
}

// instancesConfig is three instances' config: one database (and data dir, so
// one dev signing key), the fake platform, no built-in sandbox.
func instancesConfig(t *testing.T, driver, platformURL string, redis bool) *conf.Bootstrap {
	bc := testConfig(t, driver)
	bc.Sandbox.Enabled = false
	bc.Apps = []*conf.App{
		{Platform: "wechat", AppId: appA, Secret: "secret-a", UnionScope: "scope-1", Endpoint: platformURL, Timeout: durationpb.New(5 * time.Second)},
		{Platform: "wechat", AppId: appB, Secret: "secret-b", UnionScope: "scope-1", Endpoint: platformURL, Timeout: durationpb.New(5 * time.Second)},
		{Platform: "wechat", AppId: appLate, Secret: "secret-late", UnionScope: "scope-1", Endpoint: platformURL, Timeout: durationpb.New(5 * time.Second)},
	}
	bc.Log.Level = "warn"
	if redis {
		bc.Redis = &conf.Redis{Addr: "127.0.0.1:6379"}
	}
	return bc
}

// TestThreeInstancesShareOneDatabase drives concurrent logins of the same
// people across three instances on one database: retried codes sent to
// several instances, late unionids merging accounts mid-flight, refreshes
// raced across instances, and phone lookups needing the platform access
// token. One user per person, no lost session, one platform call per code,
// one access-token fetch for all instances.
func TestThreeInstancesShareOneDatabase(t *testing.T) {
	driver := "mysql"
	if os.Getenv(dbtest.MySQLDSNEnv) == "" {
		driver = "sqlite" // CI always sets the DSN; this keeps a bare `go test` meaningful
	}
	for _, redis := range []bool{false, true} {
		t.Run(fmt.Sprintf("%s/redis=%v", driver, redis), func(t *testing.T) {
			fake := newPlatformFake()
			platform := httptest.NewServer(fake)
			defer platform.Close()

			base := instancesConfig(t, driver, platform.URL, redis)
			var ins []*instance
			for i := 0; i < 3; i++ {
				ins = append(ins, start(t, proto.Clone(base).(*conf.Bootstrap)))
			}
			t.Cleanup(func() {
				if t.Failed() {
					for i, in := range ins {
						for _, l := range strings.Split(in.logs.String(), "\n") {
							if strings.Contains(l, "ERROR") || strings.Contains(l, "WARN") {
								t.Logf("instance %d: %.600s", i, l)
							}
						}
					}
				}
			})
			for _, in := range ins {
				in.sandbox = platform.URL // codes are minted through the fake
			}
			const people = 12
			person := func(i int) string { return fmt.Sprintf("person-%02d", i) }

			// Phase 1: every person logs in through appLate (no unionid yet)
			// and through appA (unionid), each code sent to all three
			// instances at once. Different users for now: nothing links them.
			type result struct {
				status int
				body   map[string]any
			}
			// strict: every answer to one code names the same user and session
			// (phase 1); once merges happen, a replay may answer with the
			// surviving user in a new session — the final checks cover that.
			strict := true
			loginEverywhere := func(app, user string) []result {
				code := ins[0].mintCode(t, app, user)
				out := make([]result, len(ins))
				var wg sync.WaitGroup
				for i, in := range ins {
					wg.Add(1)
					go func(i int, in *instance) {
						defer wg.Done()
						st, _, body := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": app, "code": code})
						out[i] = result{st, body}
					}(i, in)
				}
				wg.Wait()
				for i, r := range out {
					if r.status != 200 {
						t.Errorf("%s %s on instance %d: %d %v", app, user, i, r.status, r.body)
						return nil
					}
					if strict && (r.body["user_id"] != out[0].body["user_id"] || sidOf(t, r.body["access_token"].(string)) != sidOf(t, out[0].body["access_token"].(string))) {
						t.Errorf("%s %s: one code gave two logins: %v vs %v", app, user, r.body["user_id"], out[0].body["user_id"])
					}
				}
				return out
			}
			var wg sync.WaitGroup
			for p := 0; p < people; p++ {
				for _, app := range []string{appLate, appA} {
					wg.Add(1)
					go func(app, user string) { defer wg.Done(); loginEverywhere(app, user) }(app, person(p))
				}
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}

			// Phase 2: appLate's platform now sends unionids. Each person logs
			// in through appLate, appA and appB at once, across instances:
			// the late unionid merges their two users while logins race.
			fake.switched.Store(true)
			strict = false
			finals := make([][]result, people)
			for p := 0; p < people; p++ {
				for _, app := range []string{appLate, appA, appB} {
					wg.Add(1)
					go func(p int, app string) {
						defer wg.Done()
						r := loginEverywhere(app, person(p))
						fake.mu.Lock()
						finals[p] = append(finals[p], r...)
						fake.mu.Unlock()
					}(p, app)
				}
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}

			// One platform call per code.
			fake.mu.Lock()
			for code, n := range fake.exchanges {
				if n != 1 {
					t.Errorf("code %s…: %d platform calls, want 1", code[:6], n)
				}
			}
			if len(fake.exchanges) != people*5 {
				t.Errorf("%d codes reached the platform, want %d", len(fake.exchanges), people*5)
			}
			fake.mu.Unlock()

			// One user per person: every token of a person — including those
			// issued to the merged-away user — introspects to one user id, and
			// every login is still a live session.
			for p := 0; p < people; p++ {
				users := map[string]bool{}
				for _, r := range finals[p] {
					st, _, got := ins[p%3].call(t, "POST", "/v1/tokens/introspect", backendKey, map[string]string{"token": r.body["access_token"].(string)})
					if st != 200 || got["active"] != true {
						t.Fatalf("%s: a session was lost: %d %v", person(p), st, got)
					}
					users[got["user_id"].(string)] = true
				}
				if len(users) != 1 {
					t.Fatalf("%s is split across users %v", person(p), users)
				}
				// A fresh login through each app lands on that one user too.
				for _, app := range []string{appLate, appA, appB} {
					got := ins[(p+1)%3].login(t, app, person(p))
					if !users[got["user_id"].(string)] {
						t.Fatalf("%s via %s = %v, want one of %v", person(p), app, got["user_id"], users)
					}
				}
			}
			st, _, list := ins[0].call(t, "GET", "/v1/admin/users?page_size=500", adminKey, nil)
			if st != 200 {
				t.Fatalf("list users: %d %v", st, list)
			}
			canonical := 0
			for _, u := range list["users"].([]any) {
				m := u.(map[string]any)
				if m["merged_into"] == "" {
					canonical++
					if n := len(m["identities"].([]any)); n != 3 {
						t.Errorf("user %v has %d identities, want 3 (appLate, appA, appB)", m["user_id"], n)
					}
				}
			}
			if canonical != people {
				t.Fatalf("%d users for %d people", canonical, people)
			}

			// Refresh races: each refresh token sent to all three instances at
			// once rotates exactly once; the losers are refused without
			// revoking the session.
			for p := 0; p < people; p++ {
				tok := ins[0].login(t, appA, person(p))
				var ok atomic.Int32
				var next atomic.Value
				for _, in := range ins {
					wg.Add(1)
					go func(in *instance) {
						defer wg.Done()
						st, _, body := in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)})
						switch {
						case st == 200:
							ok.Add(1)
							next.Store(body["refresh_token"].(string))
						case body["reason"] != "REFRESH_TOKEN_INVALID":
							t.Errorf("losing refresh: %d %v", st, body)
						}
					}(in)
				}
				wg.Wait()
				if ok.Load() != 1 {
					t.Fatalf("%d refreshes of one token succeeded, want 1", ok.Load())
				}
				if st, _, body := ins[2].call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": next.Load().(string)}); st != 200 {
					t.Fatalf("the winner's session was revoked by the race: %d %v", st, body)
				}
			}

			// One platform access-token fetch, shared by all instances.
			for i := 0; i < 6; i++ {
				in := ins[i%3]
				access := in.login(t, appA, person(i))["access_token"].(string)
				code := in.sandboxPost(t, "/sandbox/wechat/phone-codes", map[string]any{"app_id": appA, "user": person(i), "phone": fmt.Sprintf("1380013800%d", i)})["code"]
				if st, _, body := in.call(t, "POST", "/v1/me/phone", access, map[string]any{"code": code}); st != 200 {
					t.Fatalf("phone: %d %v", st, body)
				}
			}
			if n := fake.tokenCalls.Load(); n != 1 {
				t.Fatalf("%d stable_token calls for three instances, want 1", n)
			}
		})
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func ioNopCloser(b []byte) *nopCloser { return &nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/identity"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/wechat"
	"github.com/mpauth/mpauth/internal/token"
)

func TestCodesNameTheirUserAndNeverRepeat(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []uint64{0, 1, 9999, newUserBase + 1, newUserBase + 123456789} {
		for i := 0; i < 3; i++ {
			c := codeOf(n)
			if len(c) != codeLen {
				t.Fatalf("codeOf(%d) = %q: %d chars, want %d", n, c, len(c), codeLen)
			}
			if seen[c] {
				t.Fatalf("codeOf(%d) repeated %q", n, c)
			}
			seen[c] = true
			got, ok := userOfCode(c)
			if !ok || got != n {
				t.Fatalf("userOfCode(%q) = %d, %v; want %d", c, got, ok, n)
			}
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("b", codeLen), "b000000000001z00000000000000000g"} {
		if _, ok := userOfCode(bad); ok {
			t.Errorf("userOfCode(%q) accepted a code it never minted", bad)
		}
	}
}

// The fake answers in WeChat's format: the product's decoder reads it.
func TestFakeWeChatSpeaksCode2Session(t *testing.T) {
	f := newFakeWeChat("wxapp", "s3cret")
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wechat.Path {
			calls.Add(1)
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ask := func(appID, secret, code string) (*wechat.Session, error) {
		q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
		resp, err := http.Get(srv.URL + wechat.Path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return wechat.Decode(resp.StatusCode, body)
	}
	a, err := ask("wxapp", "s3cret", codeOf(42))
	if err != nil {
		t.Fatalf("valid code: %v", err)
	}
	b, err := ask("wxapp", "s3cret", codeOf(42))
	if err != nil {
		t.Fatalf("valid code: %v", err)
	}
	if a.OpenID != openIDOf(42) || b.OpenID != a.OpenID {
		t.Errorf("openids %q, %q; want %q for both logins of user 42", a.OpenID, b.OpenID, openIDOf(42))
	}
	if a.SessionKey == "" || a.SessionKey == b.SessionKey {
		t.Errorf("session keys %q, %q: want a valid, fresh one per login", a.SessionKey, b.SessionKey)
	}
	for _, tc := range []struct {
		name, appID, secret, code string
		kind                      error
	}{
		{"unknown code", "wxapp", "s3cret", "not-a-code", provider.ErrCodeInvalid},
		{"wrong secret", "wxapp", "nope", codeOf(1), provider.ErrMisconfigured},
		{"wrong app", "wxother", "s3cret", codeOf(1), provider.ErrMisconfigured},
	} {
		if _, err := ask(tc.appID, tc.secret, tc.code); !errors.Is(err, tc.kind) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.kind)
		}
	}
	if got := calls.Load(); got != 5 {
		t.Errorf("calls = %d, want 5", got)
	}
}

func TestPercentilesAreNearestRank(t *testing.T) {
	var lats []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	p50, p95, p99, worst := percentiles(lats)
	if p50 != 50 || p95 != 95 || p99 != 99 || worst != 100 {
		t.Errorf("percentiles = %v %v %v %v, want 50 95 99 100", p50, p95, p99, worst)
	}
	if a, b, c, d := percentiles(nil); a+b+c+d != 0 {
		t.Errorf("percentiles(nil) not zero")
	}
}

func TestPhaseCountsFailuresByReason(t *testing.T) {
	var n atomic.Int64
	do := func(ctx context.Context, rng *mrand.Rand) error {
		if n.Add(1)%4 == 0 {
			return errors.New("HTTP 503 STORAGE_UNAVAILABLE")
		}
		return nil
	}
	r := phase{conc: 4, warmup: 20 * time.Millisecond, measure: 200 * time.Millisecond}.run(context.Background(), do)
	if r.Requests == 0 || r.Errors == 0 || r.Errors >= r.Requests {
		t.Fatalf("requests %d, errors %d: want some of each", r.Requests, r.Errors)
	}
	if r.ErrorReasons["HTTP 503 STORAGE_UNAVAILABLE"] != r.Errors {
		t.Errorf("reasons %v do not add up to %d errors", r.ErrorReasons, r.Errors)
	}
	if int64(r.Requests) >= n.Load() {
		t.Errorf("measured %d of %d calls: warmup calls must not be counted", r.Requests, n.Load())
	}
	if r.PerSecond <= 0 || r.P99ms < r.P50ms {
		t.Errorf("rate %v, p50 %v, p99 %v", r.PerSecond, r.P50ms, r.P99ms)
	}
}

func TestPacedPhaseStartsTheScheduledRequests(t *testing.T) {
	var n atomic.Int64
	do := func(ctx context.Context, rng *mrand.Rand) error { n.Add(1); return nil }
	r := phase{conc: 8, warmup: 0, measure: 500 * time.Millisecond, rate: 200}.run(context.Background(), do)
	// 100 scheduled starts; generous bounds (no timing assertion).
	if r.Requests < 50 || r.Requests > 101 {
		t.Errorf("paced at 200/s for 0.5s: %d requests, want about 100", r.Requests)
	}
}

func TestPairAlternatesAndAddsUpEachSide(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string // the sides in the order they ran, repeats folded
	)
	mark := func(side string) op {
		return func(ctx context.Context, rng *mrand.Rand) error {
			mu.Lock()
			if len(order) == 0 || order[len(order)-1] != side {
				order = append(order, side)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			if side == "b" {
				return errors.New("HTTP 500")
			}
			return nil
		}
	}
	a, b := pair(context.Background(), phase{conc: 2, warmup: 10 * time.Millisecond, measure: 200 * time.Millisecond}, 4, mark("a"), mark("b"))
	if a.Rounds != 4 || b.Rounds != 4 {
		t.Fatalf("rounds %d, %d; want 4 each", a.Rounds, b.Rounds)
	}
	// a b, b a, a b, b a: the order is mirrored every round.
	if got := strings.Join(order, " "); got != "a b a b a" {
		t.Errorf("sides ran as %q, want a b a b a (a b b a a b b a)", got)
	}
	if a.Requests == 0 || a.Errors != 0 || len(a.lats) != a.Requests {
		t.Errorf("side a: %+v", a)
	}
	if b.Requests == 0 || b.Errors != b.Requests || b.ErrorReasons["HTTP 500"] != b.Requests || b.PerSecond != 0 {
		t.Errorf("side b: %+v", b)
	}
	if a.Seconds < 0.2 || a.PerSecond <= 0 {
		t.Errorf("side a measured %.3fs at %.0f/s: the slices must add up", a.Seconds, a.PerSecond)
	}
	if len(a.SlicePerSecond) != 4 || len(b.SlicePerSecond) != 4 {
		t.Fatalf("slice rates %v, %v: want one per round", a.SlicePerSecond, b.SlicePerSecond)
	}
	for i, r := range a.SlicePerSecond {
		if r <= 0 || b.SlicePerSecond[i] != 0 {
			t.Errorf("round %d: a %.0f/s, b %.0f/s; want a's successes only", i, r, b.SlicePerSecond[i])
		}
	}
}

func TestRoundRatiosPairTheSlicesOfEachRound(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float64
		want []float64
	}{
		{"round by round", []float64{90, 80, 100}, []float64{100, 100, 100}, []float64{0.9, 0.8, 1}},
		{"a side with no rounds", nil, []float64{100, 100}, nil},
		{"a round the minimal answered nothing", []float64{50, 50}, []float64{100, 0}, []float64{0.5, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roundRatios(Result{SlicePerSecond: tc.a}, Result{SlicePerSecond: tc.b})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := spread([]float64{0.93, 0.81, 0.88}); got != "0.81–0.93" {
		t.Errorf("spread %q, want 0.81–0.93", got)
	}
	if got := spread([]float64{0.9}); got != "–" {
		t.Errorf("spread of one round %q, want –", got)
	}
}

func TestFailureNamesTheReason(t *testing.T) {
	if got := failure(429, []byte(`{"code":429,"reason":"RATE_LIMITED","message":"x"}`)).Error(); got != "HTTP 429 RATE_LIMITED" {
		t.Errorf("got %q", got)
	}
	if got := failure(503, []byte(`{"code": 503, "reason": "STORAGE_UNAVAILABLE"}`)).Error(); got != "HTTP 503 STORAGE_UNAVAILABLE" {
		t.Errorf("got %q", got)
	}
	if got := failure(502, []byte(`<html>`)).Error(); got != "HTTP 502" {
		t.Errorf("got %q", got)
	}
}

// The seeded rows and the minimal login's statements fit mpauth's schema
// as migrated today: seeded identities read back through ent with their
// session_key sealed as mpauth seals it, a seeded user logs in as returning
// (its session_key rewritten sealed, at the same size), a new code creates a
// user.
func TestMinimalLoginAndSeedingOnMpauthSchema(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			c := dbtest.Config(t, driver)
			box := dbtest.Box(t)
			dbtest.OpenConfig(t, c, box) // migrated as mpauth migrates
			source := c.Database.Source
			if driver == "sqlite" {
				source = data.SQLiteDSN(source)
			}
			db, err := openSQL(driver, source, poolFor(driver))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			dialect := map[string]string{"sqlite": "sqlite3", "mysql": "mysql"}[driver]
			client := ent.NewClient(ent.Driver(entsql.OpenDB(dialect, db)))

			if err := seedUsers(ctx, driver, source, box, benchPlatform, benchAppID, 0, 1200); err != nil {
				t.Fatalf("seed: %v", err)
			}
			if n, err := countIdentities(ctx, db); err != nil || n != 1200 {
				t.Fatalf("identities = %d, %v; want 1200", n, err)
			}
			seeded, err := client.Identity.Query().Where(identity.Openid(openIDOf(1100))).WithOwner().Only(ctx)
			if err != nil {
				t.Fatalf("ent reading a seeded identity: %v", err)
			}
			if seeded.Edges.Owner == nil || seeded.Edges.Owner.ID != seeded.UserID || seeded.LastLoginAt.IsZero() {
				t.Fatalf("seeded identity %+v does not read back whole", seeded)
			}
			aad := data.SessionKeyAAD(benchPlatform, benchAppID, openIDOf(1100))
			if key, err := box.Open(seeded.SessionKey, aad...); err != nil || len(key) != 24 {
				t.Fatalf("seeded session_key does not open as a WeChat session_key: %d bytes, %v", len(key), err)
			}

			fake := httptest.NewServer(newFakeWeChat(benchAppID, benchSecret))
			defer fake.Close()
			tokens := testTokens(t)
			m, err := newMinimal(db, driver, fake.URL, benchAppID, benchSecret, tokens, box)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(m)
			defer srv.Close()
			login := func(user uint64) tokenReply {
				t.Helper()
				body := fmt.Sprintf(`{"platform":"wechat","app_id":%q,"code":%q}`, benchAppID, codeOf(user))
				resp, err := http.Post(srv.URL+"/v1/auth/login", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("minimal login: %d %s", resp.StatusCode, b)
				}
				var r tokenReply
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				if _, err := tokens.Verify(r.AccessToken); err != nil {
					t.Fatalf("access token does not verify: %v", err)
				}
				return r
			}
			ret := login(1100)
			if ret.IsNewUser || ret.UserID != seeded.UserID {
				t.Errorf("returning login: user %q new %v, want seeded user %q", ret.UserID, ret.IsNewUser, seeded.UserID)
			}
			after := client.Identity.Query().Where(identity.Openid(openIDOf(1100))).OnlyX(ctx)
			if after.SessionKey == seeded.SessionKey || len(after.SessionKey) != len(seeded.SessionKey) {
				t.Errorf("returning login stored session_key of %d bytes (seeded %d, changed %v): want a new one of the same size",
					len(after.SessionKey), len(seeded.SessionKey), after.SessionKey != seeded.SessionKey)
			}
			if _, err := box.Open(after.SessionKey, aad...); err != nil {
				t.Errorf("the minimal login's session_key does not open as mpauth would: %v", err)
			}
			first := login(newUserBase + 7)
			again := login(newUserBase + 7)
			if !first.IsNewUser || again.IsNewUser || again.UserID != first.UserID {
				t.Errorf("new user then again: %+v, %+v", first, again)
			}
			var sessions, refresh int
			_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions").Scan(&sessions)
			_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens").Scan(&refresh)
			if sessions != 3 || refresh != 3 {
				t.Errorf("sessions %d, refresh tokens %d: want one each per login (3)", sessions, refresh)
			}
			var done int
			_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM code_exchanges WHERE state = 'done'").Scan(&done)
			if done != 3 {
				t.Errorf("%d done code records, want 3", done)
			}

			// Allocations per login are read from /metrics, as from mpauth's.
			b := &bench{client: srv.Client()}
			p := &proc{name: "minimal login", url: srv.URL}
			before, err := b.memStats(ctx, p)
			if err != nil {
				t.Fatalf("memStats: %v", err)
			}
			login(1101)
			grown, err := b.memStats(ctx, p)
			if err != nil {
				t.Fatalf("memStats: %v", err)
			}
			if grown.mallocs <= before.mallocs || grown.bytes <= before.bytes {
				t.Errorf("allocation counters did not grow over a login: %+v then %+v", before, grown)
			}
		})
	}
}

func testTokens(t *testing.T) *token.Manager {
	t.Helper()
	pemBytes, err := token.NewEd25519PEM()
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.ParsePrivateKeyPEM("t", pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := benchTokens(k)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTargetsAreJudgedOnMySQLWhenMeasured(t *testing.T) {
	res := func(rate, p99 float64, errs int) Result { return Result{PerSecond: rate, P99ms: p99, Errors: errs} }
	r := &Report{Ceilings: Ceilings{BareKratos: &Result{PerSecond: 10000}}}
	r.Drivers = []*DriverReport{
		{Driver: "sqlite", Login: []LoginRow{{Users: "new", Concurrency: 1, Mpauth: res(100, 1, 0), Minimal: res(100, 1, 0), Ratio: 1}}},
		{Driver: "mysql",
			Login: []LoginRow{
				{Users: "new", Concurrency: 1, Mpauth: res(300, 4, 0), Ratio: 0.9},
				{Users: "new", Concurrency: 8, Mpauth: res(800, 12, 1), Ratio: 0.8, RoundRatios: []float64{0.84, 0.76, 0.8, 0.81}},
			},
			HalfCapacity:       []PacedRow{{Users: "new", Result: res(400, 20, 0)}},
			Introspection:      &Result{PerSecond: 5000},
			IntrospectionRatio: 0.5,
			Growth: &Growth{Points: []GrowthPoint{
				{Identities: 10000, Returning: Result{SlicePerSecond: []float64{100, 100}}, New: Result{SlicePerSecond: []float64{100, 100}}},
				{Identities: 1000000, Returning: Result{SlicePerSecond: []float64{95, 85}}, New: Result{SlicePerSecond: []float64{86, 86}}},
			}, ReturningRatio: 0.9, NewRatio: 0.86},
		},
		{Driver: "mysql", Skipped: "MySQL part skipped: nope"},
	}
	r.finish()
	want := map[string]bool{
		"login ÷ minimal login (lowest over the sweep)": false,
		"login errors (sweep, paced, growth)":           false,
		"introspection ÷ bare kratos handler":           true,
		"login p99 at 1 connection (ms)":                true,
		"login p99 at half of capacity (ms)":            false,
		"login at 1M ÷ at 10k identities":               true,
	}
	if len(r.Targets) != len(want) {
		t.Fatalf("targets %+v, want %d", r.Targets, len(want))
	}
	for _, tg := range r.Targets {
		met, ok := want[tg.Name]
		if !ok || tg.Driver != "mysql" || tg.Met != met {
			t.Errorf("target %+v: want driver mysql, met %v (known: %v)", tg, met, ok)
		}
		if strings.HasPrefix(tg.Name, "login ÷") && !strings.Contains(tg.Detail, "the lowest (new, 8 conn) by round 0.76–0.84") {
			t.Errorf("login ratio detail %q: want the lowest row's rounds", tg.Detail)
		}
		if strings.HasPrefix(tg.Name, "login at 1M") && !strings.Contains(tg.Detail, "by round returning 0.85–0.95, new 0.86–0.86") {
			t.Errorf("growth detail %q: want the rounds", tg.Detail)
		}
	}
	var out strings.Builder
	r.print(&out)
	if !strings.Contains(out.String(), "NOT MET") || !strings.Contains(out.String(), "MySQL part skipped: nope") ||
		!strings.Contains(out.String(), "0.76–0.84") {
		t.Errorf("table lacks the verdicts, the skip line or the ratios by round:\n%s", out.String())
	}
}

// countIdentities is the size of the identities table.
func countIdentities(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM identities").Scan(&n)
	return n, err
}

package biz_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-sql-driver/mysql"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/wechat"
	"github.com/mpauth/mpauth/internal/sandbox"
	"github.com/mpauth/mpauth/internal/token"
)

const wx = provider.WeChat

// The test apps. What the sandbox (the "platform") knows of each app differs
// from the server's configuration for some of them, on purpose.
const (
	appA1   = "wx-a1"   // union scope scope-a
	appA2   = "wx-a2"   // union scope scope-a
	appB1   = "wx-b1"   // union scope scope-b
	appNone = "wx-none" // the platform sends unionids of scope-a; the server configures no scope
	appLate = "wx-late" // like wx-none; the late-unionid test reconfigures it with scope-a
	appBad  = "wx-bad"  // the server is configured with the wrong secret
)

// platformApps is the sandbox's (the platform's) view of the apps.
var platformApps = []provider.App{
	{Platform: wx, AppID: appA1, Secret: "sec-a1", UnionScope: "scope-a"},
	{Platform: wx, AppID: appA2, Secret: "sec-a2", UnionScope: "scope-a"},
	{Platform: wx, AppID: appB1, Secret: "sec-b1", UnionScope: "scope-b"},
	{Platform: wx, AppID: appNone, Secret: "sec-none", UnionScope: "scope-a"},
	{Platform: wx, AppID: appLate, Secret: "sec-late", UnionScope: "scope-a"},
	{Platform: wx, AppID: appBad, Secret: "sec-right"},
}

// serverApps is the server's configuration of the same apps, pointed at the
// sandbox at endpoint. override replaces the entries of the same app id.
func serverApps(endpoint string, override ...provider.App) []provider.App {
	apps := []provider.App{
		{Platform: wx, AppID: appA1, Secret: "sec-a1", UnionScope: "scope-a"},
		{Platform: wx, AppID: appA2, Secret: "sec-a2", UnionScope: "scope-a"},
		{Platform: wx, AppID: appB1, Secret: "sec-b1", UnionScope: "scope-b"},
		{Platform: wx, AppID: appNone, Secret: "sec-none"},
		{Platform: wx, AppID: appLate, Secret: "sec-late"},
		{Platform: wx, AppID: appBad, Secret: "sec-wrong"},
	}
	for i := range apps {
		for _, o := range override {
			if o.AppID == apps[i].AppID {
				apps[i] = o
			}
		}
		apps[i].Endpoint = endpoint
		apps[i].Timeout = 5 * time.Second
	}
	return apps
}

const refreshTTL = time.Hour

// clock is the usecase's clock: real time shifted by an adjustable offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one login server over real components: a running sandbox, the
// WeChat provider, a token manager and the repositories on a fresh database.
type env struct {
	t        *testing.T
	driver   string
	sandbox  string // the sandbox's URL
	db       *data.Data
	raw      *sql.DB // a second connection, for counting rows
	tx       biz.Transaction
	accounts biz.AccountRepo
	sessions biz.SessionRepo
	audit    biz.AuditRepo
	codes    biz.CodeExchangeRepo
	tokens   *token.Manager
	clock    *clock
	uc       *biz.AuthUsecase
}

// eachDriver runs fn as a subtest on a fresh env of every driver.
func eachDriver(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) { fn(t, newEnv(t, driver)) })
	}
}

// eachRaceVariant is eachDriver plus, when the MySQL server is a MariaDB
// that has it, MySQL with innodb_snapshot_isolation=ON (MariaDB's default
// since 11.6.2), under which a transaction that lost a write race fails with
// error 1020 instead of waiting and seeing the winner's row.
func eachRaceVariant(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	eachDriver(t, fn)
	if slices.Contains(dbtest.Drivers(), "mysql") && hasSnapshotIsolation(t) {
		t.Run("mysql_snapshot_isolation", func(t *testing.T) {
			fn(t, newEnv(t, "mysql", "innodb_snapshot_isolation=ON"))
		})
	}
}

// hasSnapshotIsolation reports whether the test MySQL server knows
// innodb_snapshot_isolation.
func hasSnapshotIsolation(t *testing.T) bool {
	t.Helper()
	db, err := sql.Open("mysql", os.Getenv(dbtest.MySQLDSNEnv))
	if err != nil {
		t.Fatalf("%s: %v", dbtest.MySQLDSNEnv, err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT @@innodb_snapshot_isolation").Scan(&v); err != nil {
		t.Logf("no innodb_snapshot_isolation on this server (%v): only the default variant runs", err)
		return false
	}
	return true
}

// newEnv returns an env on a fresh database of driver; sessionVars
// ("name=value") are set on every MySQL connection.
func newEnv(t *testing.T, driver string, sessionVars ...string) *env {
	t.Helper()
	quiet := log.NewStdLogger(discard{})

	sb := sandbox.New(platformApps, sandbox.WithAddr("127.0.0.1:0"), sandbox.WithLogger(quiet))
	url, err := sb.Listen()
	if err != nil {
		t.Fatalf("sandbox listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Start(ctx) }()
	t.Cleanup(func() {
		// Short: net/http's Shutdown waits 5 s for connections a client
		// dialled but never used (the racing logins leave some); Stop then
		// closes them.
		sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer scancel()
		if err := sb.Stop(sctx); err != nil {
			t.Errorf("sandbox stop: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("sandbox start: %v", err)
		}
		cancel()
	})

	// dbtest.Open, keeping the config to open a second connection.
	cfg := dbtest.Config(t, driver)
	if len(sessionVars) > 0 {
		mc, err := mysql.ParseDSN(cfg.GetDatabase().GetSource())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range sessionVars {
			name, value, _ := strings.Cut(v, "=")
			if mc.Params == nil {
				mc.Params = map[string]string{}
			}
			mc.Params[name] = value
		}
		cfg.Database.Source = mc.FormatDSN()
	}
	d, err := data.Open(cfg, quiet, data.WithSecretBox(dbtest.Box(t)))
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", driver, err)
	}
	raw, err := sql.Open(driver, cfg.GetDatabase().GetSource())
	if err != nil {
		t.Fatalf("raw %s connection: %v", driver, err)
	}
	t.Cleanup(func() { _ = raw.Close() })

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Config{
		Issuer: "https://mpauth.test", Audience: "mpauth-test", TTL: 15 * time.Minute,
		Keys: []token.Key{{ID: "test-key", Signer: priv}},
	})
	if err != nil {
		t.Fatalf("token.New: %v", err)
	}

	e := &env{
		t: t, driver: driver, sandbox: url, db: d, raw: raw,
		tx: data.NewTransaction(d), accounts: data.NewAccountRepo(d), sessions: data.NewSessionRepo(d), audit: data.NewAuditRepo(d),
		codes:  data.NewCodeExchangeRepo(d),
		tokens: tokens, clock: &clock{},
	}
	e.uc = e.usecase()
	return e
}

// usecase returns an AuthUsecase with the default settings on e's database,
// token manager and clock, whose registry is serverApps(e.sandbox,
// override...).
func (e *env) usecase(override ...provider.App) *biz.AuthUsecase {
	e.t.Helper()
	return e.usecaseWith(biz.AuthConfig{RefreshTokenTTL: refreshTTL}, override...)
}

// usecaseWith is usecase with the given settings.
func (e *env) usecaseWith(cfg biz.AuthConfig, override ...provider.App) *biz.AuthUsecase {
	e.t.Helper()
	reg, err := provider.NewRegistry(serverApps(e.sandbox, override...), map[string]provider.Factory{wx: wechat.New}, provider.Env{})
	if err != nil {
		e.t.Fatalf("NewRegistry: %v", err)
	}
	unifier := biz.NewUnifier(e.accounts, e.sessions, e.audit)
	uc := biz.NewAuthUsecase(reg, e.tx, e.accounts, e.sessions, e.audit, e.codes, e.tokens, unifier, biz.NoLoginLimit{}, cfg, &testLogger{t: e.t})
	biz.SetClock(uc, e.clock.Now)
	return uc
}

// code mints a login code of user on appID.
func (e *env) code(appID, user string) string {
	e.t.Helper()
	c, err := sandbox.MintCode(context.Background(), e.sandbox, wx, appID, user)
	if err != nil {
		e.t.Fatalf("MintCode(%s, %s): %v", appID, user, err)
	}
	return c
}

// login logs user in through appID with a fresh code and fails the test on
// an error.
func (e *env) login(uc *biz.AuthUsecase, appID, user string) *biz.TokenPair {
	e.t.Helper()
	p, err := uc.Login(context.Background(), wx, appID, provider.Credentials{Code: e.code(appID, user)})
	if err != nil {
		e.t.Fatalf("Login(%s, %s): %v", appID, user, err)
	}
	return p
}

// rowCounts counts the rows of every table a login or refresh writes.
type rowCounts struct {
	Users, Identities, Unions, Sessions, RefreshTokens, AuditEvents, CodeExchanges int
}

func (e *env) counts() rowCounts {
	e.t.Helper()
	var c rowCounts
	for _, q := range []struct {
		table string
		n     *int
	}{
		{"users", &c.Users}, {"identities", &c.Identities}, {"union_accounts", &c.Unions},
		{"sessions", &c.Sessions}, {"refresh_tokens", &c.RefreshTokens}, {"audit_events", &c.AuditEvents},
		{"code_exchanges", &c.CodeExchanges},
	} {
		if err := e.raw.QueryRow("SELECT COUNT(*) FROM " + q.table).Scan(q.n); err != nil {
			e.t.Fatalf("counting %s: %v", q.table, err)
		}
	}
	return c
}

// auditActions lists the actions of the audit log, oldest first.
func (e *env) auditActions() []string {
	e.t.Helper()
	rows, err := e.raw.Query("SELECT action FROM audit_events ORDER BY id")
	if err != nil {
		e.t.Fatalf("reading audit events: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// identities lists userID's identities.
func (e *env) identities(userID string) []*biz.Identity {
	e.t.Helper()
	ids, err := e.accounts.ListIdentities(context.Background(), userID)
	if err != nil {
		e.t.Fatalf("ListIdentities(%s): %v", userID, err)
	}
	return ids
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// testLogger sends the usecase's warnings and errors to the test log, so a
// failing test shows what the usecase saw. The usecase logs only within the
// calls the test makes, never after the test ends.
type testLogger struct{ t *testing.T }

func (l *testLogger) Log(level log.Level, kv ...any) error {
	if level >= log.LevelWarn {
		l.t.Log(append([]any{level.String()}, kv...)...)
	}
	return nil
}

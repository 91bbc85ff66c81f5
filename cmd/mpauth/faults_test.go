package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// openDB opens the instance's database directly, as an operator would.
func openDB(t *testing.T, bc *conf.Bootstrap) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+bc.Data.Database.Source+"?_pragma=busy_timeout(10000)"
	if bc.Data.Database.Driver == "mysql" {
		driver, dsn = "mysql", bc.Data.Database.Source
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestDatabaseFailingMidLoginWritesNothing: a login whose transaction fails
// after the user and identity were inserted answers 503 STORAGE_UNAVAILABLE
// with no token, and leaves no row behind.
func TestDatabaseFailingMidLoginWritesNothing(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			bc := testConfig(t, driver)
			in := start(t, bc)
			db := openDB(t, bc)
			trigger := "CREATE TRIGGER fail_sessions BEFORE INSERT ON sessions FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected fault'"
			if driver == "sqlite" {
				trigger = "CREATE TRIGGER fail_sessions BEFORE INSERT ON sessions BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
			}
			if _, err := db.Exec(trigger); err != nil {
				t.Fatal(err)
			}
			code := in.mintCode(t, appA, "ivan")
			status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			assertError(t, status, e, 503, "STORAGE_UNAVAILABLE")
			if _, ok := e["access_token"]; ok || strings.Contains(mustJSON(e), "injected") {
				t.Fatalf("the failure leaked a token or the driver's text: %v", e)
			}
			for _, table := range []string{"users", "identities", "union_accounts", "sessions", "refresh_tokens", "code_exchanges"} {
				if n := count(t, db, "SELECT COUNT(*) FROM "+table); n != 0 {
					t.Errorf("%d rows half-written in %s", n, table)
				}
			}
			if _, err := db.Exec("DROP TRIGGER fail_sessions"); err != nil {
				t.Fatal(err)
			}
			// Healthy again: a new code logs in.
			in.login(t, appA, "ivan")
		})
	}
}

// tcpProxy forwards to target until cut, then refuses and drops everything.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestDatabaseUnreachable: with MySQL cut off, logins and authenticated
// calls answer 503 STORAGE_UNAVAILABLE promptly, without a token.
func TestDatabaseUnreachable(t *testing.T) {
	if dbtest.Drivers()[len(dbtest.Drivers())-1] != "mysql" {
		t.Log("MPAUTH_TEST_MYSQL_DSN unset: the network cut needs MySQL (CI always sets it)")
		return
	}
	bc := testConfig(t, "mysql")
	cfg, err := mysql.ParseDSN(bc.Data.Database.Source)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, cfg.Addr)
	cfg.Addr = proxy.ln.Addr().String()
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 2 * time.Second
	bc.Data.Database.Source = cfg.FormatDSN()
	bc.Data.Database.ConnMaxLifetime = durationpb.New(time.Minute)
	in := start(t, bc)
	tok := in.login(t, appA, "judy")

	proxy.Cut()
	code := in.mintCode(t, appA, "judy")
	status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	assertError(t, status, e, 503, "STORAGE_UNAVAILABLE")
	status, _, e = in.call(t, "GET", "/v1/me", tok["access_token"].(string), nil)
	assertError(t, status, e, 503, "STORAGE_UNAVAILABLE")
	status, _, e = in.call(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok["refresh_token"].(string)})
	assertError(t, status, e, 503, "STORAGE_UNAVAILABLE")
}

// TestPlatformHangingPastTheDeadline: a platform that never answers costs
// the client one app timeout, then PLATFORM_UNAVAILABLE.
func TestPlatformHangingPastTheDeadline(t *testing.T) {
	bc := testConfig(t, "sqlite")
	bc.Apps[0].Timeout = durationpb.New(300 * time.Millisecond)
	in := start(t, bc)
	in.sandboxPost(t, "/sandbox/faults", map[string]any{"platform": "wechat", "user": "slow", "error": "timeout", "count": 1})
	code := in.mintCode(t, appA, "slow")
	began := time.Now()
	status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	assertError(t, status, e, 503, "PLATFORM_UNAVAILABLE")
	// Generous bound: the point is that it does not wait for the sandbox's
	// one-minute hold.
	if d := time.Since(began); d > 20*time.Second {
		t.Fatalf("took %v: the app timeout did not bound the platform call", d)
	}
}

// TestRetriedCodeOnOneInstance: concurrent duplicates of one code reach the
// platform once; a code the platform says was used and that we never
// exchanged is CODE_USED; only the code's hash is stored.
func TestRetriedCodeOnOneInstance(t *testing.T) {
	bc := testConfig(t, "sqlite")
	in := start(t, bc)
	code := in.mintCode(t, appA, "kate")
	var wg sync.WaitGroup
	users := make([]string, 10)
	for i := range users {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, _, body := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": code})
			if st == 200 {
				users[i] = body["user_id"].(string) + "/" + sidOf(t, body["access_token"].(string))
			}
		}(i)
	}
	wg.Wait()
	for _, u := range users {
		if u == "" || u != users[0] {
			t.Fatalf("duplicates got %v, want one login for all", users)
		}
	}
	if n := strings.Count(in.logs.String(), "wechat jscode2session"); n != 1 {
		t.Fatalf("the sandbox saw %d exchanges of one code, want 1", n)
	}
	db := openDB(t, bc)
	if n := count(t, db, "SELECT COUNT(*) FROM code_exchanges WHERE code_hash = ?", code); n != 0 {
		t.Fatal("the code is stored in clear")
	}
	if n := count(t, db, "SELECT COUNT(*) FROM code_exchanges"); n != 1 {
		t.Fatalf("%d code records, want 1", n)
	}

	// Someone else (not mpauth) exchanged this code first.
	used := in.mintCode(t, appA, "kate")
	resp, err := http.Get(fmt.Sprintf("%s/sns/jscode2session?appid=%s&secret=secret-a&js_code=%s&grant_type=authorization_code", in.sandbox, appA, used))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, _, e := in.call(t, "POST", "/v1/auth/login", "", map[string]string{"platform": "wechat", "app_id": appA, "code": used})
	assertError(t, status, e, 400, "CODE_USED")
	_ = context.Background
}

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The scenarios run on each database: the login sweep (mpauth and the
// minimal login side by side), paced half-capacity logins, introspection,
// in-process verification, and growth.

// newUsers numbers the users "new user" logins create.
var newUsers atomic.Uint64

// loginOp logs in a new user (returning == 0) or one of the first returning
// seeded users, picked at random, through url's POST /v1/auth/login.
func (b *bench) loginOp(url string, returning int) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		n := newUserBase + newUsers.Add(1)
		if returning > 0 {
			n = uint64(rng.IntN(returning))
		}
		resp, err := b.login(ctx, url, n)
		if err == nil && !bytes.Contains(resp, []byte(`"access_token"`)) {
			err = errors.New("200 without access_token")
		}
		return err
	}
}

// login logs user n in through mpauth (or the minimal login) at url and
// returns the answer: an error unless it is a 200.
func (b *bench) login(ctx context.Context, url string, n uint64) ([]byte, error) {
	body := fmt.Appendf(nil, `{"platform":%q,"app_id":%q,"code":%q}`, benchPlatform, benchAppID, codeOf(n))
	status, resp, err := post(ctx, b.client, url+"/v1/auth/login", body, "")
	switch {
	case err != nil:
		return nil, err
	case status != 200:
		return nil, failure(status, resp)
	}
	return resp, nil
}

func introspectionBodies(tokens []string) [][]byte {
	out := make([][]byte, len(tokens))
	for i, t := range tokens {
		out[i] = fmt.Appendf(nil, `{"token":%q}`, t)
	}
	return out
}

// syntheticTokens are token-sized strings for the bare handler's bodies.
func syntheticTokens(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("x", 480) + fmt.Sprint(i)
	}
	return out
}

// introspectOp introspects one of the tokens as a backend does; anything
// but an active answer is a failure.
func (b *bench) introspectOp(url string, bodies [][]byte) op {
	return b.postOp(url+"/v1/tokens/introspect", "Bearer "+backendKey, bodies, func(resp []byte) error {
		if !bytes.Contains(resp, []byte(`"active":true`)) && !bytes.Contains(resp, []byte(`"active": true`)) {
			return errors.New("token not active")
		}
		return nil
	})
}

// helloOp posts one of the bodies to the bare kratos handler.
func (b *bench) helloOp(url string, bodies [][]byte) op {
	return b.postOp(url+"/hello", "", bodies, nil)
}

// postOp posts one of the bodies, picked at random, to endpoint: a failure
// unless the answer is a 200 that check (when given) accepts.
func (b *bench) postOp(endpoint, auth string, bodies [][]byte, check func(resp []byte) error) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		status, resp, err := post(ctx, b.client, endpoint, bodies[rng.IntN(len(bodies))], auth)
		switch {
		case err != nil:
			return err
		case status != 200:
			return failure(status, resp)
		case check != nil:
			return check(resp)
		}
		return nil
	}
}

// newDatabase makes a throwaway database of dr's driver (on mysql, the
// server runDriver reached).
func (b *bench) newDatabase(ctx context.Context, dr *DriverReport, mysql *mysqlServer, name string) (*database, error) {
	if mysql == nil {
		return newSQLite(b.dir, name), nil
	}
	db, err := mysql.newDatabase(ctx)
	if err != nil {
		dr.Skipped = "MySQL part skipped: " + err.Error()
	}
	return db, err
}

// runDriver runs every scenario on one database driver; for MySQL,
// dr.Skipped says why when no server is reachable.
func (b *bench) runDriver(ctx context.Context, dr *DriverReport) error {
	var mysql *mysqlServer
	if dr.Driver == "sqlite" {
		dr.Version = sqliteVersion(ctx)
	} else {
		srv, err := reachMySQL(ctx, b.opts.mysqlDSN)
		if err != nil {
			dr.Skipped = "MySQL part skipped: " + err.Error() + " (set MPAUTH_BENCH_MYSQL_DSN or -mysql-dsn)"
			return err
		}
		defer srv.close()
		dr.Version, mysql = srv.version(ctx), srv
	}
	if err := b.runSweep(ctx, dr, mysql); err != nil {
		return err
	}
	return b.runGrowth(ctx, dr, mysql)
}

// userKinds are the two kinds of login measured apart: new users, and users
// picked from the first returning seeded ones.
func (b *bench) userKinds() []struct {
	name      string
	returning int
} {
	return []struct {
		name      string
		returning int
	}{{"new", 0}, {"returning", b.opts.returning}}
}

// runSweep: the login sweep, paced logins, introspection and (once)
// in-process verification, on a database with the returning users seeded.
func (b *bench) runSweep(ctx context.Context, dr *DriverReport, mysql *mysqlServer) error {
	db, err := b.newDatabase(ctx, dr, mysql, dr.Driver+"-sweep")
	if err != nil {
		return err
	}
	defer db.drop()
	srv, err := b.startMpauth(ctx, db, dr.Driver+"-sweep")
	if err != nil {
		return err
	}
	defer srv.stop()
	sqlDB, err := openSQL(db.driver, db.source, pool{})
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	t := time.Now()
	if err := seedUsers(ctx, db.driver, db.source, b.box, benchPlatform, benchAppID, 0, uint64(b.opts.returning)); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "%s: seeded %d returning users in %.1fs\n", dr.Driver, b.opts.returning, time.Since(t).Seconds())
	mini, err := b.startMinimal(ctx, db, dr.Driver+"-sweep")
	if err != nil {
		return err
	}
	defer mini.stop()
	dr.MinimalStatements = minimalStatements

	for _, kind := range b.userKinds() {
		users, returning := kind.name, kind.returning
		a, err := b.perLogin(ctx, sqlDB, db.driver, srv, b.loginOp(srv.url, returning))
		if err != nil {
			return err
		}
		m, err := b.perLogin(ctx, sqlDB, db.driver, mini, b.loginOp(mini.url, returning))
		if err != nil {
			return err
		}
		row := PerLoginRow{Users: users, MpauthStatements: a.statements, MinimalStatements: m.statements,
			MpauthRedoBytes: a.redoBytes, MinimalRedoBytes: m.redoBytes, MpauthCPUms: a.cpuMs, MinimalCPUms: m.cpuMs,
			MpauthReads: a.reads, MinimalReads: m.reads, MpauthWrites: a.writes, MinimalWrites: m.writes, MpauthSwitches: a.switches, MinimalSwitches: m.switches,
			MpauthAllocs: a.allocs, MinimalAllocs: m.allocs, MpauthAllocBytes: a.allocBytes, MinimalAllocBytes: m.allocBytes}
		fmt.Fprintf(b.log, "%s: per %s login: statements mpauth %.2f, minimal %.2f; redo mpauth %.0f B, minimal %.0f B; server CPU mpauth %.3f ms, minimal %.3f ms; read/write syscalls mpauth %.1f/%.1f, minimal %.1f/%.1f; context switches mpauth %.1f, minimal %.1f; allocations mpauth %.0f (%.0f B), minimal %.0f (%.0f B)\n",
			dr.Driver, users, a.statements, m.statements, a.redoBytes, m.redoBytes, a.cpuMs, m.cpuMs, a.reads, a.writes, m.reads, m.writes, a.switches, m.switches, a.allocs, a.allocBytes, m.allocs, m.allocBytes)
		dr.PerLogin = append(dr.PerLogin, row)
	}

	for _, kind := range b.userKinds() {
		users, returning := kind.name, kind.returning
		for _, c := range b.opts.conc {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row := LoginRow{Users: users, Concurrency: c}
			name := fmt.Sprintf("%s-login-%s-c%d", dr.Driver, users, c)
			prof := c == 32 || len(b.opts.conc) == 1
			if prof && srv.pprof != "" {
				// Profiled apart, one whole phase each.
				b.profiled(name, func() { row.Mpauth = b.phase(c, 0).run(ctx, b.loginOp(srv.url, returning)) }, srv)
				b.profiled(name, func() { row.Minimal = b.phase(c, 0).run(ctx, b.loginOp(mini.url, returning)) }, mini)
			} else {
				row.Mpauth, row.Minimal = pair(ctx, b.phase(c, 0), b.opts.rounds, b.loginOp(srv.url, returning), b.loginOp(mini.url, returning))
			}
			b.progress(fmt.Sprintf("%s login %s c=%d mpauth", dr.Driver, users, c), row.Mpauth)
			b.progress(fmt.Sprintf("%s login %s c=%d minimal", dr.Driver, users, c), row.Minimal)
			row.Ratio = ratio(row.Mpauth.PerSecond, row.Minimal.PerSecond)
			row.RoundRatios = roundRatios(row.Mpauth, row.Minimal)
			dr.Login = append(dr.Login, row)
		}
	}

	// Half of capacity: paced at half mpauth's best closed-loop throughput.
	for _, kind := range b.userKinds() {
		users, returning := kind.name, kind.returning
		best := 0.0
		for _, r := range dr.Login {
			if r.Users == users {
				best = max(best, r.Mpauth.PerSecond)
			}
		}
		if best <= 0 {
			continue
		}
		// The minimal login at the same rate, alternating, tells how much
		// of the tail is the database's.
		var r, m Result
		p := b.phase(b.opts.pacedConc, best/2)
		b.profiledFor(fmt.Sprintf("%s-paced-%s", dr.Driver, users), pairDuration(p, b.opts.rounds), true, func() {
			r, m = pair(ctx, p, b.opts.rounds, b.loginOp(srv.url, returning), b.loginOp(mini.url, returning))
		}, srv, mini)
		b.progress(fmt.Sprintf("%s login %s paced %.0f/s mpauth", dr.Driver, users, best/2), r)
		b.progress(fmt.Sprintf("%s login %s paced %.0f/s minimal", dr.Driver, users, best/2), m)
		dr.HalfCapacity = append(dr.HalfCapacity, PacedRow{Users: users, Capacity: best, Result: r, Minimal: m})
	}

	// Introspection of tokens mpauth issued.
	tokens, err := b.collectTokens(ctx, srv.url, 256)
	if err != nil {
		return err
	}
	bodies := introspectionBodies(tokens)
	var intro Result
	b.profiled(dr.Driver+"-introspect", func() {
		intro = b.phase(b.opts.verifyConc, 0).run(ctx, b.introspectOp(srv.url, bodies))
	}, srv)
	b.progress(fmt.Sprintf("%s introspection c=%d", dr.Driver, b.opts.verifyConc), intro)
	dr.Introspection = &intro
	if bare := b.report.Ceilings.BareKratos; bare != nil {
		dr.IntrospectionRatio = ratio(intro.PerSecond, bare.PerSecond)
	}

	if b.report.Verify == nil {
		v, err := benchVerify(ctx, b.client, srv.url, b.key, tokens, max(b.opts.measure/2, time.Second))
		if err != nil {
			return err
		}
		b.report.Verify = v
		fmt.Fprintf(b.log, "in-process JWT verification: JWKS %.0f/s (%d cores), %.0f/s (1 core); Manager.Verify %.0f/s, %.0f/s\n",
			v.JWKSOpsPerSec, v.Cores, v.JWKSOpsPerSecOneCore, v.ManagerOpsPerSec, v.ManagerOpsPerSecOneCore)
	}
	return nil
}

// loginCost is what one login costs, measured by perLogin.
type loginCost struct {
	statements float64 // statements MySQL received (its Questions counter; 0 on SQLite)
	redoBytes  float64 // InnoDB redo log written (its LSN; 0 on SQLite)
	cpuMs      float64 // CPU time of the serving process (Linux; 0 elsewhere)
	reads      float64 // its read system calls (Linux; 0 elsewhere)
	writes     float64 // its write system calls (Linux; 0 elsewhere)
	switches   float64 // its threads' context switches (Linux; 0 elsewhere)
	allocs     float64 // heap allocations of the serving process (its go_memstats_mallocs_total)
	allocBytes float64 // bytes those allocations took (go_memstats_alloc_bytes_total)
}

// perLogin measures what one login costs, over 500 sequential logins: the
// statements MySQL receives and the redo it writes (the benchmark is the
// server's only client meanwhile), the CPU time the serving process spends
// and the heap allocations it makes. All are nearly free of the noise that
// timings on a shared machine carry (allocations not at all); redo is what
// the database must flush, and what its checkpoints stall on under load;
// allocations are most of what a Go server spends beyond its syscalls.
func (b *bench) perLogin(ctx context.Context, db *sql.DB, driver string, p *proc, login op) (loginCost, error) {
	const logins = 500
	type counters struct{ questions, lsn int64 }
	read := func() (counters, error) {
		var c counters
		if driver != "mysql" {
			return c, nil
		}
		rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Innodb_lsn_current')")
		if err != nil {
			return c, err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				return c, err
			}
			switch strings.ToLower(name) {
			case "questions":
				c.questions = n
			case "innodb_lsn_current":
				c.lsn = n
			}
		}
		return c, rows.Err()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ { // warm the connections up
		if err := login(ctx, rng); err != nil {
			return loginCost{}, fmt.Errorf("measuring one login: %w", err)
		}
	}
	c0, err := read()
	if err != nil {
		return loginCost{}, err
	}
	// A scrape allocates too: two back to back tell how much, to subtract.
	m0, err := b.memStats(ctx, p)
	if err != nil {
		return loginCost{}, err
	}
	m1, err := b.memStats(ctx, p)
	if err != nil {
		return loginCost{}, err
	}
	cpu0, cpuOK := procCPU(p.cmd.Process.Pid)
	r0, w0, ioOK := procIO(p.cmd.Process.Pid)
	s0, swOK := procSwitches(p.cmd.Process.Pid)
	for i := 0; i < logins; i++ {
		if err := login(ctx, rng); err != nil {
			return loginCost{}, fmt.Errorf("measuring one login: %w", err)
		}
	}
	cpu1, _ := procCPU(p.cmd.Process.Pid)
	r1, w1, _ := procIO(p.cmd.Process.Pid)
	s1, _ := procSwitches(p.cmd.Process.Pid)
	m2, err := b.memStats(ctx, p)
	if err != nil {
		return loginCost{}, err
	}
	c1, err := read()
	if err != nil {
		return loginCost{}, err
	}
	var cost loginCost
	if driver == "mysql" {
		// The second SHOW counts itself.
		cost.statements = float64(c1.questions-c0.questions-1) / logins
		cost.redoBytes = float64(c1.lsn-c0.lsn) / logins
	}
	if cpuOK {
		cost.cpuMs = float64(cpu1-cpu0) / float64(time.Millisecond) / logins
	}
	if ioOK {
		cost.reads, cost.writes = float64(r1-r0)/logins, float64(w1-w0)/logins
	}
	if swOK {
		cost.switches = float64(s1-s0) / logins
	}
	cost.allocs = ((m2.mallocs - m1.mallocs) - (m1.mallocs - m0.mallocs)) / logins
	cost.allocBytes = ((m2.bytes - m1.bytes) - (m1.bytes - m0.bytes)) / logins
	return cost, nil
}

// memStats are a Go process's heap allocation counters so far.
type memStats struct{ mallocs, bytes float64 }

// memStats reads p's allocation counters from its Prometheus /metrics (the
// Go collector's, which mpauth and the minimal login both serve).
func (b *bench) memStats(ctx context.Context, p *proc) (memStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/metrics", nil)
	if err != nil {
		return memStats{}, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return memStats{}, fmt.Errorf("%s /metrics: %w", p.name, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return memStats{}, fmt.Errorf("%s /metrics (status %d): %w", p.name, resp.StatusCode, err)
	}
	counter := func(name string) (float64, error) {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 {
			return 0, fmt.Errorf("%s /metrics (status %d): no %s", p.name, resp.StatusCode, name)
		}
		m := f.GetMetric()[0]
		// The Go collector exports these as counters, or untyped in older releases.
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), nil
		}
		return m.GetUntyped().GetValue(), nil
	}
	var m memStats
	if m.mallocs, err = counter("go_memstats_mallocs_total"); err != nil {
		return memStats{}, err
	}
	if m.bytes, err = counter("go_memstats_alloc_bytes_total"); err != nil {
		return memStats{}, err
	}
	return m, nil
}

// collectTokens logs n returning users in and returns their access tokens.
func (b *bench) collectTokens(ctx context.Context, url string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		resp, err := b.login(ctx, url, uint64(i%b.opts.returning))
		if err != nil {
			return nil, fmt.Errorf("login for tokens: %w", err)
		}
		var r struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(resp, &r); err != nil || r.AccessToken == "" {
			return nil, fmt.Errorf("login for tokens: no access_token")
		}
		out = append(out, r.AccessToken)
	}
	return out, nil
}

// runGrowth measures logins on two databases, one with the small and one
// with the large number of identities, each behind its own mpauth, the two
// alternating (see pair).
func (b *bench) runGrowth(ctx context.Context, dr *DriverReport, mysql *mysqlServer) error {
	g := &Growth{Concurrency: b.opts.growthConc}
	var urls, minimalURLs []string
	for _, size := range []int{b.opts.growthSmall, b.opts.growthLarge} {
		tag := fmt.Sprintf("%s-growth-%d", dr.Driver, size)
		db, err := b.newDatabase(ctx, dr, mysql, tag)
		if err != nil {
			return err
		}
		defer db.drop()
		srv, err := b.startMpauth(ctx, db, tag)
		if err != nil {
			return err
		}
		defer srv.stop()
		t := time.Now()
		if err := seedUsers(ctx, db.driver, db.source, b.box, benchPlatform, benchAppID, 0, uint64(size)); err != nil {
			return err
		}
		secs := time.Since(t).Seconds()
		fmt.Fprintf(b.log, "%s: seeded %d identities in %.1fs (%.0f users/s)\n", dr.Driver, size, secs, float64(size)/secs)
		g.Points = append(g.Points, GrowthPoint{Identities: int64(size), SeedSeconds: secs})
		urls = append(urls, srv.url)
		mini, err := b.startMinimal(ctx, db, tag)
		if err != nil {
			return err
		}
		defer mini.stop()
		minimalURLs = append(minimalURLs, mini.url)
	}
	small, large := &g.Points[0], &g.Points[1]
	p := b.phase(b.opts.growthConc, 0)
	small.Returning, large.Returning = pair(ctx, p, b.opts.rounds,
		b.loginOp(urls[0], b.opts.growthSmall), b.loginOp(urls[1], b.opts.growthLarge))
	small.New, large.New = pair(ctx, p, b.opts.rounds, b.loginOp(urls[0], 0), b.loginOp(urls[1], 0))
	// The same on the minimal login: how much of a slowdown is the database's.
	small.MinimalReturning, large.MinimalReturning = pair(ctx, p, b.opts.rounds,
		b.loginOp(minimalURLs[0], b.opts.growthSmall), b.loginOp(minimalURLs[1], b.opts.growthLarge))
	for _, pt := range g.Points {
		b.progress(fmt.Sprintf("%s growth %d returning c=%d", dr.Driver, pt.Identities, g.Concurrency), pt.Returning)
		b.progress(fmt.Sprintf("%s growth %d new c=%d", dr.Driver, pt.Identities, g.Concurrency), pt.New)
		b.progress(fmt.Sprintf("%s growth %d returning c=%d minimal", dr.Driver, pt.Identities, g.Concurrency), pt.MinimalReturning)
	}
	g.ReturningRatio = ratio(large.Returning.PerSecond, small.Returning.PerSecond)
	g.NewRatio = ratio(large.New.PerSecond, small.New.PerSecond)
	g.MinimalReturningRatio = ratio(large.MinimalReturning.PerSecond, small.MinimalReturning.PerSecond)
	dr.Growth = g
	return nil
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// sqliteVersion asks the embedded SQLite its version.
func sqliteVersion(ctx context.Context) string {
	db, err := openSQL("sqlite", "file::memory:", pool{})
	if err != nil {
		return ""
	}
	defer db.Close()
	var v string
	_ = db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v)
	return "SQLite " + v + " (modernc.org/sqlite; WAL, synchronous=NORMAL, immediate transactions)"
}

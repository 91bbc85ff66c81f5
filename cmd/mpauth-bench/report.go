package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured; it is printed as one table and
// written as JSON.
type Report struct {
	StartedAt      time.Time       `json:"started_at"`
	Mode           string          `json:"mode"`
	WarmupSeconds  float64         `json:"warmup_seconds"`
	MeasureSeconds float64         `json:"measure_seconds"`
	TotalSeconds   float64         `json:"total_seconds"`
	BuildSeconds   float64         `json:"build_seconds"`
	MpauthVersion  string          `json:"mpauth_version"`
	GoVersion      string          `json:"go_version"`
	Machine        Machine         `json:"machine"`
	Setup          []string        `json:"setup"`
	Ceilings       Ceilings        `json:"ceilings"`
	Verify         *VerifyResult   `json:"in_process_verification,omitempty"`
	Drivers        []*DriverReport `json:"databases"`
	Targets        []Target        `json:"targets"`
}

// Machine is where the run happened.
type Machine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	MemoryGB   int    `json:"memory_gb"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel,omitempty"`
	// Load averages (1, 5, 15 min) when the run started and ended: the
	// machine may be shared. The start is read before the tool builds
	// mpauth (make bench's go run compiles the tool itself just before).
	LoadAtStart string `json:"load_at_start,omitempty"`
	LoadAtEnd   string `json:"load_at_end,omitempty"`
	// CPUPressureAtStart is the share of the last minute before the run in
	// which some task waited for a CPU (Linux PSI, /proc/pressure/cpu):
	// near 0 on a quiet machine; above, other work (or, on a virtual
	// machine, the host) was competing for the CPUs as the run began.
	CPUPressureAtStart string `json:"cpu_pressure_at_start,omitempty"`
}

// Ceilings are measured by this tool in the same run.
type Ceilings struct {
	BareKratos *Result `json:"bare_kratos_handler"`
}

// DriverReport is one database's figures.
type DriverReport struct {
	Driver  string `json:"driver"`
	Version string `json:"version,omitempty"`
	// Skipped says why this database was not measured.
	Skipped           string   `json:"skipped,omitempty"`
	MinimalStatements []string `json:"minimal_login_statements,omitempty"`
	// PerLogin is what one login costs, measured apart from the timings.
	PerLogin           []PerLoginRow `json:"per_login,omitempty"`
	Login              []LoginRow    `json:"login"`
	HalfCapacity       []PacedRow    `json:"half_capacity,omitempty"`
	Introspection      *Result       `json:"introspection,omitempty"`
	IntrospectionRatio float64       `json:"introspection_over_bare_handler,omitempty"`
	Growth             *Growth       `json:"growth,omitempty"`
}

// PerLoginRow is what one login costs mpauth and the minimal login: the
// statements MySQL receives (BEGIN and COMMIT included, counted by the
// server), the InnoDB redo it writes, the serving process's CPU time and
// its heap allocations, all nearly noise-free.
type PerLoginRow struct {
	Users             string  `json:"users"`
	MpauthStatements  float64 `json:"mpauth_statements,omitempty"`
	MinimalStatements float64 `json:"minimal_statements,omitempty"`
	MpauthRedoBytes   float64 `json:"mpauth_redo_bytes,omitempty"`
	MinimalRedoBytes  float64 `json:"minimal_redo_bytes,omitempty"`
	MpauthCPUms       float64 `json:"mpauth_cpu_ms,omitempty"`
	MinimalCPUms      float64 `json:"minimal_cpu_ms,omitempty"`
	MpauthReads       float64 `json:"mpauth_read_syscalls,omitempty"`
	MinimalReads      float64 `json:"minimal_read_syscalls,omitempty"`
	MpauthWrites      float64 `json:"mpauth_write_syscalls,omitempty"`
	MinimalWrites     float64 `json:"minimal_write_syscalls,omitempty"`
	MpauthSwitches    float64 `json:"mpauth_context_switches,omitempty"`
	MinimalSwitches   float64 `json:"minimal_context_switches,omitempty"`
	MpauthAllocs      float64 `json:"mpauth_allocs"`
	MinimalAllocs     float64 `json:"minimal_allocs"`
	MpauthAllocBytes  float64 `json:"mpauth_alloc_bytes"`
	MinimalAllocBytes float64 `json:"minimal_alloc_bytes"`
}

// LoginRow is mpauth and the minimal login at one concurrency.
type LoginRow struct {
	Users       string  `json:"users"` // "new" or "returning"
	Concurrency int     `json:"concurrency"`
	Mpauth      Result  `json:"mpauth"`
	Minimal     Result  `json:"minimal"`
	Ratio       float64 `json:"mpauth_over_minimal"`
	// RoundRatios is the ratio in each alternating round (see roundRatios).
	RoundRatios []float64 `json:"mpauth_over_minimal_by_round,omitempty"`
}

// PacedRow is mpauth paced at half of its best closed-loop throughput, and
// the minimal login at the same rate.
type PacedRow struct {
	Users    string  `json:"users"`
	Capacity float64 `json:"capacity_per_second"`
	Result   Result  `json:"result"`
	Minimal  Result  `json:"minimal"`
}

// Growth is login throughput at two table sizes.
type Growth struct {
	Concurrency    int           `json:"concurrency"`
	Points         []GrowthPoint `json:"points"`
	ReturningRatio float64       `json:"returning_large_over_small"`
	NewRatio       float64       `json:"new_large_over_small"`
	// MinimalReturningRatio is the minimal login's: the database's share.
	MinimalReturningRatio float64 `json:"minimal_returning_large_over_small"`
}

// roundRatios are the large table's rate over the small one's in each
// alternating round: returning users, new users, the minimal login's
// returning users.
func (g *Growth) roundRatios() (returning, newUsers, minimal []float64) {
	if len(g.Points) != 2 {
		return nil, nil, nil
	}
	small, large := g.Points[0], g.Points[1]
	return roundRatios(large.Returning, small.Returning), roundRatios(large.New, small.New),
		roundRatios(large.MinimalReturning, small.MinimalReturning)
}

// GrowthPoint is one table size.
type GrowthPoint struct {
	Identities  int64   `json:"identities"`
	SeedSeconds float64 `json:"seed_seconds"`
	Returning   Result  `json:"returning"`
	New         Result  `json:"new"`
	// MinimalReturning is the minimal login's returning users on this table.
	MinimalReturning Result `json:"minimal_returning"`
}

// Target is one of the goals, evaluated on this run (reported,
// never asserted).
type Target struct {
	Name   string  `json:"name"`
	Driver string  `json:"driver"`
	Value  float64 `json:"value"`
	Goal   string  `json:"goal"`
	Met    bool    `json:"met"`
	Detail string  `json:"detail,omitempty"`
}

func newReport(o options) *Report {
	mode := "quick"
	if o.full {
		mode = "full"
	}
	return &Report{
		StartedAt: time.Now().UTC().Truncate(time.Second), Mode: mode,
		WarmupSeconds: o.warmup.Seconds(), MeasureSeconds: o.measure.Seconds(),
		MpauthVersion: o.version, GoVersion: runtime.Version(),
		Setup: []string{
			"mpauth, the minimal login, the bare handler, the load generator, the fake WeChat and the database share this machine",
			"one WeChat app without union scope; the fake platform answers code2Session on loopback in microseconds",
			"mpauth: log.level " + o.serverLogLevel + " (to a file), limits and overload protection off, session_keys encrypted at rest, pool 32 open/32 idle",
			"minimal login: net/http + database/sql, the same statements in one transaction, the same platform client, decoder and token signing",
			"load generator: keep-alive HTTP client; each phase " + o.warmup.String() + " warmup + " + o.measure.String() + " measured; latency from sorted samples",
			fmt.Sprintf("mpauth and the minimal login (and the two growth databases) alternate in %d slices per phase, so load from elsewhere falls on both alike", o.rounds),
		},
	}
}

// machine describes this machine.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if i := strings.Index(string(b), "MemTotal:"); i >= 0 {
			fmt.Sscanf(string(b[i+len("MemTotal:"):]), "%d", &kb)
			m.MemoryGB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAtStart = loadAvg()
	m.CPUPressureAtStart = cpuPressure()
	return m
}

// cpuPressure is /proc/pressure/cpu's "some" 60-second average, as "12.34%".
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "avg60="); ok {
				return v + "%"
			}
		}
	}
	return ""
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// targetDriver is the database the targets are judged on: MySQL when it was
// measured, else SQLite.
func (r *Report) targetDriver() *DriverReport {
	var pick *DriverReport
	for _, d := range r.Drivers {
		if d.Skipped != "" || len(d.Login) == 0 {
			continue
		}
		if pick == nil || d.Driver == "mysql" {
			pick = d
		}
	}
	return pick
}

// finish evaluates the targets.
func (r *Report) finish() {
	d := r.targetDriver()
	if d == nil {
		return
	}
	add := func(name string, value float64, goal string, met bool, detail string) {
		r.Targets = append(r.Targets, Target{Name: name, Driver: d.Driver, Value: value, Goal: goal, Met: met, Detail: detail})
	}
	minRatio, errs := 0.0, 0
	var at8 []string
	var lowest LoginRow
	for i, row := range d.Login {
		if i == 0 || row.Ratio < minRatio {
			minRatio, lowest = row.Ratio, row
		}
		errs += row.Mpauth.Errors
		if row.Concurrency == 8 {
			at8 = append(at8, fmt.Sprintf("%s %.2f", row.Users, row.Ratio))
		}
	}
	detail := "at 8 connections: " + strings.Join(at8, ", ")
	if len(lowest.RoundRatios) > 1 {
		detail += fmt.Sprintf("; the lowest (%s, %d conn) by round %s", lowest.Users, lowest.Concurrency, spread(lowest.RoundRatios))
	}
	add("login ÷ minimal login (lowest over the sweep)", minRatio, "≥ 0.85", minRatio >= 0.85, detail)
	for _, p := range d.HalfCapacity {
		errs += p.Result.Errors
	}
	if d.Growth != nil {
		for _, p := range d.Growth.Points {
			errs += p.Returning.Errors + p.New.Errors
		}
	}
	add("login errors (sweep, paced, growth)", float64(errs), "0", errs == 0, "")
	if d.Introspection != nil && r.Ceilings.BareKratos != nil {
		add("introspection ÷ bare kratos handler", d.IntrospectionRatio, "≥ 0.4", d.IntrospectionRatio >= 0.4,
			fmt.Sprintf("%.0f/s vs %.0f/s", d.Introspection.PerSecond, r.Ceilings.BareKratos.PerSecond))
	}
	p99at1, floorAt1 := 0.0, 0.0
	for _, row := range d.Login {
		if row.Concurrency == 1 {
			p99at1 = max(p99at1, row.Mpauth.P99ms)
			floorAt1 = max(floorAt1, row.Minimal.P99ms)
		}
	}
	if p99at1 > 0 {
		add("login p99 at 1 connection (ms)", p99at1, "≤ 5", p99at1 <= 5,
			fmt.Sprintf("minimal login %.2f ms; the platform answers in microseconds, the database's commits count", floorAt1))
	}
	p99half, floorHalf := 0.0, 0.0
	for _, p := range d.HalfCapacity {
		p99half, floorHalf = max(p99half, p.Result.P99ms), max(floorHalf, p.Minimal.P99ms)
	}
	if len(d.HalfCapacity) > 0 {
		add("login p99 at half of capacity (ms)", p99half, "≤ 15", p99half <= 15,
			fmt.Sprintf("paced arrivals, latency from the scheduled start; minimal login at the same rate %.2f ms", floorHalf))
	}
	if g := d.Growth; g != nil && len(g.Points) == 2 {
		worst := min(g.ReturningRatio, g.NewRatio)
		detail := fmt.Sprintf("returning %.2f, new %.2f; the minimal login's returning %.2f", g.ReturningRatio, g.NewRatio, g.MinimalReturningRatio)
		if ret, nw, _ := g.roundRatios(); len(ret) > 1 {
			detail += fmt.Sprintf("; by round returning %s, new %s", spread(ret), spread(nw))
		}
		if g.Points[1].Identities < 1_000_000 {
			detail += " (the issue asks 1M vs 10k: BENCH_FULL=1)"
		}
		add(fmt.Sprintf("login at %s ÷ at %s identities", count(g.Points[1].Identities), count(g.Points[0].Identities)), worst, "≥ 0.85", worst >= 0.85, detail)
	}
}

// spread is the range of ratios measured round by round, "0.81–0.93" ("–"
// when the phase was not cut into rounds).
func spread(rs []float64) string {
	if len(rs) < 2 {
		return "–"
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(rs), slices.Max(rs))
}

// stmts is statements per login, or a dash where nothing was measured
// (SQLite).
func stmts(n float64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", n)
}

// bytesOrDash is n bytes, or a dash where nothing was measured (SQLite).
func bytesOrDash(n float64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", n)
}

// count prints 10000 as 10k and 1000000 as 1M (roughly).
func count(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.3gM", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%.3gk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func (r *Report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// print writes the table.
func (r *Report) print(out io.Writer) {
	m := r.Machine
	fmt.Fprintf(out, "\nmpauth %s · %s · %d cores %s, %d GB · %s mode: %.1fs warmup + %.1fs per phase · total %s\n",
		r.MpauthVersion, r.GoVersion, m.Cores, m.CPU, m.MemoryGB, r.Mode, r.WarmupSeconds, r.MeasureSeconds,
		(time.Duration(r.TotalSeconds) * time.Second).String())
	if m.LoadAtStart != "" {
		fmt.Fprintf(out, "load average at start %s, at end %s (other work on the machine skews every figure)\n", m.LoadAtStart, m.LoadAtEnd)
	}
	if m.CPUPressureAtStart != "" {
		fmt.Fprintf(out, "CPU pressure in the minute before the run: %s (PSI some; near 0 on a quiet machine)\n", m.CPUPressureAtStart)
	}
	for _, d := range r.Drivers {
		if d.Skipped != "" {
			fmt.Fprintln(out, d.Skipped)
		} else if d.Version != "" {
			fmt.Fprintf(out, "%s: %s\n", d.Driver, d.Version)
		}
	}

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(out, "\nLOGIN — logins/s and latency in ms (p50 / p95 / p99), errors; minimal = database/sql ceiling")
	fmt.Fprintln(w, "db\tusers\tconn\tmpauth/s\tp50\tp95\tp99\terr\tminimal/s\tp50\tp95\tp99\terr\tmpauth÷min\tby round\t")
	for _, d := range r.Drivers {
		for _, row := range d.Login {
			a, b := row.Mpauth, row.Minimal
			fmt.Fprintf(w, "%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.2f\t%s\t\n",
				d.Driver, row.Users, row.Concurrency, a.PerSecond, a.P50ms, a.P95ms, a.P99ms, a.Errors,
				b.PerSecond, b.P50ms, b.P95ms, b.P99ms, b.Errors, row.Ratio, spread(row.RoundRatios))
		}
	}
	w.Flush()

	fmt.Fprintln(out, "\nPER LOGIN — 500 sequential logins: statements the database received, InnoDB redo written, CPU time, read / write syscalls, context switches and heap allocations of the serving process")
	fmt.Fprintln(w, "db\tusers\tmpauth stmts\tminimal stmts\tmpauth redo B\tminimal redo B\tmpauth CPU ms\tminimal CPU ms\tCPU mpauth÷min\tmpauth r/w\tminimal r/w\tmpauth switches\tminimal switches\tmpauth allocs (B)\tminimal allocs (B)\t")
	for _, d := range r.Drivers {
		for _, p := range d.PerLogin {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%.2f\t%.1f / %.1f\t%.1f / %.1f\t%.1f\t%.1f\t%.0f (%.0f)\t%.0f (%.0f)\t\n", d.Driver, p.Users, stmts(p.MpauthStatements), stmts(p.MinimalStatements),
				bytesOrDash(p.MpauthRedoBytes), bytesOrDash(p.MinimalRedoBytes), p.MpauthCPUms, p.MinimalCPUms, ratio(p.MpauthCPUms, p.MinimalCPUms),
				p.MpauthReads, p.MpauthWrites, p.MinimalReads, p.MinimalWrites, p.MpauthSwitches, p.MinimalSwitches,
				p.MpauthAllocs, p.MpauthAllocBytes, p.MinimalAllocs, p.MinimalAllocBytes)
		}
	}
	w.Flush()

	fmt.Fprintln(out, "\nHALF CAPACITY — paced at ½ of mpauth's best closed-loop rate, mpauth and the minimal login alternating; latency from the scheduled start")
	fmt.Fprintln(w, "db\tusers\tcapacity/s\tpaced/s\tachieved/s\tp50\tp95\tp99\terr\tminimal/s\tp50\tp95\tp99\terr\t")
	for _, d := range r.Drivers {
		for _, p := range d.HalfCapacity {
			fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t\n", d.Driver, p.Users, p.Capacity, p.Result.PacedRate,
				p.Result.PerSecond, p.Result.P50ms, p.Result.P95ms, p.Result.P99ms, p.Result.Errors,
				p.Minimal.PerSecond, p.Minimal.P50ms, p.Minimal.P95ms, p.Minimal.P99ms, p.Minimal.Errors)
		}
	}
	w.Flush()

	fmt.Fprintln(out, "\nVERIFICATION")
	fmt.Fprintln(w, "what\tconn\treq/s\tp50\tp99\terr\t÷ bare\t")
	if bare := r.Ceilings.BareKratos; bare != nil {
		fmt.Fprintf(w, "bare kratos handler (ceiling)\t%d\t%.0f\t%.2f\t%.2f\t%d\t1.00\t\n", bare.Concurrency, bare.PerSecond, bare.P50ms, bare.P99ms, bare.Errors)
	}
	for _, d := range r.Drivers {
		if in := d.Introspection; in != nil {
			fmt.Fprintf(w, "%s introspection (POST /v1/tokens/introspect)\t%d\t%.0f\t%.2f\t%.2f\t%d\t%.2f\t\n", d.Driver, in.Concurrency, in.PerSecond, in.P50ms, in.P99ms, in.Errors, d.IntrospectionRatio)
		}
	}
	w.Flush()
	if v := r.Verify; v != nil {
		fmt.Fprintf(out, "in-process JWT verification (a backend with the JWKS, go-jose): %.0f/s on %d cores, %.0f/s on 1\n", v.JWKSOpsPerSec, v.Cores, v.JWKSOpsPerSecOneCore)
		fmt.Fprintf(out, "in-process internal/token Manager.Verify (remembers verified tokens; %d tokens repeated): %.0f/s on %d cores, %.0f/s on 1\n", v.Tokens, v.ManagerOpsPerSec, v.Cores, v.ManagerOpsPerSecOneCore)
	}

	fmt.Fprintln(out, "\nGROWTH — logins/s with the identities table at two sizes (minimal: the database/sql login, returning users)")
	fmt.Fprintln(w, "db\tidentities\tseeded in\tconn\treturning/s\tp99\tnew/s\tp99\tminimal returning/s\tp99\t")
	for _, d := range r.Drivers {
		g := d.Growth
		if g == nil {
			continue
		}
		for _, p := range g.Points {
			fmt.Fprintf(w, "%s\t%d\t%.1fs\t%d\t%.0f\t%.2f\t%.0f\t%.2f\t%.0f\t%.2f\t\n", d.Driver, p.Identities, p.SeedSeconds, g.Concurrency,
				p.Returning.PerSecond, p.Returning.P99ms, p.New.PerSecond, p.New.P99ms, p.MinimalReturning.PerSecond, p.MinimalReturning.P99ms)
		}
		fmt.Fprintf(w, "%s\tlarge ÷ small\t\t\t%.2f\t\t%.2f\t\t%.2f\t\t\n", d.Driver, g.ReturningRatio, g.NewRatio, g.MinimalReturningRatio)
		if ret, nw, mini := g.roundRatios(); len(ret) > 1 {
			fmt.Fprintf(w, "%s\tby round\t\t\t%s\t\t%s\t\t%s\t\t\n", d.Driver, spread(ret), spread(nw), spread(mini))
		}
	}
	w.Flush()

	if len(r.Targets) > 0 {
		fmt.Fprintf(out, "\nTARGETS (issue 6; judged on %s, reported, never asserted)\n", r.Targets[0].Driver)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			verdict := "met"
			if !t.Met {
				verdict = "NOT MET"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\n", verdict, t.Name, t.Value, t.Goal, t.Detail)
		}
		tw.Flush()
	}
	var errs []string
	for _, d := range r.Drivers {
		for _, row := range d.Login {
			for _, res := range []struct {
				who string
				r   Result
			}{{"mpauth", row.Mpauth}, {"minimal", row.Minimal}} {
				for reason, n := range res.r.ErrorReasons {
					errs = append(errs, fmt.Sprintf("%s %s %s c=%d: %d× %s", d.Driver, res.who, row.Users, row.Concurrency, n, reason))
				}
			}
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(out, "\nERRORS")
		for _, e := range errs {
			fmt.Fprintln(out, "  "+e)
		}
	}
}

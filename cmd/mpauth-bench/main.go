// Command mpauth-bench measures mpauth against same-run ceilings: logins/s
// and latency of a real mpauth server (built from this tree, on loopback,
// with a fast fake WeChat) at a concurrency sweep, introspection and
// in-process JWT verification, a bare kratos handler and a minimal
// database/sql login, and login throughput as the identities table grows;
// on SQLite and on MySQL (when reachable). It prints one table and writes it
// as JSON.
//
//	go run ./cmd/mpauth-bench [-full] [-out bench-results.json] [-profile DIR]
//
// (`make bench`; BENCH_FULL=1 for the full sweep with 1M identities.) The
// "hello" and "minimal" subcommands are the ceilings, run by the benchmark
// as its own subprocesses.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpauth/mpauth/internal/secretbox"
	"github.com/mpauth/mpauth/internal/token"
)

func main() {
	var err error
	args := os.Args[1:]
	switch {
	case len(args) > 0 && args[0] == "hello":
		err = helloCmd(args[1:])
	case len(args) > 0 && args[0] == "minimal":
		err = minimalCmd(args[1:])
	default:
		err = benchCmd(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mpauth-bench:", err)
		os.Exit(1)
	}
}

// options are the benchmark's flags.
type options struct {
	full           bool
	warmup         time.Duration
	measure        time.Duration
	rounds         int
	conc           []int
	verifyConc     int
	pacedConc      int
	growthConc     int
	returning      int
	growthSmall    int
	growthLarge    int
	drivers        []string
	mysqlDSN       string
	out            string
	profileDir     string
	serverLogLevel string
	version        string
	keep           bool
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("mpauth-bench", flag.ContinueOnError)
	var o options
	full := os.Getenv("BENCH_FULL")
	fs.BoolVar(&o.full, "full", full != "" && full != "0", "the full sweep: longer phases and 1M identities (also BENCH_FULL=1)")
	warmup := fs.Duration("warmup", 0, "warmup of each phase (default 500ms, full 2s)")
	measure := fs.Duration("measure", 0, "measured window of each phase (default 2s, full 10s)")
	fs.IntVar(&o.rounds, "rounds", 4, "mpauth and the minimal login alternate this many times within each login phase")
	conc := fs.String("conc", "1,8,32,128", "login concurrency sweep (connections)")
	fs.IntVar(&o.verifyConc, "verify-conc", 32, "connections for introspection and the bare handler")
	fs.IntVar(&o.pacedConc, "paced-conc", 64, "workers of the paced (half-capacity) phases")
	fs.IntVar(&o.growthConc, "growth-conc", 8, "connections of the growth phases")
	fs.IntVar(&o.returning, "returning", 10000, "returning users seeded for the sweep")
	fs.IntVar(&o.growthSmall, "growth-small", 10000, "identities of the small growth point")
	large := fs.Int("growth-large", 0, "identities of the large growth point (default 100000, full 1000000)")
	drivers := fs.String("drivers", "sqlite,mysql", "databases to run on")
	// No default shown: the environment's DSN may hold a password.
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", "", "MySQL server to create a throwaway database on (default MPAUTH_BENCH_MYSQL_DSN, else "+defaultMySQLDSN+")")
	fs.StringVar(&o.out, "out", "bench-results.json", "where to write the results as JSON")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU profiles of mpauth, the minimal login and the load generator here")
	fs.StringVar(&o.serverLogLevel, "server-log-level", "info", "mpauth's log.level during the benchmark")
	fs.StringVar(&o.version, "version", "", "mpauth version to build in (default: git describe)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, SQLite files)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.mysqlDSN == "" {
		if o.mysqlDSN = os.Getenv("MPAUTH_BENCH_MYSQL_DSN"); o.mysqlDSN == "" {
			o.mysqlDSN = defaultMySQLDSN
		}
	}
	o.warmup, o.measure, o.growthLarge = *warmup, *measure, *large
	if o.warmup == 0 {
		o.warmup = map[bool]time.Duration{false: 500 * time.Millisecond, true: 2 * time.Second}[o.full]
	}
	if o.measure == 0 {
		o.measure = map[bool]time.Duration{false: 2 * time.Second, true: 10 * time.Second}[o.full]
	}
	if o.growthLarge == 0 {
		o.growthLarge = map[bool]int{false: 100_000, true: 1_000_000}[o.full]
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-conc: %q is not a positive number", s)
		}
		o.conc = append(o.conc, n)
	}
	for _, d := range strings.Split(*drivers, ",") {
		switch d = strings.TrimSpace(d); d {
		case "sqlite", "mysql":
			o.drivers = append(o.drivers, d)
		default:
			return o, fmt.Errorf("-drivers: unknown %q (sqlite, mysql)", d)
		}
	}
	if o.returning < 1 || o.growthSmall < 1 || o.growthLarge <= o.growthSmall {
		return o, fmt.Errorf("-returning and -growth-small must be positive and -growth-large above -growth-small")
	}
	return o, nil
}

// bench is one benchmark run.
type bench struct {
	opts       options
	root       string // the module's directory
	dir        string // temp dir: binaries, configs, logs, SQLite files
	self       string // this binary, for the ceiling subprocesses
	mpauthBin  string
	fake       *fakeWeChat
	keyPEM     string
	key        token.Key
	secretsKey string         // base64, as configured
	box        *secretbox.Box // the same key: seeded and minimal-login session_keys
	client     *http.Client
	report     *Report
	log        io.Writer
}

func benchCmd(args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	b := &bench{opts: o, client: newClient(), log: os.Stderr}
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.cleanup()
	if o.profileDir != "" {
		f, err := os.Create(filepath.Join(o.profileDir, "loadgen.pprof"))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := b.run(ctx); err != nil {
		return err
	}
	b.report.finish()
	b.report.print(os.Stdout)
	if err := b.report.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "\nresults: %s\n", o.out)
	return nil
}

// setup builds mpauth, makes the keys and starts the fake platform.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("run from the mpauth module (go env GOMOD: %v)", err)
	}
	b.root = filepath.Dir(strings.TrimSpace(string(out)))
	if b.dir, err = os.MkdirTemp("", "mpauth-bench-"); err != nil {
		return err
	}
	if b.opts.profileDir != "" {
		if err := os.MkdirAll(b.opts.profileDir, 0o755); err != nil {
			return err
		}
	}
	if b.opts.version == "" {
		b.opts.version = gitVersion(b.root)
	}
	b.report = newReport(b.opts)
	// Before the build, so that the load it causes does not count as the
	// machine's.
	b.report.Machine = machine()
	fmt.Fprintf(b.log, "building mpauth %s ...\n", b.opts.version)
	t := time.Now()
	if b.mpauthBin, err = buildMpauth(ctx, b.root, b.dir, b.opts.version, b.opts.profileDir != ""); err != nil {
		return err
	}
	b.report.BuildSeconds = time.Since(t).Seconds()

	pemBytes, err := token.NewEd25519PEM()
	if err != nil {
		return err
	}
	b.keyPEM = string(pemBytes)
	if b.key, err = token.ParsePrivateKeyPEM(benchKID, []byte(b.keyPEM)); err != nil {
		return err
	}
	var sk [32]byte
	_, _ = rand.Read(sk[:])
	b.secretsKey = base64.StdEncoding.EncodeToString(sk[:])
	if b.box, err = secretbox.New(benchSecretsKID, secretbox.Key{ID: benchSecretsKID, Secret: sk[:]}); err != nil {
		return err
	}

	b.fake = newFakeWeChat(benchAppID, benchSecret)
	return b.fake.start()
}

func (b *bench) cleanup() {
	if b.fake != nil {
		b.fake.stop()
	}
	if b.dir != "" {
		if b.opts.keep {
			fmt.Fprintf(b.log, "kept %s\n", b.dir)
			return
		}
		_ = os.RemoveAll(b.dir)
	}
}

func gitVersion(root string) string {
	cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

// run is the whole benchmark.
func (b *bench) run(ctx context.Context) error {
	started := time.Now()
	if err := b.runCeilingHello(ctx); err != nil {
		return err
	}
	for _, driver := range b.opts.drivers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		dr := &DriverReport{Driver: driver}
		b.report.Drivers = append(b.report.Drivers, dr)
		if err := b.runDriver(ctx, dr); err != nil {
			if dr.Skipped != "" {
				fmt.Fprintln(b.log, dr.Skipped)
				continue
			}
			return fmt.Errorf("%s: %w", driver, err)
		}
	}
	b.report.TotalSeconds = time.Since(started).Seconds()
	b.report.Machine.LoadAtEnd = loadAvg()
	return nil
}

// runCeilingHello measures the bare kratos handler.
func (b *bench) runCeilingHello(ctx context.Context) error {
	p, err := b.startHello(ctx)
	if err != nil {
		return err
	}
	defer p.stop()
	bodies := introspectionBodies(syntheticTokens(64))
	r := b.phase(b.opts.verifyConc, 0).run(ctx, b.helloOp(p.url, bodies))
	b.report.Ceilings.BareKratos = &r
	b.progress("ceiling  bare kratos handler", r)
	return nil
}

// phase is a closed-loop phase (rate 0) or a paced one.
func (b *bench) phase(conc int, rate float64) phase {
	return phase{conc: conc, warmup: b.opts.warmup, measure: b.opts.measure, rate: rate}
}

func (b *bench) progress(what string, r Result) {
	fmt.Fprintf(b.log, "%-44s %9.0f/s  p50 %6.2f  p99 %7.2f ms  errors %d\n", what, r.PerSecond, r.P50ms, r.P99ms, r.Errors)
}

// profiled runs fn, one phase, while collecting CPU profiles of procs (when
// profiling).
func (b *bench) profiled(name string, fn func(), procs ...*proc) {
	b.profiledFor(name, b.opts.warmup+b.opts.measure, false, fn, procs...)
}

// profiledFor runs fn, which takes about d, while collecting CPU profiles
// of procs and, with trace, their execution traces (scheduling latency,
// GC, blocking: go tool trace -pprof=sched FILE).
func (b *bench) profiledFor(name string, d time.Duration, trace bool, fn func(), procs ...*proc) {
	if b.opts.profileDir == "" {
		fn()
		return
	}
	secs := max(int(d.Seconds()), 1)
	path := func(p *proc, suffix string) string {
		return filepath.Join(b.opts.profileDir, name+"-"+strings.ReplaceAll(p.name, " ", "-")+suffix)
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			b.fetchProfile(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.pprof, secs), path(p, ".pprof"))
		})
		if trace {
			wg.Go(func() {
				b.fetchProfile(fmt.Sprintf("%s/debug/pprof/trace?seconds=%d", p.pprof, secs), path(p, ".trace"))
			})
		}
	}
	fn()
	wg.Wait()
	// Allocations since the process started (mostly this and earlier
	// phases): go tool pprof -sample_index=alloc_space.
	for _, p := range procs {
		b.fetchProfile(p.pprof+"/debug/pprof/allocs", path(p, "-allocs.pprof"))
	}
}

func (b *bench) fetchProfile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintf(b.log, "profile %s: %v\n", url, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

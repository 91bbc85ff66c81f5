package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/conf"
)

// Launching the processes under test: mpauth itself (built from this tree
// into a temp dir), and this binary's ceiling subcommands.

// Benchmark app and keys.
const (
	benchPlatform = "wechat"
	benchAppID    = "wxbench000000001"
	benchSecret   = "bench-app-secret-0123456789abcdef"
	benchIssuer   = "https://auth.bench"
	benchAudience = "bench-backend"
	backendKey    = "bench-backend-key-0123456789abcdef0123456789"
	benchKID      = "bench"
	// benchSecretsKID names the secrets-at-rest key.
	benchSecretsKID = "bench"
)

// pprofOverlay is added to package main of cmd/mpauth (go build -overlay) only
// when the benchmark profiles: it serves net/http/pprof on MPAUTH_PPROF_ADDR.
// The measured binary is otherwise exactly the product.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("MPAUTH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// buildMpauth builds ./cmd/mpauth of the module at root into dir.
func buildMpauth(ctx context.Context, root, dir, version string, pprof bool) (string, error) {
	bin := filepath.Join(dir, "mpauth")
	args := []string{"build", "-ldflags", "-X main.Version=" + version, "-o", bin}
	if pprof {
		src := filepath.Join(dir, "zz_bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
			return "", err
		}
		overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(root, "cmd", "mpauth", "zz_bench_pprof.go"): src,
		}})
		ov := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ov, overlay, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ov)
	}
	args = append(args, "./cmd/mpauth")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mpauth: %v\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// mpauthConfig is the server's config: the database, one WeChat app whose
// endpoint is the fake platform, a backend API key, limits and overload
// protection off (the benchmark is one client IP hammering a few users),
// the sandbox off.
func mpauthConfig(db *database, dataDir, httpAddr, grpcAddr, platformURL, keyPEM, secretsKey, logLevel string) *conf.Bootstrap {
	p := poolFor(db.driver)
	d := &conf.Data_Database{Driver: db.driver, Source: db.source, MigrateOnStart: true, MaxOpenConns: int32(p.maxOpen), MaxIdleConns: int32(p.maxIdle)}
	if p.maxLifetime > 0 {
		d.ConnMaxLifetime = durationpb.New(p.maxLifetime)
	}
	return &conf.Bootstrap{
		Server: &conf.Server{
			Http: &conf.Server_HTTP{Addr: httpAddr, Timeout: durationpb.New(10 * time.Second)},
			Grpc: &conf.Server_GRPC{Addr: grpcAddr, Timeout: durationpb.New(10 * time.Second)},
		},
		Data: &conf.Data{DataDir: dataDir, Database: d},
		Auth: &conf.Auth{
			Issuer: benchIssuer, Audience: benchAudience,
			AccessTokenTtl: durationpb.New(15 * time.Minute), RefreshTokenTtl: durationpb.New(refreshTTL),
			Keys: []*conf.Auth_Key{{Kid: benchKID, PrivateKey: keyPEM}}, ActiveKid: benchKID,
		},
		Apps: []*conf.App{{
			Platform: benchPlatform, AppId: benchAppID, Secret: benchSecret,
			Endpoint: platformURL, Timeout: durationpb.New(3 * time.Second),
		}},
		ApiKeys: []*conf.APIKey{{Id: "bench-backend", Key: backendKey, Scopes: []string{"backend"}}},
		Limits: &conf.Limits{
			LoginPerIpPerMinute: -1, LoginPerIdentityPerMinute: -1, DisableOverloadProtection: true,
		},
		// session_keys encrypted at rest, as in production.
		Secrets: &conf.Secrets{ActiveKeyId: benchSecretsKID, Keys: []*conf.Secrets_Key{{Id: benchSecretsKID, Key: secretsKey}}},
		Sandbox: &conf.Sandbox{Enabled: false},
		Log:     &conf.Log{Level: logLevel},
	}
}

// proc is a running subprocess under test.
type proc struct {
	name    string
	cmd     *exec.Cmd
	url     string // http://host:port
	logPath string
	pprof   string // http://host:port of net/http/pprof, or ""
	exited  chan struct{}
}

// startProc starts bin with args and env, its output in logPath, and waits
// until GET readyURL (or POST, for the hello server) answers 2xx.
func startProc(ctx context.Context, name, bin string, args, env []string, logPath, baseURL, readyPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, url: baseURL, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, readyPath); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *proc) waitReady(ctx context.Context, path string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute) // MySQL migrations take a while
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited at start:\n%s", p.name, tail(p.logPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		method := http.MethodGet
		var body *strings.Reader
		if path == "/hello" {
			method, body = http.MethodPost, strings.NewReader(`{"token":"x"}`)
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequestWithContext(ctx, method, p.url+path, body)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready (%v):\n%s", p.name, last, tail(p.logPath, 20))
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startMpauth writes the config and starts the server on fresh ports.
func (b *bench) startMpauth(ctx context.Context, db *database, tag string) (*proc, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(b.dir, tag+"-data")
	bc := mpauthConfig(db, dataDir, httpAddr, grpcAddr, b.fake.url, b.keyPEM, b.secretsKey, b.opts.serverLogLevel)
	js, err := protojson.MarshalOptions{UseProtoNames: true, Indent: "  "}.Marshal(bc)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(b.dir, tag+"-config.yaml") // JSON is YAML
	if err := os.WriteFile(confPath, js, 0o600); err != nil {
		return nil, err
	}
	var env []string
	pprofURL := ""
	if b.opts.profileDir != "" {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env = append(env, "MPAUTH_PPROF_ADDR="+a)
		pprofURL = "http://" + a
	}
	p, err := startProc(ctx, "mpauth", b.mpauthBin, []string{"serve", "-conf", confPath}, env,
		filepath.Join(b.dir, tag+"-mpauth.log"), "http://"+httpAddr, "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	p.pprof = pprofURL
	return p, nil
}

// startMinimal starts the minimal login on db.
func (b *bench) startMinimal(ctx context.Context, db *database, tag string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"minimal", "-addr", addr, "-driver", db.driver, "-platform", b.fake.url}
	pprofURL := ""
	if b.opts.profileDir != "" {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "-pprof", a)
		pprofURL = "http://" + a
	}
	env := []string{envMinimalDSN + "=" + db.source, envMinimalKey + "=" + b.keyPEM, envMinimalSecretsKey + "=" + b.secretsKey}
	p, err := startProc(ctx, "minimal login", b.self, args, env, filepath.Join(b.dir, tag+"-minimal.log"), "http://"+addr, "/healthz")
	if err != nil {
		return nil, err
	}
	p.pprof = pprofURL
	return p, nil
}

// startHello starts the bare kratos handler.
func (b *bench) startHello(ctx context.Context) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startProc(ctx, "bare kratos handler", b.self, []string{"hello", "-addr", addr}, nil,
		filepath.Join(b.dir, "hello.log"), "http://"+addr, "/hello")
}

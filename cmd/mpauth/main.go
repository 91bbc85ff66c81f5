// Command mpauth is the login server for cross-platform mini-programs.
//
//	mpauth [serve] [-conf configs/config.yaml]   run the server
//	mpauth migrate [-conf ...] [-dry-run]        create or upgrade the schema
//	mpauth sandbox code -app-id ID -user NAME    mint a sandbox login code
//	mpauth keygen [-kid ID]                      print a new signing key (PEM)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-kratos/kratos/v2"
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	"github.com/go-kratos/kratos/v2/transport"
	"github.com/go-kratos/kratos/v2/transport/grpc"
	"github.com/go-kratos/kratos/v2/transport/http"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/observability"
	"github.com/mpauth/mpauth/internal/sandbox"
)

// Version is set with -ldflags "-X main.Version=...".
var Version = "dev"

const defaultConf = "configs/config.yaml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout)
	case "migrate":
		err = migrateCmd(args, stdout)
	case "sandbox":
		err = sandboxCmd(args, stdout)
	case "keygen":
		err = keygenCmd(args, stdout)
	case "version":
		fmt.Fprintln(stdout, "mpauth", Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mpauth:", err)
		return 1
	}
	return 0
}

const usage = `usage:
  mpauth [serve] [-conf configs/config.yaml]      run the server
  mpauth migrate [-conf ...] [-dry-run]           create or upgrade the database schema
  mpauth sandbox code -app-id ID -user NAME [-platform wechat] [-conf ... | -url http://127.0.0.1:8001]
                                                  mint a login code from the sandbox platforms
  mpauth keygen [-kid ID]                         print a new Ed25519 signing key (PKCS#8 PEM)
  mpauth version
`

func loadConfigFile(path string) (*conf.Bootstrap, error) { return conf.Load(path) }

func loadConfig(fs *flag.FlagSet, args []string) (*conf.Bootstrap, error) {
	path := fs.String("conf", defaultConf, "config file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return conf.Load(*path)
}

// newLogger writes observability.log_format lines ("json", the default: one
// object per line; "text": key=value) at log.level. Lines logged in a
// request carry its trace_id (also its request id, in X-Request-Id) and
// span_id.
func newLogger(bc *conf.Bootstrap, w io.Writer) log.Logger {
	l := log.With(observability.NewLogger(bc.GetObservability().GetLogFormat(), w),
		"ts", log.DefaultTimestamp, "service", "mpauth", "version", Version,
		"trace_id", tracing.TraceID(), "span_id", tracing.SpanID())
	return log.NewFilter(l, log.FilterLevel(log.ParseLevel(bc.GetLog().GetLevel())))
}

// stopTimeout bounds the graceful shutdown: on SIGTERM the servers stop
// accepting, in-flight requests get this long to finish, then the rest are
// cut off.
const stopTimeout = 15 * time.Second

// logLinger is how long log lines may gather before they are written
// together: at a thousand logins a second, one write in place of fifty.
const logLinger = 50 * time.Millisecond

func serve(args []string, stdout io.Writer) error {
	bc, err := loadConfig(flag.NewFlagSet("serve", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	// Requests hand their log lines over instead of writing them (see
	// AsyncWriter); up to 1 MiB waits while the output is slow, each line at
	// most logLinger.
	out := observability.NewAsyncWriter(stdout, 1<<20, logLinger)
	defer out.Close()
	logger := newLogger(bc, out)
	app, cleanup, err := wireApp(bc, logger)
	if err != nil {
		return err
	}
	defer cleanup()
	return app.Run()
}

func newApp(bc *conf.Bootstrap, logger log.Logger, hs *http.Server, gs *grpc.Server, sb *sandbox.Sandbox) *kratos.App {
	servers := []transport.Server{hs, gs}
	if sb != nil {
		servers = append(servers, sb)
	}
	return kratos.New(
		kratos.Server(servers...),
		kratos.Name("mpauth"),
		kratos.Version(Version),
		kratos.Logger(logger),
		kratos.StopTimeout(stopTimeout),
		kratos.AfterStart(func(context.Context) error {
			announce(bc, logger, sb)
			return nil
		}),
	)
}

// announce tells whoever started the server where it listens and what to do next.
func announce(bc *conf.Bootstrap, logger log.Logger, sb *sandbox.Sandbox) {
	h := log.NewHelper(logger)
	httpURL := "http://" + bc.Server.Http.Addr
	h.Infof("mpauth %s listening: HTTP %s, gRPC %s, JWKS %s/.well-known/jwks.json", Version, httpURL, bc.Server.Grpc.Addr, httpURL)
	if sb == nil {
		return
	}
	app := bc.Apps[0]
	h.Infof("sandbox platforms at %s (development only). Next step, mint a code and log in:", sb.Endpoint())
	h.Infof(`  CODE=$(curl -s %s/sandbox/codes -d '{"platform":"%s","app_id":"%s","user":"alice"}' | sed 's/.*"code":"\([^"]*\)".*/\1/')`, sb.Endpoint(), app.Platform, app.AppId)
	h.Infof(`  curl -s %s/v1/auth/login -d "{\"platform\":\"%s\",\"app_id\":\"%s\",\"code\":\"$CODE\"}"`, httpURL, app.Platform, app.AppId)
}

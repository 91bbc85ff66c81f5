package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"syscall"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/wechat"
	"github.com/mpauth/mpauth/internal/secretbox"
	"github.com/mpauth/mpauth/internal/token"
)

// The same-run ceilings, each run as a subprocess of this binary (as mpauth
// is its own process): a bare kratos HTTP server with one route, and a
// minimal login written directly on database/sql.

// Environment of the minimal login subprocess (kept off its command line).
const (
	envMinimalDSN        = "MPAUTH_BENCH_MINIMAL_DSN"
	envMinimalKey        = "MPAUTH_BENCH_MINIMAL_KEY"
	envMinimalSecretsKey = "MPAUTH_BENCH_MINIMAL_SECRETS_KEY"
)

// helloCmd serves a kratos http.Server with one route, POST /hello, which
// decodes the JSON body (the size of an introspection request) and answers
// a tiny JSON object. No middleware.
func helloCmd(args []string) error {
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := khttp.NewServer(khttp.Address(*addr))
	srv.Route("/").POST("/hello", func(ctx khttp.Context) error {
		var in struct {
			Token string `json:"token"`
		}
		if err := ctx.Bind(&in); err != nil {
			return err
		}
		return ctx.JSON(200, map[string]any{"active": true})
	})
	return serveUntilSignal(srv.Start, srv.Stop)
}

// serveUntilSignal runs start until SIGTERM/SIGINT, then stop.
func serveUntilSignal(start, stop func(context.Context) error) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- start(context.Background()) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return stop(sctx)
}

// minimalCmd serves the minimal login: POST /v1/auth/login with mpauth's
// request and reply, GET /healthz. It logs the benchmark's app in and signs
// as mpauth does in the benchmark, over poolFor's connections.
func minimalCmd(args []string) error {
	fs := flag.NewFlagSet("minimal", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	driver := fs.String("driver", "sqlite", "sqlite or mysql")
	platform := fs.String("platform", "", "the fake WeChat's scheme://host:port")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := token.ParsePrivateKeyPEM("bench", []byte(os.Getenv(envMinimalKey)))
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	tokens, err := benchTokens(key)
	if err != nil {
		return err
	}
	secret, err := secretbox.ParseKey(os.Getenv(envMinimalSecretsKey))
	if err != nil {
		return fmt.Errorf("secrets key: %w", err)
	}
	box, err := secretbox.New(benchSecretsKID, secretbox.Key{ID: benchSecretsKID, Secret: secret})
	if err != nil {
		return err
	}
	db, err := openSQL(*driver, os.Getenv(envMinimalDSN), poolFor(*driver))
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := newMinimal(db, *driver, *platform, benchAppID, benchSecret, tokens, box)
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	return serveUntilSignal(func(context.Context) error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, srv.Shutdown)
}

// minimal is the floor a login sits on: decode the request, ask the
// platform, run the statements a login needs in one transaction (the
// session_key sealed at rest, as mpauth stores it), sign an access token,
// answer JSON. It mirrors mpauth's statements (internal/biz
// auth.go + code_exchange.go, internal/data) for an app without union scope:
//
//	[INSERT code_exchanges (claim)]                    — when the table exists
//	BEGIN (READ COMMITTED on MySQL)
//	SELECT identity by (platform, app_id, openid) JOIN its user [FOR UPDATE on MySQL]
//	new user:       INSERT users; INSERT identities
//	returning user: UPDATE identities (last_login_at, session_key)
//	INSERT sessions; INSERT refresh_tokens
//	[UPDATE code_exchanges (done)]                     — when the table exists
//	COMMIT
//
// A transaction that lost a race is retried as mpauth retries it.
type minimal struct {
	db          *sql.DB
	platform    provider.Provider // mpauth's own WeChat provider
	appID       string
	tokens      *token.Manager
	box         *secretbox.Box
	selectIdent string
	holder      string
}

// minimalStatements lists the statements of one minimal login (for the
// report).
var minimalStatements = []string{"INSERT code_exchanges", "SELECT identity JOIN user", "new: INSERT users, INSERT identities | returning: UPDATE identities",
	"INSERT sessions", "INSERT refresh_tokens", "UPDATE code_exchanges"}

func newMinimal(db *sql.DB, driver, platformEndpoint, appID, secret string, tokens *token.Manager, box *secretbox.Box) (*minimal, error) {
	p, err := wechat.New(provider.App{Platform: provider.WeChat, AppID: appID, Secret: secret, Endpoint: platformEndpoint, Timeout: 3 * time.Second}, provider.Env{})
	if err != nil {
		return nil, err
	}
	m := &minimal{
		db: db, platform: p, appID: appID, tokens: tokens, box: box, holder: "i_minimal",
		selectIdent: "SELECT i.id, u.id, u.merged_into FROM identities i JOIN users u ON u.id = i.user_id WHERE i.platform = ? AND i.app_id = ? AND i.openid = ? LIMIT 2",
	}
	if driver == "mysql" {
		// As internal/data: row locks, no gap locks.
		m.selectIdent += " FOR UPDATE"
	}
	return m, nil
}

type loginRequest struct {
	Platform string `json:"platform"`
	AppID    string `json:"app_id"`
	Code     string `json:"code"`
}

type tokenReply struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int32  `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int32  `json:"refresh_expires_in"`
	UserID           string `json:"user_id"`
	IsNewUser        bool   `json:"is_new_user"`
}

const refreshTTL = 720 * time.Hour

// minimalMetrics serves the default registry: the Go and process collectors.
var minimalMetrics = promhttp.Handler()

func (m *minimal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok")
		return
	case r.URL.Path == "/metrics":
		// The Go collector's allocation counters, as mpauth serves them.
		minimalMetrics.ServeHTTP(w, r)
		return
	case r.URL.Path != "/v1/auth/login" || r.Method != http.MethodPost:
		http.NotFound(w, r)
		return
	}
	var in loginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Code == "" {
		answerError(w, 400, "INVALID_ARGUMENT")
		return
	}
	if in.Platform != "wechat" || in.AppID != m.appID {
		answerError(w, 400, "UNKNOWN_APP")
		return
	}
	reply, status, reason := m.login(r.Context(), in.Code)
	if reply == nil {
		answerError(w, status, reason)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(reply)
}

func answerError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%d,"reason":%q}`, status, reason)
}

func (m *minimal) login(ctx context.Context, code string) (*tokenReply, int, string) {
	now := time.Now()
	h := sha256.Sum256([]byte("wechat\x00" + m.appID + "\x00" + code + "\x00\x00"))
	hash := hex.EncodeToString(h[:])
	if _, err := m.db.ExecContext(ctx,
		"INSERT INTO code_exchanges (code_hash, state, holder, lease_until, session_id, user_id, is_new_user, expires_at) VALUES (?, 'pending', ?, ?, '', '', ?, ?)",
		hash, m.holder, now.Add(19*time.Second), false, now.Add(10*time.Minute)); err != nil {
		return nil, 503, logStorage("claim", err)
	}
	id, err := m.platform.Exchange(ctx, provider.Credentials{Code: code})
	if err != nil {
		return nil, 503, "PLATFORM_UNAVAILABLE"
	}
	refresh := biz.NewRefreshToken()
	sessionID := biz.NewSessionID()
	var (
		userID string
		isNew  bool
	)
	for attempt := 1; ; attempt++ { // biz.retryTx
		userID, isNew, err = m.record(ctx, id, sessionID, hash, refresh, now)
		if err == nil || attempt == 8 || !retryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt) * time.Duration(1+mrand.IntN(5)) * time.Millisecond)
	}
	if err != nil {
		return nil, 503, logStorage("record login", err)
	}
	tok, claims, err := m.tokens.Sign(token.Claims{Subject: userID, SessionID: sessionID, Platform: "wechat", AppID: m.appID})
	if err != nil {
		return nil, 500, "INTERNAL"
	}
	return &tokenReply{
		AccessToken: tok, TokenType: "Bearer", ExpiresIn: int32(claims.ExpiresAt.Sub(claims.IssuedAt).Seconds()),
		RefreshToken: refresh, RefreshExpiresIn: int32(refreshTTL.Seconds()), UserID: userID, IsNewUser: isNew,
	}, 200, ""
}

// record is the login's transaction.
func (m *minimal) record(ctx context.Context, id *provider.Identity, sessionID, codeHash, refresh string, now time.Time) (string, bool, error) {
	tx, err := m.db.BeginTx(ctx, nil) // MySQL: READ COMMITTED per connection, as internal/data
	if err != nil {
		return "", false, err
	}
	defer func() { _ = tx.Rollback() }()
	sessionKey, err := m.box.Seal(id.SessionKey, data.SessionKeyAAD("wechat", m.appID, id.OpenID)...)
	if err != nil {
		return "", false, err
	}
	var (
		identID int64
		userID  string
		isNew   bool
	)
	var merged sql.NullString // an alias: mpauth follows it; the benchmark has none
	err = tx.QueryRowContext(ctx, m.selectIdent, "wechat", m.appID, id.OpenID).Scan(&identID, &userID, &merged)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		isNew, userID = true, biz.NewUserID()
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO users (id, created_at, updated_at, phone_number, phone_country_code, nickname, avatar_url) VALUES (?, ?, ?, '', '', '', '')",
			userID, now, now); err != nil {
			return "", false, err
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO identities (created_at, updated_at, platform, app_id, openid, union_scope, unionid, session_key, last_login_at, user_id) VALUES (?, ?, 'wechat', ?, ?, '', '', ?, ?, ?)",
			now, now, m.appID, id.OpenID, sessionKey, now, userID); err != nil {
			return "", false, err
		}
	case err != nil:
		return "", false, err
	default:
		if _, err := tx.ExecContext(ctx,
			"UPDATE identities SET updated_at = ?, last_login_at = ?, union_scope = '', unionid = '', session_key = ? WHERE id = ?",
			now, now, sessionKey, identID); err != nil {
			return "", false, err
		}
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO sessions (id, created_at, updated_at, platform, app_id, revoke_reason, user_id) VALUES (?, ?, ?, 'wechat', ?, '', ?)",
		sessionID, now, now, m.appID, userID); err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO refresh_tokens (created_at, updated_at, token_hash, expires_at, session_id) VALUES (?, ?, ?, ?, ?)",
		now, now, biz.HashRefreshToken(refresh), now.Add(refreshTTL), sessionID); err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE code_exchanges SET state = 'done', session_id = ?, user_id = ?, is_new_user = ? WHERE code_hash = ? AND holder = ?",
		sessionID, userID, isNew, codeHash, m.holder); err != nil {
		return "", false, err
	}
	return userID, isNew, tx.Commit()
}

// retryable: the transaction lost a race (as mpauth's ErrConcurrentUpdate).
func retryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205 || me.Number == 1020 || me.Number == 1062
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code() & 0xff
		return c == 5 || c == 6 || c == 19 // busy, locked, constraint
	}
	return false
}

var storageLogs = make(chan struct{}, 5)

// logStorage logs the first few storage failures to stderr (the bench keeps
// the subprocess's stderr in its log file) and returns the reason.
func logStorage(what string, err error) string {
	select {
	case storageLogs <- struct{}{}:
		fmt.Fprintf(os.Stderr, "minimal login: %s: %v\n", what, err)
	default:
	}
	return "STORAGE_UNAVAILABLE"
}

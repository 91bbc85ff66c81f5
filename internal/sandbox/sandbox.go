// Package sandbox is a fake of each platform's login server. It lets anyone
// run full logins with no real mini-program and no internet access.
//
// The real providers reach it only through each app's endpoint override
// (provider.App.Endpoint), so a sandbox login runs the production code path
// against the platform's real wire format. A test, a demo page or the CLI
// (`mpauth sandbox code`) mints a login code for a made-up user through the
// control API, hands it to the login endpoint as a mini-program would, and
// the provider exchanges it here.
//
// The core (this file) holds what every platform shares: the configured apps,
// login codes (random, single use, expiring, bound to one app), identities
// (deterministic per user), session keys, injected faults and the control
// API under /sandbox/. Each platform's wire format lives in its own file
// (wechat.go) and is listed in platforms below.
//
// Only for development and demos: anyone who can reach the control API can
// log in as anyone on every app whose endpoint points here.
package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/provider"
)

// Defaults.
const (
	// DefaultAddr keeps the sandbox on loopback unless configured otherwise.
	DefaultAddr = "127.0.0.1:8001"
	// DefaultCodeTTL is WeChat's login code lifetime (five minutes).
	DefaultCodeTTL = 5 * time.Minute
)

// Limits that keep memory bounded and requests small.
const (
	// maxCodes caps live (unexpired) codes; minting beyond it answers 429.
	maxCodes = 100_000
	// maxSessions caps remembered session keys (one per app and user).
	maxSessions = 100_000
	// maxFaults caps injected faults.
	maxFaults = 10_000
	// maxUserLen caps the made-up user names.
	maxUserLen = 256
	// maxControlBody caps a control API request body.
	maxControlBody = 64 << 10
	// maxHold caps how long the "timeout" fault holds a request.
	maxHold = time.Minute
)

// Fault kinds accepted by POST /sandbox/faults. The first three are business
// errors each platform answers in its own format; the others break the
// transport the same way on every platform.
const (
	FaultRateLimited     = "rate_limited"     // the platform throttles the user
	FaultBusy            = "busy"             // transient system error
	FaultBlocked         = "blocked"          // risk control refuses the user
	FaultUnavailableHTTP = "unavailable_http" // HTTP 503 with an HTML body
	FaultMalformed       = "malformed"        // HTTP 200 with a truncated body
	FaultTimeout         = "timeout"          // no answer until the caller gives up
)

var faultKinds = []string{FaultRateLimited, FaultBusy, FaultBlocked, FaultUnavailableHTTP, FaultMalformed, FaultTimeout}

// platform is one faked platform: its identity formats and its routes. Adding
// a platform is one file defining such a value plus one line in platforms.
type platform struct {
	name string
	// newCode returns a fresh random login code in the platform's format.
	newCode func() string
	// openID and unionID format the user's ids; digest makes them
	// deterministic.
	openID  func(appID, user string) string
	unionID func(scope, user string) string
	// newSessionKey returns a fresh random session key.
	newSessionKey func() string
	// routes registers the platform's fake endpoints (and any control
	// routes of its own, under /sandbox/<platform>/).
	routes func(s *Sandbox, p *platform, mux *http.ServeMux)
	// sealUserData, when set, encrypts a user-data document (phone or
	// profile) the way the platform's client API hands it to the
	// mini-program: with the user's current session key, or the app's own
	// key where the platform uses one.
	sealUserData func(s *Sandbox, app provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error)
}

// UserDataDoc describes the user data to seal; each platform renders it in
// its own JSON shape (and watermark).
type UserDataDoc struct {
	// Kind is "phone" or "profile".
	Kind        string `json:"kind"`
	Phone       string `json:"phone,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	Nickname    string `json:"nickname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
	// Watermark overrides the app id in the watermark (to test mismatches).
	WatermarkAppID string `json:"watermark_app_id,omitempty"`
}

// SealedUserData is what the mini-program would receive and send to mpauth.
type SealedUserData struct {
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv,omitempty"`
	Sign          string `json:"sign,omitempty"`
}

// platforms lists every faked platform.
var platforms = []*platform{
	wechat,
	baidu,
	douyin,
	kuaishou,
	alipay,
}

func lookupPlatform(name string) *platform {
	for _, p := range platforms {
		if p.name == name {
			return p
		}
	}
	return nil
}

func platformNames() []string {
	out := make([]string, len(platforms))
	for i, p := range platforms {
		out[i] = p.name
	}
	sort.Strings(out)
	return out
}

// Option configures a Sandbox.
type Option func(*Sandbox)

// WithClock replaces time.Now (tests advance it to expire codes).
func WithClock(now func() time.Time) Option {
	return func(s *Sandbox) {
		if now != nil {
			s.now = now
		}
	}
}

// WithCodeTTL sets how long a minted code stays valid; d <= 0 keeps the
// default of five minutes.
func WithCodeTTL(d time.Duration) Option {
	return func(s *Sandbox) {
		if d > 0 {
			s.ttl = d
		}
	}
}

// WithAddr sets the address Start and Listen bind (host:port; port 0 picks a
// free one). The default is DefaultAddr.
func WithAddr(addr string) Option {
	return func(s *Sandbox) {
		if addr != "" {
			s.addr = addr
		}
	}
}

// WithLogger sets the logger; the default is kratos's global logger. The
// sandbox never logs secrets, codes or session keys.
func WithLogger(l log.Logger) Option {
	return func(s *Sandbox) {
		if l != nil {
			s.logger = l
		}
	}
}

type appKey struct{ platform, appID string }

type userKey struct{ platform, appID, user string }

type codeKey struct{ platform, code string }

type codeEntry struct {
	appID   string
	user    string
	expires time.Time
	used    bool
}

type sessionEntry struct {
	key    string
	issued time.Time
}

type fault struct {
	platform, appID, user string
	kind                  string
	// remaining answers before the fault clears itself; 0 means until
	// cleared.
	remaining int
}

// Sandbox fakes the login servers of the configured apps' platforms. It is an
// http.Handler and a kratos transport.Server. All methods are safe for
// concurrent use.
type Sandbox struct {
	now    func() time.Time
	ttl    time.Duration
	addr   string
	logger log.Logger
	log    *log.Helper
	apps   map[appKey]provider.App
	order  []appKey // apps in configuration order, for listing
	mux    *http.ServeMux

	mu       sync.Mutex
	codes    map[codeKey]*codeEntry
	nextGC   time.Time
	sessions map[userKey]sessionEntry
	faults   []*fault
	// state holds each platform's own fake state (issued access tokens,
	// phone codes, ...), keyed by platform name; see platformState.
	state map[string]any

	// Serving state.
	srvMu   sync.Mutex
	srv     *http.Server
	lis     net.Listener
	serving bool
	stopped bool
	stop    chan struct{} // closed by Stop; releases held requests
}

// Sandbox is a kratos transport.Server (kratos.Server(sb) adds it to an App).
// The method set is spelled out instead of importing kratos/transport, whose
// encoding imports would need go.sum entries this package has no use for.
var (
	_ http.Handler = (*Sandbox)(nil)
	_ interface {
		Start(context.Context) error
		Stop(context.Context) error
	} = (*Sandbox)(nil)
)

// New returns a sandbox that knows apps (to check credentials and compute
// unionids). Apps of platforms it does not fake are listed but cannot get
// codes; of duplicate (platform, app_id) entries the first wins.
func New(apps []provider.App, opts ...Option) *Sandbox {
	s := &Sandbox{
		now:      time.Now,
		ttl:      DefaultCodeTTL,
		addr:     DefaultAddr,
		logger:   log.GetLogger(),
		apps:     make(map[appKey]provider.App, len(apps)),
		codes:    make(map[codeKey]*codeEntry),
		sessions: make(map[userKey]sessionEntry),
		state:    make(map[string]any),
		stop:     make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.log = log.NewHelper(log.With(s.logger, "module", "sandbox"))
	for _, a := range apps {
		k := appKey{a.Platform, a.AppID}
		if _, dup := s.apps[k]; dup || a.AppID == "" {
			continue
		}
		s.apps[k] = a
		s.order = append(s.order, k)
	}
	s.mux = http.NewServeMux()
	s.routes(s.mux)
	for _, p := range platforms {
		p.routes(s, p, s.mux)
	}
	return s
}

// ServeHTTP serves the control API and every faked platform.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Listen binds the configured address unless already bound and returns the
// sandbox's URL (see Endpoint). Start calls it; call it first to learn the
// port picked for ":0" before Start blocks.
func (s *Sandbox) Listen() (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if err := s.listenLocked(); err != nil {
		return "", err
	}
	return endpointOf(s.lis.Addr()), nil
}

func (s *Sandbox) listenLocked() error {
	if s.stopped {
		return errors.New("sandbox: stopped")
	}
	if s.lis != nil {
		return nil
	}
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("sandbox: listen on %s: %w", s.addr, err)
	}
	s.lis = lis
	return nil
}

// Endpoint returns http://host:port of the bound listener, or "" before
// Listen or Start has bound it. An unspecified host (0.0.0.0, ::) is given as
// 127.0.0.1: the URL is meant for the apps' endpoint overrides on this host.
func (s *Sandbox) Endpoint() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.lis == nil {
		return ""
	}
	return endpointOf(s.lis.Addr())
}

func endpointOf(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}

// Start binds (unless Listen already did) and serves until Stop, like
// kratos's own servers: it blocks and returns nil after a graceful stop.
// Requests' contexts derive from ctx. A Sandbox serves once; Start after Stop
// returns nil at once.
func (s *Sandbox) Start(ctx context.Context) error {
	s.srvMu.Lock()
	if s.stopped {
		s.srvMu.Unlock()
		return nil
	}
	if s.serving {
		s.srvMu.Unlock()
		return errors.New("sandbox: already started")
	}
	if err := s.listenLocked(); err != nil {
		s.srvMu.Unlock()
		return err
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.serving = true
	srv, lis := s.srv, s.lis
	s.srvMu.Unlock()

	s.log.Infof("[sandbox] fake platforms %v listening on %s", platformNames(), endpointOf(lis.Addr()))
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Stop stops serving gracefully: it releases requests held by the timeout
// fault and waits for the others until ctx ends, then closes what remains.
func (s *Sandbox) Stop(ctx context.Context) error {
	s.srvMu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	srv, lis, serving := s.srv, s.lis, s.serving
	s.srvMu.Unlock()

	if !serving {
		// Bound by Listen but never served: nobody else closes it.
		if lis != nil {
			return lis.Close()
		}
		return nil
	}
	s.log.Info("[sandbox] stopping")
	err := srv.Shutdown(ctx)
	if err != nil && ctx.Err() != nil {
		s.log.Warn("[sandbox] could not stop gracefully in time, closing")
		err = srv.Close()
	}
	return err
}

// SessionKey returns the session key last issued to user on appID, if any.
// Should the same app_id be configured on several platforms, the most
// recently issued key wins.
func (s *Sandbox) SessionKey(appID, user string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best sessionEntry
	found := false
	for _, p := range platforms {
		e, ok := s.sessions[userKey{p.name, appID, user}]
		if ok && (!found || e.issued.After(best.issued)) {
			best, found = e, true
		}
	}
	return best.key, found
}

// platformState returns the platform's own state, created by init on first
// use. Callers hold s.mu while they read or change it.
func (s *Sandbox) platformState(name string, init func() any) any {
	st, ok := s.state[name]
	if !ok {
		st = init()
		s.state[name] = st
	}
	return st
}

// app returns the configured app of a faked platform.
func (s *Sandbox) app(platform, appID string) (provider.App, bool) {
	a, ok := s.apps[appKey{platform, appID}]
	return a, ok
}

// ---- codes and logins ----

// mint issues a login code for user on app.
func (s *Sandbox) mint(p *platform, appID, user string) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now, false)
	if len(s.codes) >= maxCodes {
		s.gcLocked(now, true)
		if len(s.codes) >= maxCodes {
			return "", errTooManyCodes
		}
	}
	for {
		code := p.newCode()
		k := codeKey{p.name, code}
		if _, taken := s.codes[k]; taken {
			continue
		}
		s.codes[k] = &codeEntry{appID: appID, user: user, expires: now.Add(s.ttl)}
		return code, nil
	}
}

var errTooManyCodes = errors.New("too many live codes; wait for some to expire")

// gcLocked drops expired codes. Unless forced it sweeps at most once per
// TTL (or minute) of clock time, so with any traffic the map holds at most
// the codes minted within about two TTLs.
func (s *Sandbox) gcLocked(now time.Time, force bool) {
	if !force && now.Before(s.nextGC) {
		return
	}
	for k, e := range s.codes {
		if !now.Before(e.expires) {
			delete(s.codes, k)
		}
	}
	s.nextGC = now.Add(min(s.ttl, time.Minute))
}

// login is the outcome of a successful exchange.
type login struct {
	user       string
	openID     string
	unionID    string
	sessionKey string
}

// Exchange outcomes other than success.
var (
	errCodeInvalid = errors.New("code invalid, expired or for another app")
	errCodeUsed    = errors.New("code already used")
)

// faultError is an injected fault answered instead of the exchange.
type faultError struct{ kind, user string }

func (e *faultError) Error() string { return "injected fault " + e.kind }

// redeem exchanges code for app. It returns errCodeInvalid, errCodeUsed or a
// *faultError. An injected fault is answered before the code is consumed
// (the platform refused the call), so a caller retrying the same code after
// the fault clears succeeds, as after a real transient error.
func (s *Sandbox) redeem(p *platform, app provider.App, code string) (login, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLocked(now, false)
	e, ok := s.codes[codeKey{p.name, code}]
	if !ok || !now.Before(e.expires) || e.appID != app.AppID {
		return login{}, errCodeInvalid
	}
	if f := s.takeFaultLocked(p.name, app.AppID, e.user); f != "" {
		return login{user: e.user}, &faultError{kind: f, user: e.user}
	}
	if e.used {
		return login{user: e.user}, errCodeUsed
	}
	e.used = true // kept until expiry so a reuse is told apart from a bad code
	l := login{
		user:       e.user,
		openID:     p.openID(app.AppID, e.user),
		sessionKey: p.newSessionKey(),
	}
	if app.UnionScope != "" {
		l.unionID = p.unionID(app.UnionScope, e.user)
	}
	// One valid session key per user and app: a new login replaces it.
	s.storeSessionLocked(userKey{p.name, app.AppID, e.user}, sessionEntry{key: l.sessionKey, issued: now})
	return l, nil
}

// storeSessionLocked records a session key; past maxSessions users it forgets
// the one that logged in longest ago, so memory stays bounded.
func (s *Sandbox) storeSessionLocked(k userKey, e sessionEntry) {
	if _, ok := s.sessions[k]; !ok && len(s.sessions) >= maxSessions {
		var oldest userKey
		first := true
		for ok, oe := range s.sessions {
			if first || oe.issued.Before(s.sessions[oldest].issued) {
				oldest, first = ok, false
			}
		}
		delete(s.sessions, oldest)
	}
	s.sessions[k] = e
}

// takeFaultLocked returns the kind of the fault matching the call and counts
// it down; an app-specific fault wins over a platform-wide one.
func (s *Sandbox) takeFaultLocked(platform, appID, user string) string {
	idx := -1
	for i, f := range s.faults {
		if f.platform != platform || f.user != user || (f.appID != "" && f.appID != appID) {
			continue
		}
		if idx < 0 || (f.appID != "" && s.faults[idx].appID == "") {
			idx = i
		}
	}
	if idx < 0 {
		return ""
	}
	f := s.faults[idx]
	if f.remaining > 0 {
		f.remaining--
		if f.remaining == 0 {
			s.faults = append(s.faults[:idx], s.faults[idx+1:]...)
		}
	}
	return f.kind
}

// ---- identities ----

// identityLabel keys the digests of all fake ids. It is fixed, so ids are the
// same across restarts and machines; it has no secrecy value.
const identityLabel = "mpauth sandbox identity v1"

// digest is HMAC-SHA256 under identityLabel of the length-prefixed parts, so
// that no two different part lists collide by concatenation.
func digest(parts ...string) []byte {
	m := hmac.New(sha256.New, []byte(identityLabel))
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// ---- random values ----

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters drawn uniformly from alphabet (at most
// 256 characters) with crypto/rand.
func randomString(n int, alphabet string) string {
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		rand.Read(buf) // never fails since Go 1.24
		for _, b := range buf {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ---- control API ----

func (s *Sandbox) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sandbox/{$}", s.handleIndex)
	mux.HandleFunc("GET /sandbox/apps", s.handleApps)
	mux.HandleFunc("POST /sandbox/codes", s.handleMintCode)
	mux.HandleFunc("GET /sandbox/faults", s.handleListFaults)
	mux.HandleFunc("POST /sandbox/faults", s.handleAddFault)
	mux.HandleFunc("DELETE /sandbox/faults", s.handleClearFaults)
	mux.HandleFunc("POST /sandbox/user-data", s.handleSealUserData)
	mux.HandleFunc("/sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no sandbox route %s %s", r.Method, r.URL.Path)})
	})
}

// apiError is every control API error body. Field names the request field at
// fault, when there is one.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func fieldError(field, format string, args ...any) apiError {
	return apiError{Error: field + ": " + fmt.Sprintf(format, args...), Field: field}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body strictly (unknown fields are errors, so
// typos show up).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid JSON body: " + err.Error()})
		return false
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid JSON body: trailing data"})
		return false
	}
	return true
}

// checkTarget validates platform, app_id (required unless optionalApp) and
// user; it returns the platform or writes a 400.
func (s *Sandbox) checkTarget(w http.ResponseWriter, platformName, appID, user string, optionalApp bool) *platform {
	p := lookupPlatform(platformName)
	if p == nil {
		writeJSON(w, http.StatusBadRequest, fieldError("platform", "unknown or unsupported platform %q (sandbox fakes: %s)", platformName, strings.Join(platformNames(), ", ")))
		return nil
	}
	switch {
	case appID == "" && !optionalApp:
		writeJSON(w, http.StatusBadRequest, fieldError("app_id", "required"))
		return nil
	case appID != "":
		if _, ok := s.app(p.name, appID); !ok {
			writeJSON(w, http.StatusBadRequest, fieldError("app_id", "no %s app %q is configured", p.name, appID))
			return nil
		}
	}
	switch {
	case user == "":
		writeJSON(w, http.StatusBadRequest, fieldError("user", "required (any name for the made-up user)"))
		return nil
	case len(user) > maxUserLen:
		writeJSON(w, http.StatusBadRequest, fieldError("user", "longer than %d bytes", maxUserLen))
		return nil
	}
	return p
}

type appView struct {
	Platform   string `json:"platform"`
	AppID      string `json:"app_id"`
	UnionScope string `json:"union_scope,omitempty"`
	// Faked says whether the sandbox fakes the app's platform.
	Faked bool `json:"faked"`
}

func (s *Sandbox) appViews() []appView {
	out := make([]appView, 0, len(s.order))
	for _, k := range s.order {
		a := s.apps[k]
		out = append(out, appView{Platform: a.Platform, AppID: a.AppID, UnionScope: a.UnionScope, Faked: lookupPlatform(a.Platform) != nil})
	}
	return out
}

func (s *Sandbox) handleIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"platforms":        platformNames(),
		"apps":             s.appViews(),
		"code_ttl_seconds": int64(s.ttl / time.Second),
		"faults":           faultKinds,
		"routes": []string{
			"GET /sandbox/apps",
			`POST /sandbox/codes {"platform","app_id","user"}`,
			"GET /sandbox/faults",
			`POST /sandbox/faults {"platform","app_id"?,"user","error","count"?}`,
			"DELETE /sandbox/faults[?platform=&app_id=&user=]",
		},
	})
}

func (s *Sandbox) handleApps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"apps": s.appViews()})
}

// MintRequest is the body of POST /sandbox/codes.
type MintRequest struct {
	Platform string `json:"platform"`
	AppID    string `json:"app_id"`
	User     string `json:"user"`
}

// MintResponse is the answer of POST /sandbox/codes.
type MintResponse struct {
	Code string `json:"code"`
	// ExpiresIn is the code's lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

func (s *Sandbox) handleMintCode(w http.ResponseWriter, r *http.Request) {
	var req MintRequest
	if !decode(w, r, &req) {
		return
	}
	p := s.checkTarget(w, req.Platform, req.AppID, req.User, false)
	if p == nil {
		return
	}
	code, err := s.mint(p, req.AppID, req.User)
	if err != nil {
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: err.Error()})
		return
	}
	s.log.Infow("msg", "code minted", "platform", p.name, "app_id", req.AppID, "user", req.User)
	writeJSON(w, http.StatusOK, MintResponse{Code: code, ExpiresIn: int64(s.ttl / time.Second)})
}

// SealRequest is the body of POST /sandbox/user-data: encrypt a phone number
// or profile for a user who logged in, as the platform's client API would.
type SealRequest struct {
	Platform string `json:"platform"`
	AppID    string `json:"app_id"`
	User     string `json:"user"`
	UserDataDoc
}

func (s *Sandbox) handleSealUserData(w http.ResponseWriter, r *http.Request) {
	var req SealRequest
	if !decode(w, r, &req) {
		return
	}
	p := s.checkTarget(w, req.Platform, req.AppID, req.User, false)
	if p == nil {
		return
	}
	if p.sealUserData == nil {
		writeJSON(w, http.StatusBadRequest, fieldError("platform", "%s has no encrypted user data in the sandbox", p.name))
		return
	}
	switch req.Kind {
	case "phone":
		if req.Phone == "" {
			writeJSON(w, http.StatusBadRequest, fieldError("phone", "required for kind phone"))
			return
		}
	case "profile":
	default:
		writeJSON(w, http.StatusBadRequest, fieldError("kind", "must be phone or profile"))
		return
	}
	s.mu.Lock()
	sess, ok := s.sessions[userKey{p.name, req.AppID, req.User}]
	s.mu.Unlock()
	if !ok && p.name != provider.Alipay { // Alipay seals with the app's key
		writeJSON(w, http.StatusBadRequest, fieldError("user", "%q has not logged in to %s yet: log in first, the data is sealed with the session key", req.User, req.AppID))
		return
	}
	app, _ := s.app(p.name, req.AppID)
	sealed, err := p.sealUserData(s, app, sess.key, req.UserDataDoc)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, sealed)
}

// FaultSpec is the body of POST /sandbox/faults and an item of GET
// /sandbox/faults.
type FaultSpec struct {
	Platform string `json:"platform"`
	// AppID limits the fault to one app; empty means every app of the
	// platform.
	AppID string `json:"app_id,omitempty"`
	User  string `json:"user"`
	// Error is one of rate_limited, busy, blocked, unavailable_http,
	// malformed, timeout.
	Error string `json:"error"`
	// Count is how many exchanges answer the fault (in a listing: how many
	// remain); 0 means until DELETE /sandbox/faults.
	Count int `json:"count,omitempty"`
}

func (s *Sandbox) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var req FaultSpec
	if !decode(w, r, &req) {
		return
	}
	p := s.checkTarget(w, req.Platform, req.AppID, req.User, true)
	if p == nil {
		return
	}
	known := false
	for _, k := range faultKinds {
		known = known || k == req.Error
	}
	if !known {
		writeJSON(w, http.StatusBadRequest, fieldError("error", "unknown fault %q (one of %s)", req.Error, strings.Join(faultKinds, ", ")))
		return
	}
	if req.Count < 0 {
		writeJSON(w, http.StatusBadRequest, fieldError("count", "must be >= 0 (0 or absent: until cleared)"))
		return
	}
	f := &fault{platform: p.name, appID: req.AppID, user: req.User, kind: req.Error, remaining: req.Count}
	s.mu.Lock()
	replaced := false
	for i, old := range s.faults {
		if old.platform == f.platform && old.appID == f.appID && old.user == f.user {
			s.faults[i], replaced = f, true
			break
		}
	}
	if !replaced && len(s.faults) >= maxFaults {
		s.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: "too many faults; DELETE /sandbox/faults first"})
		return
	}
	if !replaced {
		s.faults = append(s.faults, f)
	}
	s.mu.Unlock()
	s.log.Infow("msg", "fault set", "platform", f.platform, "app_id", f.appID, "user", f.user, "fault", f.kind, "count", f.remaining)
	writeJSON(w, http.StatusOK, req)
}

func (s *Sandbox) handleListFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := make([]FaultSpec, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, FaultSpec{Platform: f.platform, AppID: f.appID, User: f.user, Error: f.kind, Count: f.remaining})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"faults": out})
}

// handleClearFaults deletes every fault, or those matching all of the
// platform, app_id and user query parameters given.
func (s *Sandbox) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	match := func(f *fault) bool {
		return matches(q, "platform", f.platform) && matches(q, "app_id", f.appID) && matches(q, "user", f.user)
	}
	s.mu.Lock()
	kept := s.faults[:0]
	for _, f := range s.faults {
		if !match(f) {
			kept = append(kept, f)
		}
	}
	cleared := len(s.faults) - len(kept)
	clear(s.faults[len(kept):])
	s.faults = kept
	s.mu.Unlock()
	s.log.Infow("msg", "faults cleared", "count", cleared)
	writeJSON(w, http.StatusOK, map[string]any{"cleared": cleared})
}

func matches(q url.Values, key, v string) bool {
	return !q.Has(key) || q.Get(key) == v
}

// ---- transport faults (the same on every platform) ----

// writeTransportFault answers the transport-level fault kinds and reports
// whether kind was one of them.
func (s *Sandbox) writeTransportFault(w http.ResponseWriter, r *http.Request, kind string) bool {
	switch kind {
	case FaultUnavailableHTTP:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n")
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"session_key":"`)
	case FaultTimeout:
		t := time.NewTimer(maxHold)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return true // the caller gave up; nobody reads an answer
		case <-s.stop:
		case <-t.C:
		}
		w.WriteHeader(http.StatusGatewayTimeout)
	default:
		return false
	}
	return true
}

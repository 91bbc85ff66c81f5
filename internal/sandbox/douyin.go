package sandbox

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// The Douyin fake, answered as developer.toutiao.com does (platforms.md §3):
//
//   - POST /api/apps/v2/jscode2session: code2Session v2, JSON in and out,
//     HTTP 200 with {"err_no","err_tips","log_id","data"} for successes and
//     business errors alike, empty strings for what does not apply.
//   - POST /api/apps/v2/token: the client access token, remembered with its
//     expiry; fetching again cuts the app's previous token to five minutes.
//   - POST /sandbox/douyin/anonymous-codes {"app_id","user"} (control API):
//     an anonymousCode of tt.login for that user's device. Exchanged alone
//     it gives a guest login (anonymous_openid only); exchanged together
//     with a login code it adds the anonymous_openid to the login.
//
// Login codes come from POST /sandbox/codes like on every platform; both
// kinds of code are single use, bound to one app and expire after the
// sandbox's code TTL (Douyin's real lifetime is UNCONFIRMED). Other methods
// on the API paths get the mux's 405 (what Douyin answers is UNCONFIRMED).

var douyin = &platform{
	name: provider.Douyin,
	// tt.login codes look like fb93de745...xBa9DyeMuM8q4QQLeD (the doc
	// example, partly masked): 32 alphanumerics here.
	newCode: func() string { return randomString(32, alnum) },
	// openids look like _000kVq7iperbx_ahV... (platforms.md §3.1; the full
	// length is UNCONFIRMED): "_000" and 32 base64url characters here.
	openID: func(appID, user string) string {
		return douyinOpenID(digest("douyin openid", appID, user))
	},
	// The unionid format is UNCONFIRMED; a UUID-shaped id here. Its scope is
	// the app's union_scope (Douyin: per developer and host app).
	unionID: func(scope, user string) string {
		return douyinUUID(digest("douyin unionid", scope, user))
	},
	// session_key: 16 random bytes, 24 base64 characters, like the real
	// fmINRdLK7DauAM72joFfZQ==.
	newSessionKey: func() string { return base64.StdEncoding.EncodeToString(randomBytes(16)) },
	// routes is set by init: the control route validates its target with
	// checkTarget, which reads platforms, which holds this value.
	sealUserData: sealDouyinUserData,
}

func init() { douyin.routes = douyinRoutes }

func douyinRoutes(s *Sandbox, p *platform, mux *http.ServeMux) {
	mux.HandleFunc("POST "+douyinSessionPath, func(w http.ResponseWriter, r *http.Request) {
		s.douyinJSCode2Session(w, r, p)
	})
	mux.HandleFunc("POST "+douyinTokenPath, func(w http.ResponseWriter, r *http.Request) {
		s.douyinToken(w, r, p)
	})
	mux.HandleFunc("POST /sandbox/douyin/anonymous-codes", s.handleMintDouyinAnonymousCode)
}

const (
	douyinSessionPath = "/api/apps/v2/jscode2session"
	douyinTokenPath   = "/api/apps/v2/token"
	// douyinTokenTTL is the documented token lifetime; a new token cuts the
	// previous one's to douyinTokenRollover.
	douyinTokenTTL      = 2 * time.Hour
	douyinTokenRollover = 5 * time.Minute
	// maxDouyinTokens caps live access tokens (every app's, all kept until
	// they expire).
	maxDouyinTokens = 10_000
	// maxDouyinBody caps a request body of the fake API.
	maxDouyinBody = 64 << 10
)

func douyinOpenID(body []byte) string {
	return "_000" + base64.RawURLEncoding.EncodeToString(body)[:32]
}

// douyinAnonymousOpenID is stable per app and device user, and different
// from the user's openid.
func douyinAnonymousOpenID(appID, user string) string {
	return douyinOpenID(digest("douyin anonymous openid", appID, user))
}

func douyinUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Douyin err_no values and err_tips texts. The codes are the published
// table (platforms.md §3.1, §3.4); "bad code", "bad params" and "bad secret"
// are real texts, the others are written the same way (UNCONFIRMED).
// Providers must match on err_no only.
const (
	dySuccess      = 0
	dySystemError  = -1
	dyBadParams    = 40014
	dyBadAppID     = 40015
	dyBadSecret    = 40017
	dyBadCode      = 40018
	dyBadAnonCode  = 40019
	dyBadGrantType = 40020
)

var dyTips = map[int]string{
	dySuccess:      "success",
	dySystemError:  "system error",
	dyBadParams:    "bad params",
	dyBadAppID:     "bad appid",
	dyBadSecret:    "bad secret",
	dyBadCode:      "bad code",
	dyBadAnonCode:  "bad anonymous_code",
	dyBadGrantType: "bad grant_type",
}

// douyinAnswer is every answer of the v2 API. log_id is in the current
// code2Session doc; the token doc's examples have none.
type douyinAnswer struct {
	ErrNo   int    `json:"err_no"`
	ErrTips string `json:"err_tips"`
	LogID   string `json:"log_id,omitempty"`
	Data    any    `json:"data"`
}

// douyinSessionData always carries every field, empty when not applicable,
// like the real answer (dopenid included; its meaning is UNCONFIRMED and it
// is always empty here).
type douyinSessionData struct {
	SessionKey      string `json:"session_key"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid"`
	DOpenID         string `json:"dopenid"`
}

type douyinTokenData struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// ---- platform state ----

// douyinState is the fake's own state (under s.mu): anonymous codes and
// issued access tokens.
type douyinState struct {
	anon       map[string]*codeEntry
	nextAnonGC time.Time
	tokens     map[string]douyinTokenEntry
}

type douyinTokenEntry struct {
	appID   string
	expires time.Time
}

// douyinStateLocked returns the state; the caller holds s.mu.
func (s *Sandbox) douyinStateLocked() *douyinState {
	return s.platformState(provider.Douyin, func() any {
		return &douyinState{anon: make(map[string]*codeEntry), tokens: make(map[string]douyinTokenEntry)}
	}).(*douyinState)
}

// gcAnonLocked drops expired anonymous codes, at most once per TTL (or
// minute) unless forced, like the core's login codes.
func (st *douyinState) gcAnonLocked(now time.Time, ttl time.Duration, force bool) {
	if !force && now.Before(st.nextAnonGC) {
		return
	}
	for k, e := range st.anon {
		if !now.Before(e.expires) {
			delete(st.anon, k)
		}
	}
	st.nextAnonGC = now.Add(min(ttl, time.Minute))
}

// douyinMintAnonymous issues an anonymous code of user on appID.
func (s *Sandbox) douyinMintAnonymous(appID, user string) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.douyinStateLocked()
	st.gcAnonLocked(now, s.ttl, false)
	if len(st.anon) >= maxCodes {
		st.gcAnonLocked(now, s.ttl, true)
		if len(st.anon) >= maxCodes {
			return "", errTooManyCodes
		}
	}
	for {
		code := randomString(32, alnum)
		if _, taken := st.anon[code]; taken {
			continue
		}
		st.anon[code] = &codeEntry{appID: appID, user: user, expires: now.Add(s.ttl)}
		return code, nil
	}
}

// douyinTakeAnonymous consumes an anonymous code of app and returns its
// user. With checkFault (the code is exchanged alone) an injected fault for
// the user is answered first and the code is kept, as redeem does for
// login codes; together with a login code, redeem checks the faults.
func (s *Sandbox) douyinTakeAnonymous(app provider.App, code string, checkFault bool) (user, fault string, err error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.douyinStateLocked()
	st.gcAnonLocked(now, s.ttl, false)
	e, ok := st.anon[code]
	if !ok || !now.Before(e.expires) || e.appID != app.AppID {
		return "", "", errCodeInvalid
	}
	if checkFault {
		if f := s.takeFaultLocked(provider.Douyin, app.AppID, e.user); f != "" {
			return e.user, f, nil
		}
	}
	if e.used {
		return e.user, "", errCodeUsed
	}
	e.used = true
	return e.user, "", nil
}

// douyinReleaseAnonymous undoes douyinTakeAnonymous when the login code
// exchanged with it failed: a failed call consumes nothing.
func (s *Sandbox) douyinReleaseAnonymous(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.douyinStateLocked().anon[code]; ok {
		e.used = false
	}
}

var errTooManyTokens = errors.New("too many live access tokens")

// douyinIssueToken issues a new access token of appID and cuts the app's
// previous tokens to five minutes (platforms.md §3.4).
func (s *Sandbox) douyinIssueToken(appID string) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.douyinStateLocked()
	cut := now.Add(douyinTokenRollover)
	for tok, e := range st.tokens {
		switch {
		case !now.Before(e.expires):
			delete(st.tokens, tok)
		case e.appID == appID && e.expires.After(cut):
			e.expires = cut
			st.tokens[tok] = e
		}
	}
	if len(st.tokens) >= maxDouyinTokens {
		return "", errTooManyTokens
	}
	for {
		// Real tokens look like 0801121846735352506a356a6... (hex digits).
		tok := "08011218" + randomString(56, "0123456789abcdef")
		if _, taken := st.tokens[tok]; taken {
			continue
		}
		st.tokens[tok] = douyinTokenEntry{appID: appID, expires: now.Add(douyinTokenTTL)}
		return tok, nil
	}
}

// douyinTokenApp returns the app of a live access token (for the fake's own
// token-checking endpoints and tests).
func (s *Sandbox) douyinTokenApp(token string) (string, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.douyinStateLocked().tokens[token]
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.appID, true
}

// ---- the API ----

// readDouyinRequest decodes a JSON request body leniently (unknown fields
// such as "refresh" are ignored, as the real API does). It needs a JSON
// Content-Type: the doc fixes it to application/json, and a provider that
// posts a form must fail here rather than only against Douyin.
func readDouyinRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDouyinBody))
	if err := dec.Decode(v); err != nil {
		return false
	}
	_, err = dec.Token()
	return err == io.EOF // nothing after the object
}

type douyinSessionRequest struct {
	AppID         string `json:"appid"`
	Secret        string `json:"secret"`
	Code          string `json:"code"`
	AnonymousCode string `json:"anonymous_code"`
}

func (s *Sandbox) douyinJSCode2Session(w http.ResponseWriter, r *http.Request, p *platform) {
	var req douyinSessionRequest
	fail := func(user string, errNo int) {
		s.logDouyin("douyin jscode2session", req.AppID, user, errNo)
		writeDouyin(w, douyinAnswer{ErrNo: errNo, ErrTips: dyTips[errNo], LogID: douyinLogID(s), Data: douyinSessionData{}})
	}
	if !readDouyinRequest(w, r, &req) {
		req = douyinSessionRequest{}
		fail("", dyBadParams)
		return
	}
	if req.AppID == "" || req.Secret == "" || (req.Code == "" && req.AnonymousCode == "") {
		fail("", dyBadParams)
		return
	}
	app, ok := s.app(p.name, req.AppID)
	if !ok {
		fail("", dyBadAppID)
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Secret), []byte(app.Secret)) != 1 {
		fail("", dyBadSecret)
		return
	}

	var anonUser string
	if req.AnonymousCode != "" {
		user, fault, err := s.douyinTakeAnonymous(app, req.AnonymousCode, req.Code == "")
		switch {
		case fault != "":
			s.douyinFault(w, r, req.AppID, user, fault)
			return
		case err != nil:
			// A reused anonymous code is 40019 like a bad one (v1 table:
			// "acode 错误").
			fail(user, dyBadAnonCode)
			return
		}
		anonUser = user
	}
	var l login
	if req.Code != "" {
		var err error
		l, err = s.redeem(p, app, req.Code)
		if err != nil && anonUser != "" {
			s.douyinReleaseAnonymous(req.AnonymousCode)
		}
		var fe *faultError
		switch {
		case errors.As(err, &fe):
			s.douyinFault(w, r, req.AppID, fe.user, fe.kind)
			return
		case err != nil:
			// Douyin has one code for a bad, expired, foreign or reused
			// code (platforms.md §6: 40018 on reuse).
			fail(l.user, dyBadCode)
			return
		}
	}
	data := douyinSessionData{SessionKey: l.sessionKey, OpenID: l.openID, UnionID: l.unionID}
	user := l.user
	if anonUser != "" {
		data.AnonymousOpenID = douyinAnonymousOpenID(app.AppID, anonUser)
		if user == "" {
			user = anonUser
		}
	}
	s.logDouyin("douyin jscode2session", req.AppID, user, dySuccess)
	writeDouyin(w, douyinAnswer{ErrNo: dySuccess, ErrTips: dyTips[dySuccess], LogID: douyinLogID(s), Data: data})
}

// douyinFault answers an injected fault. Douyin documents no rate-limit or
// risk-control code for code2Session, so the fake answers only documented
// codes: rate_limited is -1 (the only transient code; its err_tips says
// why, for the operator), blocked is 40018 (the documented way the API
// refuses a login), busy is -1.
func (s *Sandbox) douyinFault(w http.ResponseWriter, r *http.Request, appID, user, kind string) {
	s.log.Infow("msg", "douyin jscode2session: injected fault", "app_id", appID, "user", user, "fault", kind)
	if s.writeTransportFault(w, r, kind) {
		return
	}
	a := douyinAnswer{ErrNo: dySystemError, ErrTips: dyTips[dySystemError], LogID: douyinLogID(s), Data: douyinSessionData{}}
	switch kind {
	case FaultRateLimited:
		a.ErrTips = "system error: too many requests"
	case FaultBlocked:
		a.ErrNo, a.ErrTips = dyBadCode, dyTips[dyBadCode]
	}
	writeDouyin(w, a)
}

type douyinTokenRequest struct {
	AppID     string `json:"appid"`
	Secret    string `json:"secret"`
	GrantType string `json:"grant_type"`
}

func (s *Sandbox) douyinToken(w http.ResponseWriter, r *http.Request, p *platform) {
	var req douyinTokenRequest
	fail := func(errNo int) {
		s.logDouyin("douyin token", req.AppID, "", errNo)
		// The documented error body: empty token, expires_in 0.
		writeDouyin(w, douyinAnswer{ErrNo: errNo, ErrTips: dyTips[errNo], Data: douyinTokenData{}})
	}
	if !readDouyinRequest(w, r, &req) {
		req = douyinTokenRequest{}
		fail(dyBadParams)
		return
	}
	if req.AppID == "" || req.Secret == "" || req.GrantType == "" {
		fail(dyBadParams)
		return
	}
	app, ok := s.app(p.name, req.AppID)
	if !ok {
		fail(dyBadAppID)
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Secret), []byte(app.Secret)) != 1 {
		fail(dyBadSecret)
		return
	}
	if req.GrantType != "client_credential" {
		fail(dyBadGrantType)
		return
	}
	tok, err := s.douyinIssueToken(app.AppID)
	if err != nil {
		fail(dySystemError)
		return
	}
	s.logDouyin("douyin token", req.AppID, "", dySuccess)
	writeDouyin(w, douyinAnswer{ErrNo: dySuccess, ErrTips: dyTips[dySuccess], Data: douyinTokenData{AccessToken: tok, ExpiresIn: int64(douyinTokenTTL / time.Second)}})
}

func (s *Sandbox) logDouyin(msg, appID, user string, errNo int) {
	s.log.Infow("msg", msg, "app_id", appID, "user", user, "err_no", errNo)
}

// writeDouyin sends an answer: HTTP 200 and JSON, for errors too.
func writeDouyin(w http.ResponseWriter, a douyinAnswer) {
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// douyinLogID looks like a real log_id: the time as yyyyMMddHHmmss and 20
// upper-case hex digits (e.g. 20240116204738BF50CE363C57B719C353).
func douyinLogID(s *Sandbox) string {
	return s.now().UTC().Format("20060102150405") + randomString(20, "0123456789ABCDEF")
}

// ---- control API ----

// AnonymousCodeRequest is the body of POST /sandbox/douyin/anonymous-codes.
type AnonymousCodeRequest struct {
	AppID string `json:"app_id"`
	User  string `json:"user"`
}

func (s *Sandbox) handleMintDouyinAnonymousCode(w http.ResponseWriter, r *http.Request) {
	var req AnonymousCodeRequest
	if !decode(w, r, &req) {
		return
	}
	if s.checkTarget(w, provider.Douyin, req.AppID, req.User, false) == nil {
		return
	}
	code, err := s.douyinMintAnonymous(req.AppID, req.User)
	if err != nil {
		writeJSON(w, http.StatusTooManyRequests, apiError{Error: err.Error()})
		return
	}
	s.log.Infow("msg", "douyin anonymous code minted", "app_id", req.AppID, "user", req.User)
	writeJSON(w, http.StatusOK, MintResponse{Code: code, ExpiresIn: int64(s.ttl / time.Second)})
}

// MintDouyinAnonymousCode asks the sandbox at baseURL for an anonymous code
// (tt.login's anonymousCode) of user on a Douyin app.
func MintDouyinAnonymousCode(ctx context.Context, baseURL, appID, user string) (string, error) {
	body, err := json.Marshal(AnonymousCodeRequest{AppID: appID, User: user})
	if err != nil {
		return "", err
	}
	const what = "sandbox: minting a douyin anonymous code"
	u := strings.TrimRight(baseURL, "/") + "/sandbox/douyin/anonymous-codes"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w (is the sandbox running at %s?)", what, err, baseURL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("%s: reading the answer: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("%s: %s: %s", what, resp.Status, e.Error)
		}
		return "", fmt.Errorf("%s: %s: %q", what, resp.Status, snippet(raw))
	}
	var out MintResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.Code == "" {
		return "", fmt.Errorf("%s: unexpected answer %q", what, snippet(raw))
	}
	return out.Code, nil
}

// ---- encrypted user data ----

type douyinWatermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}

// douyinPhoneDoc is tt.getPhoneNumber's decrypted document, in WeChat's
// legacy shape (platforms.md §1.6, §3.5): countryCode is a string.
type douyinPhoneDoc struct {
	PhoneNumber     string          `json:"phoneNumber"`
	PurePhoneNumber string          `json:"purePhoneNumber"`
	CountryCode     string          `json:"countryCode"`
	Watermark       douyinWatermark `json:"watermark"`
}

// douyinProfileDoc is tt.getUserInfo's decrypted document.
type douyinProfileDoc struct {
	NickName  string          `json:"nickName"`
	AvatarURL string          `json:"avatarUrl"`
	Gender    int             `json:"gender"`
	City      string          `json:"city"`
	Province  string          `json:"province"`
	Country   string          `json:"country"`
	Language  string          `json:"language"`
	Watermark douyinWatermark `json:"watermark"`
}

// sealDouyinUserData encrypts the document with the user's current
// session key: AES-128-CBC, PKCS#7, a random IV (platforms.md §3.5).
func sealDouyinUserData(s *Sandbox, app provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != aes.BlockSize {
		return SealedUserData{}, errors.New("the user has no usable session key: log in with a login code first")
	}
	wm := douyinWatermark{AppID: app.AppID, Timestamp: s.now().Unix()}
	if doc.WatermarkAppID != "" {
		wm.AppID = doc.WatermarkAppID
	}
	var v any
	switch doc.Kind {
	case "phone":
		cc := strings.TrimPrefix(doc.CountryCode, "+")
		if cc == "" {
			cc = "86"
		}
		// phoneNumber carries the country code for non-mainland numbers
		// (the exact spelling is UNCONFIRMED: "+" and the digits here).
		number := doc.Phone
		if cc != "86" {
			number = "+" + cc + doc.Phone
		}
		v = douyinPhoneDoc{PhoneNumber: number, PurePhoneNumber: doc.Phone, CountryCode: cc, Watermark: wm}
	case "profile":
		v = douyinProfileDoc{NickName: doc.Nickname, AvatarURL: doc.AvatarURL, Watermark: wm}
	default:
		return SealedUserData{}, fmt.Errorf("kind: unknown %q", doc.Kind)
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return SealedUserData{}, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return SealedUserData{}, err
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(n)}, n)...)
	iv := randomBytes(aes.BlockSize)
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	return SealedUserData{
		EncryptedData: base64.StdEncoding.EncodeToString(ct),
		IV:            base64.StdEncoding.EncodeToString(iv),
	}, nil
}

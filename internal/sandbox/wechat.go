package sandbox

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// The WeChat fake: GET /sns/jscode2session (auth.code2Session), answered as
// the real api.weixin.qq.com does (see platforms.md §1).

var wechat = &platform{
	name: provider.WeChat,
	// wx.login codes are 32 characters, e.g. 0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V.
	newCode: func() string { return randomString(32, alnum) },
	// openids and unionids are "o" + 27 base64url characters; real ones of
	// one app (or one Open Platform account) share their first characters,
	// so the first five come from the app (scope) alone.
	openID: func(appID, user string) string {
		return wechatID(digest("wechat openid app", appID), digest("wechat openid", appID, user))
	},
	unionID: func(scope, user string) string {
		return wechatID(digest("wechat unionid scope", scope), digest("wechat unionid", scope, user))
	},
	// session_key: 16 random bytes (an AES-128 key), 24 base64 characters.
	newSessionKey: func() string { return base64.StdEncoding.EncodeToString(randomBytes(16)) },
	routes: func(s *Sandbox, p *platform, mux *http.ServeMux) {
		// No method in the pattern: the real API answers other methods
		// with a business error, not 405.
		mux.HandleFunc("/sns/jscode2session", func(w http.ResponseWriter, r *http.Request) {
			s.wechatJSCode2Session(w, r, p)
		})
		// The path is case-sensitive; a wrong one (jsCode2Session) gets
		// 40066 invalid url.
		mux.HandleFunc("/sns/", func(w http.ResponseWriter, r *http.Request) {
			writeWeChatError(w, s, wxInvalidURL)
		})
		// Beyond login: the stable access token, the phone number API and
		// their control routes (below).
		s.wechatAPIRoutes(mux)
	},
	sealUserData: func(s *Sandbox, app provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error) {
		return s.wechatSeal(app, sessionKey, doc)
	},
}

func wechatID(prefix, body []byte) string {
	enc := base64.RawURLEncoding
	return "o" + enc.EncodeToString(prefix)[:5] + enc.EncodeToString(body)[:22]
}

// WeChat errcodes and the real errmsg texts (platforms.md §1.3); errmsg
// gets a ", rid: ..." suffix when sent.
const (
	wxSystemError   = -1
	wxInvalidGrant  = 40002
	wxInvalidAppID  = 40013
	wxInvalidCode   = 40029
	wxInvalidURL    = 40066
	wxInvalidSecret = 40125
	wxCodeUsed      = 40163
	wxCodeBlocked   = 40226
	wxAppIDMissing  = 41002
	wxSecretMissing = 41004
	wxCodeMissing   = 41008
	wxMinuteQuota   = 45011
)

var wxMessages = map[int]string{
	wxSystemError:   "system error",
	wxInvalidGrant:  "invalid grant_type",
	wxInvalidAppID:  "invalid appid",
	wxInvalidCode:   "invalid code",
	wxInvalidURL:    "invalid url",
	wxInvalidSecret: "invalid appsecret",
	wxCodeUsed:      "code been used",
	wxCodeBlocked:   "code blocked",
	wxAppIDMissing:  "appid missing",
	wxSecretMissing: "appsecret missing",
	wxCodeMissing:   "missing code",
	wxMinuteQuota:   "api minute-quota reach limit mustslower retry next minute",

	wxInvalidCredential:  "invalid credential, access_token is invalid or not latest",
	wxAccessTokenMissing: "access_token missing",
	wxRequirePost:        "require POST method",
	wxDailyQuota:         "reach max api daily quota limit",
	wxDataFormat:         "data format error",
}

// wechatSession is a successful answer. Like the real API it has no errcode
// or errmsg at all, and unionid only when the app is bound to an Open
// Platform account (has a union_scope).
type wechatSession struct {
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
}

type wechatError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *Sandbox) wechatJSCode2Session(w http.ResponseWriter, r *http.Request, p *platform) {
	if r.Method != http.MethodGet {
		// A POST carries no query the API reads: "appid missing".
		writeWeChatError(w, s, wxAppIDMissing)
		return
	}
	q := r.URL.Query()
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	switch {
	case appID == "":
		writeWeChatError(w, s, wxAppIDMissing)
		return
	case secret == "":
		writeWeChatError(w, s, wxSecretMissing)
		return
	case code == "":
		writeWeChatError(w, s, wxCodeMissing)
		return
	case q.Get("grant_type") != "authorization_code":
		// UNCONFIRMED: what jscode2session says about a missing or wrong
		// grant_type is not documented. 40002 "invalid grant_type" is
		// WeChat's global code for it (cgi-bin/token answers it), and
		// being strict here catches a provider that forgets the parameter.
		writeWeChatError(w, s, wxInvalidGrant)
		return
	}
	app, ok := s.app(p.name, appID)
	if !ok {
		s.logExchange(appID, "", wxInvalidAppID)
		writeWeChatError(w, s, wxInvalidAppID)
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(app.Secret)) != 1 {
		// UNCONFIRMED: 40125 is what cgi-bin/token answers for a wrong
		// secret; the code jscode2session itself uses is not documented.
		s.logExchange(appID, "", wxInvalidSecret)
		writeWeChatError(w, s, wxInvalidSecret)
		return
	}

	l, err := s.redeem(p, app, code)
	var fe *faultError
	switch {
	case errors.As(err, &fe):
		s.log.Infow("msg", "wechat jscode2session: injected fault", "app_id", appID, "user", fe.user, "fault", fe.kind)
		if s.writeTransportFault(w, r, fe.kind) {
			return
		}
		switch fe.kind {
		case FaultRateLimited:
			writeWeChatError(w, s, wxMinuteQuota)
		case FaultBlocked:
			writeWeChatError(w, s, wxCodeBlocked)
		default: // FaultBusy
			writeWeChatError(w, s, wxSystemError)
		}
		return
	case errors.Is(err, errCodeUsed):
		s.logExchange(appID, l.user, wxCodeUsed)
		writeWeChatError(w, s, wxCodeUsed)
		return
	case err != nil: // errCodeInvalid
		s.logExchange(appID, l.user, wxInvalidCode)
		writeWeChatError(w, s, wxInvalidCode)
		return
	}
	s.logExchange(appID, l.user, 0)
	writeWeChat(w, wechatSession{SessionKey: l.sessionKey, OpenID: l.openID, UnionID: l.unionID})
}

func (s *Sandbox) logExchange(appID, user string, errcode int) {
	s.log.Infow("msg", "wechat jscode2session", "app_id", appID, "user", user, "errcode", errcode)
}

// writeWeChatError answers a business error: HTTP 200 and errmsg with the
// ", rid: ..." suffix real answers carry (callers must match on errcode).
func writeWeChatError(w http.ResponseWriter, s *Sandbox, code int) {
	writeWeChat(w, wechatError{ErrCode: code, ErrMsg: wxMessages[code] + ", rid: " + wechatRID(s)})
}

// writeWeChat sends a body the way jscode2session does: HTTP 200 and, as
// reported from real traffic, Content-Type text/plain (platforms.md §1.2).
// Serving text/plain keeps providers honest: they must decode the body as
// JSON whatever the Content-Type says.
func writeWeChat(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// wechatRID looks like a real rid: the Unix time in hex, then two random
// 32-bit values (e.g. 652d44d0-1d0af18b-5b069232).
func wechatRID(s *Sandbox) string {
	r := randomBytes(8)
	return fmt.Sprintf("%08x-%08x-%08x", uint32(s.now().Unix()), binary.BigEndian.Uint32(r[:4]), binary.BigEndian.Uint32(r[4:]))
}

// ---- beyond login: stable access token, phone number, user data ----
//
//	POST /cgi-bin/stable_token                            (platforms.md §1.5)
//	POST /wxa/business/getuserphonenumber?access_token=   (§1.7)
//	POST /sandbox/wechat/phone-codes {"app_id","user","phone","country_code"?} → {"code","expires_in"}
//	POST /sandbox/wechat/expire-tokens {"app_id"} → {"expired"}
//
// and sealUserData (§1.6): phone and profile documents encrypted with the
// user's current session key.

// Access token lifetimes of the real platform (§1.5).
const (
	// wxTokenLifetime is a new token's expires_in.
	wxTokenLifetime = 7200 * time.Second
	// wxTokenRefreshAhead: in normal mode a token with less left is
	// replaced, so every answer has expires_in >= 300.
	wxTokenRefreshAhead = 300 * time.Second
	// wxTokenOverlap is how long a token replaced by force_refresh stays
	// valid.
	wxTokenOverlap = 5 * time.Minute
	// maxWeChatTokens caps remembered access tokens (all apps); past it
	// stable_token answers 45009, as the real quota would.
	maxWeChatTokens = 10_000
	// maxWeChatPhoneCodes caps live phone codes; minting beyond it answers 429.
	maxWeChatPhoneCodes = 100_000
)

// More WeChat errcodes, with their real errmsg texts.
const (
	wxInvalidCredential  = 40001
	wxAccessTokenMissing = 41001
	wxRequirePost        = 43002
	wxDailyQuota         = 45009
	wxDataFormat         = 47001
)

// wechatState is the WeChat fake's own state, under Sandbox.mu.
type wechatState struct {
	// tokens are the issued access tokens; current is each app's newest.
	tokens  map[string]*wxToken
	current map[string]string
	// phoneCodes are minted getPhoneNumber codes.
	phoneCodes map[string]*wxPhoneCode
	nextGC     time.Time
}

type wxToken struct {
	appID   string
	expires time.Time
}

type wxPhoneCode struct {
	appID, user        string
	phone, countryCode string
	expires            time.Time
	used               bool
}

// wechatStateLocked returns the WeChat state; the caller holds s.mu.
func (s *Sandbox) wechatStateLocked() *wechatState {
	return s.platformState(provider.WeChat, func() any {
		return &wechatState{
			tokens:     make(map[string]*wxToken),
			current:    make(map[string]string),
			phoneCodes: make(map[string]*wxPhoneCode),
		}
	}).(*wechatState)
}

// gcLocked drops expired tokens and phone codes, at most once a minute of
// clock time unless forced.
func (st *wechatState) gcLocked(now time.Time, force bool) {
	if !force && now.Before(st.nextGC) {
		return
	}
	for k, t := range st.tokens {
		if !now.Before(t.expires) {
			delete(st.tokens, k)
		}
	}
	for app, k := range st.current {
		if _, ok := st.tokens[k]; !ok {
			delete(st.current, app)
		}
	}
	for k, c := range st.phoneCodes {
		if !now.Before(c.expires) {
			delete(st.phoneCodes, k)
		}
	}
	st.nextGC = now.Add(time.Minute)
}

func (s *Sandbox) wechatAPIRoutes(mux *http.ServeMux) {
	// No method in the patterns: the real API answers a wrong method with
	// a business error (43002), not 405.
	mux.HandleFunc("/cgi-bin/stable_token", s.wechatStableToken)
	mux.HandleFunc("/wxa/business/getuserphonenumber", s.wechatGetPhoneNumber)
	mux.HandleFunc("/cgi-bin/", func(w http.ResponseWriter, r *http.Request) {
		writeWeChatAPIError(w, s, wxInvalidURL)
	})
	mux.HandleFunc("/wxa/", func(w http.ResponseWriter, r *http.Request) {
		writeWeChatAPIError(w, s, wxInvalidURL)
	})
	mux.HandleFunc("POST /sandbox/wechat/phone-codes", s.handleWeChatPhoneCode)
	mux.HandleFunc("POST /sandbox/wechat/expire-tokens", s.handleWeChatExpireTokens)
}

// writeWeChatAPIError answers a business error of the cgi-bin / wxa APIs:
// HTTP 200, errmsg with the ", rid: ..." suffix.
func writeWeChatAPIError(w http.ResponseWriter, s *Sandbox, code int) {
	writeWeChatAPI(w, wechatError{ErrCode: code, ErrMsg: wxMessages[code] + ", rid: " + wechatRID(s)})
}

// writeWeChatAPI sends a cgi-bin / wxa body: HTTP 200 and the Content-Type
// those APIs use.
func writeWeChatAPI(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// readWeChatJSON reads a cgi-bin / wxa JSON request body into v, answering
// 47001 data format error (and returning false) when it is not JSON. Unknown
// fields are ignored, as the real API does.
func readWeChatJSON(w http.ResponseWriter, r *http.Request, s *Sandbox, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil || json.Unmarshal(b, v) != nil {
		writeWeChatAPIError(w, s, wxDataFormat)
		return false
	}
	return true
}

// wechatAccessToken looks like a real one: "<n>_" and about 130 URL-safe
// characters.
func wechatAccessToken() string {
	return "86_" + randomString(133, alnum+"-_")
}

type wechatTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (s *Sandbox) wechatStableToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeWeChatAPIError(w, s, wxRequirePost)
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if !readWeChatJSON(w, r, s, &req) {
		return
	}
	code := 0
	app, known := s.app(provider.WeChat, req.AppID)
	switch {
	case req.AppID == "":
		code = wxAppIDMissing
	case req.Secret == "":
		code = wxSecretMissing
	case req.GrantType != "client_credential":
		code = wxInvalidGrant
	case !known:
		code = wxInvalidAppID
	case subtle.ConstantTimeCompare([]byte(req.Secret), []byte(app.Secret)) != 1:
		code = wxInvalidSecret
	}
	if code != 0 {
		s.log.Infow("msg", "wechat stable_token", "app_id", req.AppID, "force_refresh", req.ForceRefresh, "errcode", code)
		writeWeChatAPIError(w, s, code)
		return
	}
	tok, left, ok := s.issueWeChatToken(app.AppID, req.ForceRefresh)
	if !ok {
		s.log.Infow("msg", "wechat stable_token", "app_id", req.AppID, "force_refresh", req.ForceRefresh, "errcode", wxDailyQuota)
		writeWeChatAPIError(w, s, wxDailyQuota)
		return
	}
	s.log.Infow("msg", "wechat stable_token", "app_id", req.AppID, "force_refresh", req.ForceRefresh, "errcode", 0, "expires_in", int64(left/time.Second))
	writeWeChatAPI(w, wechatTokenAnswer{AccessToken: tok, ExpiresIn: int64(left / time.Second)})
}

// issueWeChatToken answers stable_token for appID: in normal mode the
// current token while it has at least five minutes left, else (or when
// forced) a new one. A token replaced by force stays valid five more
// minutes; one replaced in normal mode keeps its own (short) expiry. ok is
// false when too many tokens are live.
func (s *Sandbox) issueWeChatToken(appID string, force bool) (string, time.Duration, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.wechatStateLocked()
	st.gcLocked(now, false)
	if cur, ok := st.tokens[st.current[appID]]; ok {
		left := cur.expires.Sub(now)
		if !force && left >= wxTokenRefreshAhead {
			return st.current[appID], left, true
		}
		if force && left > wxTokenOverlap {
			cur.expires = now.Add(wxTokenOverlap)
		}
	}
	if len(st.tokens) >= maxWeChatTokens {
		st.gcLocked(now, true)
		if len(st.tokens) >= maxWeChatTokens {
			return "", 0, false
		}
	}
	tok := wechatAccessToken()
	for st.tokens[tok] != nil {
		tok = wechatAccessToken()
	}
	st.tokens[tok] = &wxToken{appID: appID, expires: now.Add(wxTokenLifetime)}
	st.current[appID] = tok
	return tok, wxTokenLifetime, true
}

type wechatPhoneAnswer struct {
	ErrCode   int             `json:"errcode"`
	ErrMsg    string          `json:"errmsg"`
	PhoneInfo wechatPhoneInfo `json:"phone_info"`
}

// wechatPhoneInfo is a phone number document, as getuserphonenumber's
// phone_info and as the legacy encrypted getPhoneNumber data.
type wechatPhoneInfo struct {
	PhoneNumber     string          `json:"phoneNumber"`
	PurePhoneNumber string          `json:"purePhoneNumber"`
	CountryCode     string          `json:"countryCode"`
	Watermark       wechatWatermark `json:"watermark"`
}

type wechatWatermark struct {
	Timestamp int64  `json:"timestamp"`
	AppID     string `json:"appid"`
}

// wechatPhone builds a phone document. phoneNumber carries the country code
// for non-mainland numbers; UNCONFIRMED in which form ("+852..." here).
func wechatPhone(phone, countryCode, watermarkAppID string, now time.Time) wechatPhoneInfo {
	full := phone
	if countryCode != "86" {
		full = "+" + countryCode + phone
	}
	return wechatPhoneInfo{
		PhoneNumber:     full,
		PurePhoneNumber: phone,
		CountryCode:     countryCode,
		Watermark:       wechatWatermark{Timestamp: now.Unix(), AppID: watermarkAppID},
	}
}

func (s *Sandbox) wechatGetPhoneNumber(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeWeChatAPIError(w, s, wxRequirePost)
		return
	}
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		writeWeChatAPIError(w, s, wxAccessTokenMissing)
		return
	}
	var req struct {
		Code string `json:"code"`
		// OpenID, optional, asks WeChat to check the code belongs to that
		// user; the sandbox ignores it (the real errcode is undocumented).
		OpenID string `json:"openid"`
	}
	now := s.now()
	s.mu.Lock()
	st := s.wechatStateLocked()
	t, ok := st.tokens[tok]
	if !ok || !now.Before(t.expires) {
		s.mu.Unlock()
		// The real API answers 42001 for a token past its expiry; the
		// sandbox forgets expired tokens, so all get 40001.
		s.log.Infow("msg", "wechat getuserphonenumber", "errcode", wxInvalidCredential)
		writeWeChatAPIError(w, s, wxInvalidCredential)
		return
	}
	appID := t.appID
	s.mu.Unlock()

	if !readWeChatJSON(w, r, s, &req) {
		return
	}
	if req.Code == "" {
		writeWeChatAPIError(w, s, wxCodeMissing)
		return
	}

	s.mu.Lock()
	st.gcLocked(now, false)
	c, ok := st.phoneCodes[req.Code]
	valid := ok && !c.used && now.Before(c.expires) && c.appID == appID
	var pc wxPhoneCode
	if valid {
		c.used = true // kept until expiry, then collected
		pc = *c
	}
	s.mu.Unlock()
	if !valid {
		s.log.Infow("msg", "wechat getuserphonenumber", "app_id", appID, "errcode", wxInvalidCode)
		writeWeChatAPIError(w, s, wxInvalidCode)
		return
	}
	s.log.Infow("msg", "wechat getuserphonenumber", "app_id", appID, "user", pc.user, "errcode", 0)
	writeWeChatAPI(w, wechatPhoneAnswer{ErrMsg: "ok", PhoneInfo: wechatPhone(pc.phone, pc.countryCode, appID, now)})
}

// WeChatPhoneCodeRequest is the body of POST /sandbox/wechat/phone-codes: a code
// as the getPhoneNumber button would hand it to the mini-program.
type WeChatPhoneCodeRequest struct {
	AppID string `json:"app_id"`
	User  string `json:"user"`
	// Phone is the number without country code (purePhoneNumber).
	Phone string `json:"phone"`
	// CountryCode defaults to 86.
	CountryCode string `json:"country_code,omitempty"`
}

// WeChatPhoneCodeResponse is the answer of POST /sandbox/wechat/phone-codes.
type WeChatPhoneCodeResponse struct {
	Code      string `json:"code"`
	ExpiresIn int64  `json:"expires_in"`
}

func wechatDigits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// wechatCheckPhone validates a phone number and country code (defaulting it to
// 86), returning the field at fault.
func wechatCheckPhone(phone, countryCode string) (string, string, error) {
	if countryCode == "" {
		countryCode = "86"
	}
	if !wechatDigits(phone, 1, 20) {
		return "", "phone", errors.New("phone: 1 to 20 digits, without country code")
	}
	if !wechatDigits(countryCode, 1, 4) {
		return "", "country_code", errors.New("country_code: 1 to 4 digits (86 by default)")
	}
	return countryCode, "", nil
}

func (s *Sandbox) handleWeChatPhoneCode(w http.ResponseWriter, r *http.Request) {
	var req WeChatPhoneCodeRequest
	if !decode(w, r, &req) {
		return
	}
	// Not checkTarget: the wechat value's routes reach this handler, and
	// checkTarget reads platforms, which holds that value (an
	// initialization cycle).
	switch _, ok := s.app(provider.WeChat, req.AppID); {
	case req.AppID == "":
		writeJSON(w, http.StatusBadRequest, fieldError("app_id", "required"))
		return
	case !ok:
		writeJSON(w, http.StatusBadRequest, fieldError("app_id", "no %s app %q is configured", provider.WeChat, req.AppID))
		return
	case req.User == "":
		writeJSON(w, http.StatusBadRequest, fieldError("user", "required (any name for the made-up user)"))
		return
	case len(req.User) > maxUserLen:
		writeJSON(w, http.StatusBadRequest, fieldError("user", "longer than %d bytes", maxUserLen))
		return
	}
	cc, field, err := wechatCheckPhone(req.Phone, req.CountryCode)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Field: field})
		return
	}
	now := s.now()
	s.mu.Lock()
	st := s.wechatStateLocked()
	st.gcLocked(now, false)
	if len(st.phoneCodes) >= maxWeChatPhoneCodes {
		st.gcLocked(now, true)
		if len(st.phoneCodes) >= maxWeChatPhoneCodes {
			s.mu.Unlock()
			writeJSON(w, http.StatusTooManyRequests, apiError{Error: "too many live phone codes; wait for some to expire"})
			return
		}
	}
	// Real codes are 64 hex characters.
	code := randomString(64, "0123456789abcdef")
	for st.phoneCodes[code] != nil {
		code = randomString(64, "0123456789abcdef")
	}
	st.phoneCodes[code] = &wxPhoneCode{appID: req.AppID, user: req.User, phone: req.Phone, countryCode: cc, expires: now.Add(s.ttl)}
	s.mu.Unlock()
	s.log.Infow("msg", "wechat phone code minted", "app_id", req.AppID, "user", req.User)
	writeJSON(w, http.StatusOK, WeChatPhoneCodeResponse{Code: code, ExpiresIn: int64(s.ttl / time.Second)})
}

// WeChatExpireTokensRequest is the body of POST /sandbox/wechat/expire-tokens.
type WeChatExpireTokensRequest struct {
	AppID string `json:"app_id"`
}

// handleWeChatExpireTokens invalidates every access token issued to an app,
// as if another backend had forced refreshes: the next getuserphonenumber
// with one of them answers 40001.
func (s *Sandbox) handleWeChatExpireTokens(w http.ResponseWriter, r *http.Request) {
	var req WeChatExpireTokensRequest
	if !decode(w, r, &req) {
		return
	}
	if req.AppID == "" {
		writeJSON(w, http.StatusBadRequest, fieldError("app_id", "required"))
		return
	}
	if _, ok := s.app(provider.WeChat, req.AppID); !ok {
		writeJSON(w, http.StatusBadRequest, fieldError("app_id", "no %s app %q is configured", provider.WeChat, req.AppID))
		return
	}
	s.mu.Lock()
	st := s.wechatStateLocked()
	n := 0
	for k, t := range st.tokens {
		if t.appID == req.AppID {
			delete(st.tokens, k)
			n++
		}
	}
	delete(st.current, req.AppID)
	s.mu.Unlock()
	s.log.Infow("msg", "wechat access tokens expired", "app_id", req.AppID, "count", n)
	writeJSON(w, http.StatusOK, map[string]any{"expired": n})
}

// wechatProfile is the legacy getUserInfo / getUserProfile document. Since
// 2022 WeChat hands out the placeholder nickname and the grey avatar.
type wechatProfile struct {
	NickName  string          `json:"nickName"`
	Gender    int             `json:"gender"`
	Language  string          `json:"language"`
	City      string          `json:"city"`
	Province  string          `json:"province"`
	Country   string          `json:"country"`
	AvatarURL string          `json:"avatarUrl"`
	Watermark wechatWatermark `json:"watermark"`
}

const (
	wechatDefaultNickname = "微信用户"
	wechatDefaultAvatar   = "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
)

// wechatSeal encrypts doc as wx.getPhoneNumber (legacy) / getUserProfile
// hand it to the mini-program: AES-128-CBC, PKCS#7, the user's current
// session key, a random IV (platforms.md §1.6).
func (s *Sandbox) wechatSeal(app provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return SealedUserData{}, errors.New("the user has no usable session key: log in again")
	}
	wm := doc.WatermarkAppID
	if wm == "" {
		wm = app.AppID
	}
	now := s.now()
	var v any
	switch doc.Kind {
	case "phone":
		cc, _, err := wechatCheckPhone(doc.Phone, doc.CountryCode)
		if err != nil {
			return SealedUserData{}, err
		}
		v = wechatPhone(doc.Phone, cc, wm, now)
	case "profile":
		p := wechatProfile{NickName: doc.Nickname, AvatarURL: doc.AvatarURL, Watermark: wechatWatermark{Timestamp: now.Unix(), AppID: wm}}
		if p.NickName == "" {
			p.NickName = wechatDefaultNickname
		}
		if p.AvatarURL == "" {
			p.AvatarURL = wechatDefaultAvatar
		}
		v = p
	default:
		return SealedUserData{}, fmt.Errorf("kind: %q is not phone or profile", doc.Kind)
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
	buf := append(plain, bytes.Repeat([]byte{byte(n)}, n)...)
	iv := randomBytes(aes.BlockSize)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return SealedUserData{
		EncryptedData: base64.StdEncoding.EncodeToString(buf),
		IV:            base64.StdEncoding.EncodeToString(iv),
	}, nil
}

// MintWeChatPhoneCode asks the sandbox at baseURL for a getPhoneNumber code
// of user on appID, as the phone number button would hand it to the
// mini-program; countryCode "" means 86.
func MintWeChatPhoneCode(ctx context.Context, baseURL, appID, user, phone, countryCode string) (string, error) {
	var out WeChatPhoneCodeResponse
	if err := wechatControl(ctx, baseURL, "/sandbox/wechat/phone-codes", WeChatPhoneCodeRequest{AppID: appID, User: user, Phone: phone, CountryCode: countryCode}, &out); err != nil {
		return "", fmt.Errorf("sandbox: minting a phone code: %w", err)
	}
	if out.Code == "" {
		return "", errors.New("sandbox: minting a phone code: answer without a code")
	}
	return out.Code, nil
}

// ExpireWeChatTokens makes the sandbox at baseURL reject every access token
// it issued to appID, and returns how many there were.
func ExpireWeChatTokens(ctx context.Context, baseURL, appID string) (int, error) {
	var out struct {
		Expired int `json:"expired"`
	}
	if err := wechatControl(ctx, baseURL, "/sandbox/wechat/expire-tokens", WeChatExpireTokensRequest{AppID: appID}, &out); err != nil {
		return 0, fmt.Errorf("sandbox: expiring access tokens: %w", err)
	}
	return out.Expired, nil
}

// wechatControl POSTs in as JSON to a control route and decodes the answer into
// out.
func wechatControl(ctx context.Context, baseURL, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w (is the sandbox running at %s?)", err, baseURL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %q", resp.Status, snippet(raw))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("unexpected answer %q", snippet(raw))
	}
	return nil
}

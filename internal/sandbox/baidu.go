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

// The Baidu smart program fake (platforms.md §5), answered as Baidu does:
//
//	POST /oauth/jscode2sessionkey        code, client_id, sk (form)   spapi.baidu.com
//	GET|POST /oauth/2.0/token            client_credentials           openapi.baidu.com
//	POST /rest/2.0/smartapp/getunionid   ?access_token=, openid       openapi.baidu.com
//
// plus POST /sandbox/baidu/expire-tokens, which makes every issued access
// token answer "Access token expired" so that tests can watch a provider
// refresh it.
//
// jscode2sessionkey answers {"openid","session_key"} on success (no status
// field) and HTTP 200 {"errno","error","error_description"} on failure.
// Only errno 10010100 (parameter) and 10010500 (server) are documented; the
// others below are the fake's own (UNCONFIRMED), paired with Baidu OAuth's
// documented error names, which is what providers should match on.

var baidu = &platform{
	name: provider.Baidu,
	// The format of swan.getLoginCode codes is not documented; 32 lower-case
	// hex characters.
	newCode: func() string { return randomString(32, bdHex) },
	// openids (l214zFqNrEuIEnp6m7Y01sw8yj) are 26 and unionids
	// (St6PVMkgMDeh92Uq2EWfx6H) 23 alphanumerics.
	openID: baiduOpenIDOf,
	unionID: func(scope, user string) string {
		return baiduAlnum(digest("baidu unionid", scope, user), 23)
	},
	// session_key: 32 random hex characters. They are also valid base64
	// (of 24 bytes, the AES-192 key), exactly like real ones
	// ("981ce8b151c0599acf7ad1a673c6ff5e", platforms.md §5.2).
	newSessionKey: func() string { return randomString(32, bdHex) },
	routes: func(s *Sandbox, p *platform, mux *http.ServeMux) {
		// No method in the patterns: Baidu's SDKs use both GET and POST on
		// these endpoints, and the fake reads parameters from either.
		mux.HandleFunc(bdSessionKeyPath, func(w http.ResponseWriter, r *http.Request) {
			s.baiduSessionKey(w, r, p)
		})
		mux.HandleFunc(bdTokenPath, func(w http.ResponseWriter, r *http.Request) {
			s.baiduToken(w, r)
		})
		mux.HandleFunc(bdUnionIDPath, func(w http.ResponseWriter, r *http.Request) {
			s.baiduGetUnionID(w, r, p)
		})
		// Any other OpenAPI REST path: the gateway's "unsupported method".
		mux.HandleFunc("/rest/2.0/", func(w http.ResponseWriter, r *http.Request) {
			writeBaidu(w, http.StatusOK, baiduGatewayError{ErrorCode: 3, ErrorMsg: "Unsupported openapi method"})
		})
		mux.HandleFunc("POST /sandbox/baidu/expire-tokens", s.handleBaiduExpireTokens)
	},
	sealUserData: baiduSeal,
}

const (
	bdHex            = "0123456789abcdef"
	bdSessionKeyPath = "/oauth/jscode2sessionkey"
	bdTokenPath      = "/oauth/2.0/token"
	bdUnionIDPath    = "/rest/2.0/smartapp/getunionid"
	bdScope          = "smartapp_snsapi_base"
	// bdTokenLifetime: access tokens live a month (§5.4).
	bdTokenLifetime = 2592000 * time.Second
	// bdTokenMemory is how long an expired token is still recognised (and
	// answered "expired" rather than "invalid").
	bdTokenMemory = 24 * time.Hour
	// maxBaiduTokens caps remembered access tokens (all apps); past it the
	// token endpoint answers the daily quota error.
	maxBaiduTokens = 10_000
	// bdMaxEcho bounds the part of a bad code echoed in an error.
	bdMaxEcho = 64
)

// jscode2sessionkey errnos. 10010100 and 10010500 are documented (§5.2); the
// rest are the fake's (UNCONFIRMED).
const (
	bdErrnoParam         = 10010100
	bdErrnoInvalidClient = 10010101
	bdErrnoInvalidGrant  = 10010102
	bdErrnoAccessDenied  = 10010103
	bdErrnoServer        = 10010500
)

// OpenAPI gateway error codes (Baidu-wide table) and getunionid's errnos.
const (
	bdGatewayQPS          = 18
	bdGatewayDailyQuota   = 17
	bdGatewayTokenInvalid = 110
	bdGatewayTokenExpired = 111
	bdUnionParamError     = 400
)

var bdGatewayMessages = map[int]string{
	bdGatewayQPS:          "Open api qps request limit reached",
	bdGatewayDailyQuota:   "Open api daily request limit reached",
	bdGatewayTokenInvalid: "Access token invalid or no longer valid",
	bdGatewayTokenExpired: "Access token expired",
}

func baiduOpenIDOf(appID, user string) string {
	return baiduAlnum(digest("baidu openid", appID, user), 26)
}

// baiduAlnum renders the first n (at most 32) bytes of a digest as
// alphanumerics.
func baiduAlnum(d []byte, n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = alnum[int(d[i])%len(alnum)]
	}
	return string(out)
}

type baiduSession struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

type baiduError struct {
	Errno            int    `json:"errno"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

type baiduOAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

type baiduGatewayError struct {
	ErrorCode int    `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

func baiduGateway(code int) baiduGatewayError {
	return baiduGatewayError{ErrorCode: code, ErrorMsg: bdGatewayMessages[code]}
}

// baiduState is the Baidu fake's own state, under Sandbox.mu.
type baiduState struct {
	// tokens are the issued access tokens.
	tokens map[string]*baiduToken
	// users maps each openid handed out back to its user, for getunionid.
	users  map[baiduOpenID]string
	nextGC time.Time
}

type baiduToken struct {
	appID   string
	expires time.Time
}

type baiduOpenID struct{ appID, openID string }

// baiduStateLocked returns the Baidu state; the caller holds s.mu.
func (s *Sandbox) baiduStateLocked() *baiduState {
	return s.platformState(provider.Baidu, func() any {
		return &baiduState{tokens: make(map[string]*baiduToken), users: make(map[baiduOpenID]string)}
	}).(*baiduState)
}

// gcLocked forgets tokens expired for longer than bdTokenMemory, at most
// once a minute of clock time unless forced.
func (st *baiduState) gcLocked(now time.Time, force bool) {
	if !force && now.Before(st.nextGC) {
		return
	}
	for k, t := range st.tokens {
		if !now.Before(t.expires.Add(bdTokenMemory)) {
			delete(st.tokens, k)
		}
	}
	st.nextGC = now.Add(time.Minute)
}

// baiduForm parses the parameters from the query and the form body.
func baiduForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	return r.ParseForm() == nil
}

func (s *Sandbox) baiduSessionKey(w http.ResponseWriter, r *http.Request, p *platform) {
	if !baiduForm(w, r) {
		writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoParam, Error: "parameter is invalid", ErrorDescription: "the request body is not a form"})
		return
	}
	code, clientID, sk := r.Form.Get("code"), r.Form.Get("client_id"), r.Form.Get("sk")
	// The new endpoint validates with go-playground/validator and quotes
	// its message (§5.2); the field names but ClientID are UNCONFIRMED.
	var missing []string
	for _, f := range []struct{ name, v string }{{"Code", code}, {"ClientID", clientID}, {"SK", sk}} {
		if f.v == "" {
			missing = append(missing, fmt.Sprintf("Key: 'Code2SessionKeyParam.%s' Error:Field validation for '%s' failed on the 'required' tag", f.name, f.name))
		}
	}
	if len(missing) > 0 {
		s.logBaidu("jscode2sessionkey", clientID, "", bdErrnoParam)
		writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoParam, Error: "parameter is invalid", ErrorDescription: strings.Join(missing, "\n")})
		return
	}
	app, ok := s.app(p.name, clientID)
	if !ok {
		s.logBaidu("jscode2sessionkey", clientID, "", bdErrnoInvalidClient)
		writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoInvalidClient, Error: "invalid_client", ErrorDescription: "unknown client id"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(sk), []byte(app.Secret)) != 1 {
		s.logBaidu("jscode2sessionkey", clientID, "", bdErrnoInvalidClient)
		writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoInvalidClient, Error: "invalid_client", ErrorDescription: "Client authentication failed"})
		return
	}

	l, err := s.redeem(p, app, code)
	var fe *faultError
	switch {
	case errors.As(err, &fe):
		s.log.Infow("msg", "baidu jscode2sessionkey: injected fault", "app_id", clientID, "user", fe.user, "fault", fe.kind)
		if s.writeTransportFault(w, r, fe.kind) {
			return
		}
		switch fe.kind {
		case FaultRateLimited:
			// The OpenAPI gateway's QPS quota (UNCONFIRMED for spapi).
			writeBaidu(w, http.StatusOK, baiduGateway(bdGatewayQPS))
		case FaultBlocked:
			writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoAccessDenied, Error: "access_denied", ErrorDescription: "the user is restricted by risk control"})
		default: // FaultBusy
			writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoServer, Error: "server internal error", ErrorDescription: "please retry later"})
		}
		return
	case err != nil:
		// errCodeInvalid or errCodeUsed. Baidu OAuth answers both with
		// invalid_grant ("a code can be used only once" is one of its
		// documented causes) and quotes the code; no separate answer for a
		// reused code is documented.
		s.logBaidu("jscode2sessionkey", clientID, l.user, bdErrnoInvalidGrant)
		echo := code
		if len(echo) > bdMaxEcho {
			echo = echo[:bdMaxEcho]
		}
		writeBaidu(w, http.StatusOK, baiduError{Errno: bdErrnoInvalidGrant, Error: "invalid_grant", ErrorDescription: "Invalid authorization code: " + echo})
		return
	}
	s.baiduRememberUser(app.AppID, l.openID, l.user)
	s.logBaidu("jscode2sessionkey", clientID, l.user, 0)
	// No unionid here: Baidu hands it out only through getunionid.
	writeBaidu(w, http.StatusOK, baiduSession{OpenID: l.openID, SessionKey: l.sessionKey})
}

// baiduRememberUser records whose openid this is, for getunionid; past
// maxSessions entries it forgets an arbitrary one.
func (s *Sandbox) baiduRememberUser(appID, openID, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.baiduStateLocked()
	k := baiduOpenID{appID, openID}
	if _, ok := st.users[k]; !ok && len(st.users) >= maxSessions {
		for old := range st.users {
			delete(st.users, old)
			break
		}
	}
	st.users[k] = user
}

type baiduTokenAnswer struct {
	AccessToken   string `json:"access_token"`
	ExpiresIn     int64  `json:"expires_in"`
	RefreshToken  string `json:"refresh_token"`
	Scope         string `json:"scope"`
	SessionKey    string `json:"session_key"`
	SessionSecret string `json:"session_secret"`
}

// baiduToken answers oauth/2.0/token with client_credentials. OAuth errors
// come with HTTP 400, as in Baidu's OAuth docs (the status of each one is
// UNCONFIRMED).
func (s *Sandbox) baiduToken(w http.ResponseWriter, r *http.Request) {
	if !baiduForm(w, r) {
		writeBaidu(w, http.StatusBadRequest, baiduOAuthError{Error: "invalid_request", ErrorDescription: "malformed request"})
		return
	}
	f := r.Form
	clientID := f.Get("client_id")
	fail := func(name, desc string) {
		s.log.Infow("msg", "baidu oauth token", "app_id", clientID, "error", name)
		writeBaidu(w, http.StatusBadRequest, baiduOAuthError{Error: name, ErrorDescription: desc})
	}
	app, known := s.app(provider.Baidu, clientID)
	switch {
	case f.Get("grant_type") == "" || clientID == "" || f.Get("client_secret") == "":
		fail("invalid_request", "missing a required parameter (grant_type, client_id, client_secret)")
		return
	case f.Get("grant_type") != "client_credentials":
		fail("unsupported_grant_type", "The authorization grant type is not supported")
		return
	case !known:
		fail("invalid_client", "unknown client id")
		return
	case subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(app.Secret)) != 1:
		fail("invalid_client", "Client authentication failed")
		return
	case !strings.Contains(" "+f.Get("scope")+" ", " "+bdScope+" "):
		// Smart programs must ask for smartapp_snsapi_base (§5.4); being
		// strict catches a provider that forgets it.
		fail("invalid_scope", "The requested scope is invalid, unknown, or malformed")
		return
	}
	tok, ok := s.baiduIssueToken(app.AppID)
	if !ok {
		s.log.Infow("msg", "baidu oauth token", "app_id", clientID, "error_code", bdGatewayDailyQuota)
		writeBaidu(w, http.StatusOK, baiduGateway(bdGatewayDailyQuota))
		return
	}
	s.log.Infow("msg", "baidu oauth token", "app_id", clientID, "expires_in", int64(bdTokenLifetime/time.Second))
	now := s.now()
	writeBaidu(w, http.StatusOK, baiduTokenAnswer{
		AccessToken:  tok,
		ExpiresIn:    int64(bdTokenLifetime / time.Second),
		RefreshToken: fmt.Sprintf("25.%s.315360000.%d.%s-%s", randomString(32, bdHex), now.Add(10*365*24*time.Hour).Unix(), randomString(10, "0123456789"), randomString(8, "0123456789")),
		Scope:        bdScope + " public",
		// Deprecated and unrelated to the login session_key (§5.4), but
		// still sent: a provider must not mistake them for anything.
		SessionKey:    randomString(32, bdHex),
		SessionSecret: randomString(32, bdHex),
	})
}

// baiduIssueToken issues a new access token of appID. Earlier ones stay
// valid until they expire, as with Baidu's client_credentials. ok is false
// when too many tokens are live.
func (s *Sandbox) baiduIssueToken(appID string) (string, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.baiduStateLocked()
	st.gcLocked(now, false)
	if len(st.tokens) >= maxBaiduTokens {
		st.gcLocked(now, true)
		if len(st.tokens) >= maxBaiduTokens {
			return "", false
		}
	}
	expires := now.Add(bdTokenLifetime)
	for {
		// Like "24.a6b7dbd428f731035f771b8d15063f61.2592000.1292922000-2346678-124328".
		tok := fmt.Sprintf("24.%s.%d.%d.%s-%s", randomString(32, bdHex), int64(bdTokenLifetime/time.Second), expires.Unix(), randomString(10, "0123456789"), randomString(8, "0123456789"))
		if st.tokens[tok] == nil {
			st.tokens[tok] = &baiduToken{appID: appID, expires: expires}
			return tok, true
		}
	}
}

type baiduUnionAnswer struct {
	Data      *baiduUnionData `json:"data,omitempty"`
	Errmsg    string          `json:"errmsg"`
	Errno     int             `json:"errno"`
	RequestID string          `json:"request_id"`
	Timestamp int64           `json:"timestamp"`
}

type baiduUnionData struct {
	UnionID string `json:"unionid"`
}

// baiduGetUnionID answers getunionid: the access token (in the query) must
// be one the fake issued and unexpired; the openid one it handed out to the
// token's app. The unionid is stable per (union scope, user); an app with no
// union_scope is its own developer entity.
func (s *Sandbox) baiduGetUnionID(w http.ResponseWriter, r *http.Request, p *platform) {
	if !baiduForm(w, r) {
		writeBaidu(w, http.StatusOK, s.baiduUnionError(bdUnionParamError, "param error"))
		return
	}
	token, openID := r.URL.Query().Get("access_token"), r.Form.Get("openid")
	now := s.now()
	s.mu.Lock()
	st := s.baiduStateLocked()
	t := st.tokens[token]
	var user string
	var known bool
	if t != nil {
		user, known = st.users[baiduOpenID{t.appID, openID}]
	}
	s.mu.Unlock()
	switch {
	case t == nil:
		s.log.Infow("msg", "baidu getunionid", "error_code", bdGatewayTokenInvalid)
		writeBaidu(w, http.StatusOK, baiduGateway(bdGatewayTokenInvalid))
		return
	case !now.Before(t.expires):
		s.log.Infow("msg", "baidu getunionid", "app_id", t.appID, "error_code", bdGatewayTokenExpired)
		writeBaidu(w, http.StatusOK, baiduGateway(bdGatewayTokenExpired))
		return
	case openID == "" || !known:
		s.log.Infow("msg", "baidu getunionid", "app_id", t.appID, "errno", bdUnionParamError)
		writeBaidu(w, http.StatusOK, s.baiduUnionError(bdUnionParamError, "param error"))
		return
	}
	app, _ := s.app(p.name, t.appID)
	scope := app.UnionScope
	if scope == "" {
		scope = "baidu app " + app.AppID
	}
	s.log.Infow("msg", "baidu getunionid", "app_id", t.appID, "user", user, "errno", 0)
	writeBaidu(w, http.StatusOK, baiduUnionAnswer{
		Data:      &baiduUnionData{UnionID: p.unionID(scope, user)},
		Errmsg:    "succ",
		RequestID: randomString(10, "0123456789"),
		Timestamp: now.Unix(),
	})
}

func (s *Sandbox) baiduUnionError(errno int, msg string) baiduUnionAnswer {
	return baiduUnionAnswer{Errno: errno, Errmsg: msg, RequestID: randomString(10, "0123456789"), Timestamp: s.now().Unix()}
}

func (s *Sandbox) logBaidu(route, appID, user string, errno int) {
	s.log.Infow("msg", "baidu "+route, "app_id", appID, "user", user, "errno", errno)
}

func writeBaidu(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// BaiduExpireTokensRequest is the body of POST /sandbox/baidu/expire-tokens.
type BaiduExpireTokensRequest struct {
	// AppID limits the expiry to one app; empty means every Baidu app.
	AppID string `json:"app_id,omitempty"`
}

// handleBaiduExpireTokens expires every access token issued (to one app or
// all): the next getunionid with one of them answers error_code 111 "Access
// token expired". An empty body means every app.
func (s *Sandbox) handleBaiduExpireTokens(w http.ResponseWriter, r *http.Request) {
	var req BaiduExpireTokensRequest
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "reading the body: " + err.Error()})
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.More() {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid JSON body: want {\"app_id\"?}"})
			return
		}
	}
	if req.AppID != "" {
		if _, ok := s.app(provider.Baidu, req.AppID); !ok {
			writeJSON(w, http.StatusBadRequest, fieldError("app_id", "no %s app %q is configured", provider.Baidu, req.AppID))
			return
		}
	}
	now := s.now()
	s.mu.Lock()
	n := 0
	for _, t := range s.baiduStateLocked().tokens {
		if (req.AppID == "" || t.appID == req.AppID) && now.Before(t.expires) {
			t.expires = now
			n++
		}
	}
	s.mu.Unlock()
	s.log.Infow("msg", "baidu access tokens expired", "app_id", req.AppID, "count", n)
	writeJSON(w, http.StatusOK, map[string]any{"expired": n})
}

// ExpireBaiduTokens makes the sandbox at baseURL expire every access token
// it issued to appID (every Baidu app when appID is empty), and returns how
// many there were.
func ExpireBaiduTokens(ctx context.Context, baseURL, appID string) (int, error) {
	body, err := json.Marshal(BaiduExpireTokensRequest{AppID: appID})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/sandbox/baidu/expire-tokens", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("sandbox: expiring access tokens: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sandbox: expiring access tokens: %w (is the sandbox running at %s?)", err, baseURL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("sandbox: expiring access tokens: reading the answer: %w", err)
	}
	var out struct {
		Expired *int   `json:"expired"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(raw, &out) != nil || resp.StatusCode != http.StatusOK || out.Expired == nil {
		if out.Error != "" {
			return 0, fmt.Errorf("sandbox: expiring access tokens: %s: %s", resp.Status, out.Error)
		}
		return 0, fmt.Errorf("sandbox: expiring access tokens: %s: %q", resp.Status, snippet(raw))
	}
	return *out.Expired, nil
}

// baiduProfile is the swan.getUserInfo document, as in the official vector:
// {"openid":"open_id","nickname":"baidu_user","headimgurl":"url of image","sex":1}.
type baiduProfile struct {
	OpenID     string `json:"openid,omitempty"`
	Nickname   string `json:"nickname"`
	HeadImgURL string `json:"headimgurl"`
	Sex        int    `json:"sex"`
}

// baiduPhone is the getPhoneNumber document; Baidu hands out mainland
// numbers only, without a country code.
type baiduPhone struct {
	Mobile string `json:"mobile"`
}

const baiduDefaultNickname = "baidu_user"

// baiduSeal encrypts doc as Baidu's client APIs hand it to the smart
// program (platforms.md §5.5): 16 random characters, the content length
// (big-endian uint32), the JSON, the AppKey (or doc.WatermarkAppID), padded
// PKCS#7-style to a 32-byte block, AES-192-CBC under the user's session key
// with a random IV.
func baiduSeal(s *Sandbox, app provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 24 {
		return SealedUserData{}, errors.New("the user has no usable session key: log in again")
	}
	var v any
	switch doc.Kind {
	case "phone":
		if doc.CountryCode != "" && doc.CountryCode != "86" {
			return SealedUserData{}, errors.New("country_code: Baidu hands out mainland (86) numbers only")
		}
		if !baiduDigits(doc.Phone) {
			return SealedUserData{}, errors.New("phone: want 5 to 20 digits, without a country code")
		}
		v = baiduPhone{Mobile: doc.Phone}
	case "profile":
		p := baiduProfile{OpenID: s.baiduOpenIDOfSession(app.AppID, sessionKey), Nickname: doc.Nickname, HeadImgURL: doc.AvatarURL}
		if p.Nickname == "" {
			p.Nickname = baiduDefaultNickname
		}
		v = p
	default:
		return SealedUserData{}, fmt.Errorf("kind: %q is not phone or profile", doc.Kind)
	}
	content, err := json.Marshal(v)
	if err != nil {
		return SealedUserData{}, err
	}
	trailer := doc.WatermarkAppID
	if trailer == "" {
		trailer = app.AppID
	}
	// The official vector's filler is 16 ASCII hex characters.
	plain := []byte(randomString(16, bdHex))
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(content)))
	plain = append(plain, content...)
	plain = append(plain, trailer...)
	pad := 32 - len(plain)%32
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(key)
	if err != nil {
		return SealedUserData{}, err
	}
	iv := randomBytes(aes.BlockSize)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(plain, plain)
	return SealedUserData{
		EncryptedData: base64.StdEncoding.EncodeToString(plain),
		IV:            base64.StdEncoding.EncodeToString(iv),
	}, nil
}

// baiduOpenIDOfSession returns the openid of the user holding sessionKey on
// appID, or "".
func (s *Sandbox) baiduOpenIDOfSession(appID, sessionKey string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.sessions {
		if k.platform == provider.Baidu && k.appID == appID && e.key == sessionKey {
			return baiduOpenIDOf(appID, k.user)
		}
	}
	return ""
}

func baiduDigits(s string) bool {
	return len(s) >= 5 && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}

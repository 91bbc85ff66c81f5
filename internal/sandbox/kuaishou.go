package sandbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// The Kuaishou fake (platforms.md §4), answered as open.kuaishou.com does:
//
//	POST /oauth2/mp/code2session  app_id, app_secret, js_code (form)
//	POST /oauth2/access_token     app_id, app_secret, grant_type=client_credentials
//
// Success is {"result":1,...}; failures are HTTP 200 with
// {"result":N,"error":"<oauth name>","error_msg":"..."}.

var kuaishou = &platform{
	name: provider.Kuaishou,
	// ks.login codes are 64 upper-case hex characters, e.g.
	// 0F937BAD25DD870B0C5DAFCACE199093C3006E167CAF4A0C3332D3A49991A32C.
	newCode: func() string { return randomString(64, "0123456789ABCDEF") },
	// open_id and union_id: 32 lower-case hex characters (the real format is
	// not documented; this is what sample answers look like).
	openID: func(appID, user string) string {
		return hex.EncodeToString(digest("kuaishou open_id", appID, user)[:16])
	},
	// Kuaishou documents union_id only for mini-games (UNCONFIRMED for
	// mini-programs); the fake sends it for apps with a union_scope, which
	// is how a deployment says it expects one.
	unionID: func(scope, user string) string {
		return hex.EncodeToString(digest("kuaishou union_id", scope, user)[:16])
	},
	// session_key: 16 random bytes (an AES-128 key), 24 base64 characters.
	newSessionKey: func() string { return base64.StdEncoding.EncodeToString(randomBytes(16)) },
	routes: func(s *Sandbox, p *platform, mux *http.ServeMux) {
		// No method in the patterns: other methods get a business error,
		// not 405.
		mux.HandleFunc("/oauth2/mp/code2session", func(w http.ResponseWriter, r *http.Request) {
			s.kuaishouCode2Session(w, r, p)
		})
		mux.HandleFunc("/oauth2/access_token", func(w http.ResponseWriter, r *http.Request) {
			s.kuaishouAccessToken(w, r, p)
		})
	},
	sealUserData: kuaishouSeal,
}

// Kuaishou results and OAuth error names (platforms.md §4.2 and the
// open-platform OAuth table). error_msg texts are the table's descriptions.
const (
	ksOK                   = 1
	ksInvalidRequest       = 100200100
	ksUnauthorizedClient   = 100200101
	ksAccessDenied         = 100200102
	ksUnsupportedGrantType = 100200104
	ksInvalidGrant         = 100200105
	ksServerError          = 100200500
)

type kuaishouErr struct {
	Result   int    `json:"result"`
	Error    string `json:"error"`
	ErrorMsg string `json:"error_msg"`
}

var (
	ksErrInvalidRequest       = kuaishouErr{ksInvalidRequest, "invalid_request", "缺少必要的请求参数"}
	ksErrUnauthorizedClient   = kuaishouErr{ksUnauthorizedClient, "unauthorized_client", "app 非法，开发者或 app 不存在或状态不正确"}
	ksErrAccessDenied         = kuaishouErr{ksAccessDenied, "access_denied", "请求被拒绝"}
	ksErrUnsupportedGrantType = kuaishouErr{ksUnsupportedGrantType, "unsupported_grant_type", "grantType 错误"}
	ksErrInvalidGrant         = kuaishouErr{ksInvalidGrant, "invalid_grant", "请求的 code 错误"}
	ksErrServerError          = kuaishouErr{ksServerError, "server_error", "服务内部错误"}
	// UNCONFIRMED: Kuaishou documents no rate-limit result. The closest
	// documented answer is the transient server_error ("retry later"), so
	// the rate_limited fault sends it with its own message.
	ksErrRateLimited = kuaishouErr{ksServerError, "server_error", "请求过于频繁，请稍后重试"}
)

// kuaishouSession is a successful code2session answer; union_id only when
// the app has a union scope.
type kuaishouSession struct {
	Result     int    `json:"result"`
	SessionKey string `json:"session_key"`
	OpenID     string `json:"open_id"`
	UnionID    string `json:"union_id,omitempty"`
}

// kuaishouForm parses the request's parameters. The documented call is a
// form POST; clients that put them in the query string of the POST are
// served too (platforms.md §4.1). Other methods are refused.
func kuaishouForm(w http.ResponseWriter, r *http.Request) (get func(string) string, ok bool) {
	if r.Method != http.MethodPost {
		// UNCONFIRMED: whether GET works is undocumented; the fake is
		// strict so a provider sending GET notices.
		writeKuaishou(w, ksErrInvalidRequest)
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	if err := r.ParseForm(); err != nil {
		writeKuaishou(w, ksErrInvalidRequest)
		return nil, false
	}
	return r.Form.Get, true
}

// kuaishouApp checks app_id and app_secret; it writes the error and returns
// false when they are wrong.
func (s *Sandbox) kuaishouApp(w http.ResponseWriter, p *platform, appID, secret, route string) (provider.App, bool) {
	app, ok := s.app(p.name, appID)
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(app.Secret)) != 1 {
		s.logKuaishou(route, appID, "", ksUnauthorizedClient)
		writeKuaishou(w, ksErrUnauthorizedClient)
		return provider.App{}, false
	}
	return app, true
}

func (s *Sandbox) kuaishouCode2Session(w http.ResponseWriter, r *http.Request, p *platform) {
	get, ok := kuaishouForm(w, r)
	if !ok {
		return
	}
	appID, secret, code := get("app_id"), get("app_secret"), get("js_code")
	if appID == "" || secret == "" || code == "" {
		s.logKuaishou("code2session", appID, "", ksInvalidRequest)
		writeKuaishou(w, ksErrInvalidRequest)
		return
	}
	app, ok := s.kuaishouApp(w, p, appID, secret, "code2session")
	if !ok {
		return
	}

	l, err := s.redeem(p, app, code)
	var fe *faultError
	switch {
	case errors.As(err, &fe):
		s.log.Infow("msg", "kuaishou code2session: injected fault", "app_id", appID, "user", fe.user, "fault", fe.kind)
		if s.writeTransportFault(w, r, fe.kind) {
			return
		}
		switch fe.kind {
		case FaultRateLimited:
			writeKuaishou(w, ksErrRateLimited)
		case FaultBlocked:
			// access_denied, "request rejected": the documented answer
			// closest to risk control (UNCONFIRMED).
			writeKuaishou(w, ksErrAccessDenied)
		default: // FaultBusy
			writeKuaishou(w, ksErrServerError)
		}
		return
	case err != nil:
		// errCodeInvalid or errCodeUsed: Kuaishou documents no separate
		// result for a reused code (UNCONFIRMED), so both are "code error".
		s.logKuaishou("code2session", appID, l.user, ksInvalidGrant)
		writeKuaishou(w, ksErrInvalidGrant)
		return
	}
	s.logKuaishou("code2session", appID, l.user, ksOK)
	writeKuaishou(w, kuaishouSession{Result: ksOK, SessionKey: l.sessionKey, OpenID: l.openID, UnionID: l.unionID})
}

// Access tokens live 48 hours; every request issues a new one and the
// previous ones stay valid until they expire (platforms.md §4.4).
const (
	kuaishouTokenTTL = 48 * time.Hour
	// maxKuaishouTokens caps remembered tokens over all apps.
	maxKuaishouTokens = 10_000
)

type kuaishouTokenEntry struct {
	appID   string
	expires time.Time
}

// kuaishouTokens is the platform's state: every issued, unexpired token.
type kuaishouTokens map[string]kuaishouTokenEntry

func (s *Sandbox) kuaishouTokensLocked() kuaishouTokens {
	return s.platformState(provider.Kuaishou, func() any { return kuaishouTokens{} }).(kuaishouTokens)
}

type kuaishouTokenAnswer struct {
	Result      int    `json:"result"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

func (s *Sandbox) kuaishouAccessToken(w http.ResponseWriter, r *http.Request, p *platform) {
	get, ok := kuaishouForm(w, r)
	if !ok {
		return
	}
	appID, secret, grant := get("app_id"), get("app_secret"), get("grant_type")
	if appID == "" || secret == "" || grant == "" {
		s.logKuaishou("access_token", appID, "", ksInvalidRequest)
		writeKuaishou(w, ksErrInvalidRequest)
		return
	}
	if grant != "client_credentials" {
		// client_credential (WeChat's singular) is the classic mistake.
		s.logKuaishou("access_token", appID, "", ksUnsupportedGrantType)
		writeKuaishou(w, ksErrUnsupportedGrantType)
		return
	}
	if _, ok := s.kuaishouApp(w, p, appID, secret, "access_token"); !ok {
		return
	}
	token := randomString(48, alnum)
	now := s.now()
	s.mu.Lock()
	tokens := s.kuaishouTokensLocked()
	if len(tokens) >= maxKuaishouTokens {
		kuaishouPruneTokens(tokens, now)
	}
	tokens[token] = kuaishouTokenEntry{appID: appID, expires: now.Add(kuaishouTokenTTL)}
	s.mu.Unlock()
	s.logKuaishou("access_token", appID, "", ksOK)
	writeKuaishou(w, kuaishouTokenAnswer{Result: ksOK, AccessToken: token, ExpiresIn: int64(kuaishouTokenTTL / time.Second), TokenType: "bearer"})
}

// kuaishouPruneTokens drops expired tokens and, if still full, the one that
// expires first.
func kuaishouPruneTokens(tokens kuaishouTokens, now time.Time) {
	for t, e := range tokens {
		if !now.Before(e.expires) {
			delete(tokens, t)
		}
	}
	if len(tokens) < maxKuaishouTokens {
		return
	}
	var oldest string
	for t, e := range tokens {
		if oldest == "" || e.expires.Before(tokens[oldest].expires) {
			oldest = t
		}
	}
	delete(tokens, oldest)
}

// kuaishouTokenValid reports whether token was issued to appID and has not
// expired: what Kuaishou's token-taking APIs check.
func (s *Sandbox) kuaishouTokenValid(appID, token string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kuaishouTokensLocked()[token]
	return ok && e.appID == appID && now.Before(e.expires)
}

func (s *Sandbox) logKuaishou(route, appID, user string, result int) {
	s.log.Infow("msg", "kuaishou "+route, "app_id", appID, "user", user, "result", result)
}

// writeKuaishou sends a body the way open.kuaishou.com does: HTTP 200 and
// JSON, also for business errors.
func writeKuaishou(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// The decrypted user data documents. The phone shape is documented
// (platforms.md §4.5: countryCode a string, no watermark); the profile
// shape is not (UNCONFIRMED: WeChat's names). A watermark is added only when
// the request names a watermark app id, to test the providers' check.
type kuaishouPhoneDoc struct {
	CountryCode string             `json:"countryCode"`
	PhoneNumber string             `json:"phoneNumber"`
	Watermark   *kuaishouWatermark `json:"watermark,omitempty"`
}

type kuaishouProfileDoc struct {
	NickName  string             `json:"nickName"`
	AvatarURL string             `json:"avatarUrl"`
	Watermark *kuaishouWatermark `json:"watermark,omitempty"`
}

type kuaishouWatermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}

// kuaishouSeal encrypts doc as the Kuaishou client hands it to the
// mini-program: JSON, PKCS#7, AES-128-CBC with the user's session key and a
// random IV, both base64.
func kuaishouSeal(s *Sandbox, _ provider.App, sessionKey string, doc UserDataDoc) (SealedUserData, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return SealedUserData{}, errors.New("the user's session key is not an AES-128 key")
	}
	var wm *kuaishouWatermark
	if doc.WatermarkAppID != "" {
		wm = &kuaishouWatermark{AppID: doc.WatermarkAppID, Timestamp: s.now().Unix()}
	}
	var v any
	switch doc.Kind {
	case "phone":
		cc := doc.CountryCode
		if cc == "" {
			cc = "86"
		}
		v = kuaishouPhoneDoc{CountryCode: cc, PhoneNumber: doc.Phone, Watermark: wm}
	case "profile":
		v = kuaishouProfileDoc{NickName: doc.Nickname, AvatarURL: doc.AvatarURL, Watermark: wm}
	default:
		return SealedUserData{}, errors.New("kind: must be phone or profile")
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
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return SealedUserData{
		EncryptedData: base64.StdEncoding.EncodeToString(out),
		IV:            base64.StdEncoding.EncodeToString(iv),
	}, nil
}

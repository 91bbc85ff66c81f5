// Package wechat exchanges a WeChat mini-program login code (wx.login) for
// the user's identity with auth.code2Session:
//
//	GET https://api.weixin.qq.com/sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
//
// The wire format, including its oddities, is described in section 1 of
// platforms.md; Decode implements it and is kept free of I/O so it can be
// fuzzed and benchmarked.
package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultBaseURL is WeChat's API host; App.Endpoint replaces it in tests and
// against a local fake.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Path is the code2Session path. It is case-sensitive: WeChat answers 40066
// "invalid url" to /sns/jsCode2Session.
const Path = "/sns/jscode2session"

// RateLimitRetryAfter is the back-off reported with errcode 45011. WeChat's
// quota is per user per minute ("retry next minute"); we do not know where
// WeChat's minute starts (its clock is not ours), so a full minute is the
// only hint that is always long enough. It also keeps Decode pure.
const RateLimitRetryAfter = 60 * time.Second

const (
	platform = provider.WeChat
	// maxMessage bounds the platform's errmsg we keep for the log.
	maxMessage = 200
	// maxJSCode bounds the login code we forward; real ones are 32 chars.
	maxJSCode = 1024
)

// Session is a successful code2Session answer.
type Session struct {
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
	// SessionKey is the base64 of a 16-byte AES key, or empty when WeChat
	// sent none or one we could not use (see Decode).
	SessionKey string `json:"session_key"`
}

type wechat struct {
	app    provider.App
	env    provider.Env // Tokens: the access-token broker (PhoneNumber)
	client *http.Client
	url    *url.URL // scheme://host[:port]/sns/jscode2session, no query
}

// New returns the provider of one WeChat mini-program.
func New(app provider.App, env provider.Env) (provider.Provider, error) {
	if app.AppID == "" {
		return nil, errors.New("app_id: required (the mini-program AppID, wx...)")
	}
	if app.Secret == "" {
		return nil, errors.New("secret: required (the mini-program AppSecret, from mp.weixin.qq.com)")
	}
	if err := provider.ValidateEndpoint(app.Endpoint); err != nil {
		return nil, errors.New("endpoint: " + err.Error())
	}
	// ValidateEndpoint allows a trailing "/" but App.URL concatenates, which
	// would make the path "//sns/jscode2session": drop it.
	a := app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	u, err := url.Parse(a.URL(DefaultBaseURL, Path))
	if err != nil {
		return nil, errors.New("endpoint: invalid URL")
	}
	return &wechat{app: app, env: env, client: provider.NewHTTPClient(app.Timeout), url: u}, nil
}

// Exchange calls code2Session with code and returns who it belongs to.
// Errors are *provider.Error; test their kind with errors.Is.
func (w *wechat) Exchange(ctx context.Context, c provider.Credentials) (*provider.Identity, error) {
	code := c.Code
	// An empty js_code makes WeChat answer 41008 "missing code", which we
	// map to ErrMisconfigured; it is the client's fault, so say so without
	// spending a call (the same for absurdly long codes).
	if code == "" || len(code) > maxJSCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "empty or oversized login code"}
	}
	q := url.Values{
		"appid":      {w.app.AppID},
		"secret":     {w.app.Secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	u := *w.url
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		// err would quote the URL, which holds the secret: drop it.
		return nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Accept", "application/json")
	status, body, err := provider.Do(ctx, w.client, platform, req)
	if err != nil {
		return nil, err // already an ErrUnavailable without the URL
	}
	s, err := Decode(status, body)
	if err != nil {
		// WeChat does not echo the secret or the code in errmsg, but a
		// proxy or a fake might: never let them reach a log.
		return nil, provider.ScrubError(err, w.app.Secret, code)
	}
	return &provider.Identity{
		Platform:   platform,
		AppID:      w.app.AppID,
		OpenID:     s.OpenID,
		UnionID:    s.UnionID,
		SessionKey: s.SessionKey,
	}, nil
}

// answer is the union of WeChat's success and error bodies.
type answer struct {
	ErrCode    errCode         `json:"errcode"`
	ErrMsg     json.RawMessage `json:"errmsg"`
	OpenID     string          `json:"openid"`
	UnionID    string          `json:"unionid"`
	SessionKey string          `json:"session_key"`
}

// Decode turns a code2Session answer (HTTP status and body) into a Session,
// or a *provider.Error:
//
//   - any status but 200, an empty or undecodable body, or JSON that is not
//     an object: ErrUnavailable (WeChat always answers 200 with JSON, so
//     anything else comes from a proxy or an outage). The Content-Type is
//     ignored: WeChat has been seen serving JSON as text/plain.
//   - errcode absent, null or 0 is success (real successes carry no errcode;
//     the docs show 0). errcode may be a number or a numeric string.
//   - a non-zero errcode is mapped by number only; errmsg varies (", rid:",
//     ", hints: [...]" suffixes) and is kept, truncated, for the log.
//   - a success without openid: ErrUnavailable.
//
// Error texts never quote the body: a truncated success still holds the
// session_key.
func Decode(status int, body []byte) (*Session, error) {
	var a answer
	if err := provider.DecodeAnswer(platform, status, body, &a); err != nil {
		return nil, err
	}
	if a.ErrCode.Failed() {
		return nil, &provider.Error{
			Kind:       kindOf(a.ErrCode),
			Platform:   platform,
			Code:       a.ErrCode.Text,
			Message:    message(a.ErrMsg),
			RetryAfter: retryAfter(a.ErrCode),
			Retryable:  retryable(a.ErrCode),
		}
	}
	if a.OpenID == "" {
		return nil, provider.Unavailable(platform, "success answer without openid")
	}
	s := &Session{OpenID: a.OpenID, UnionID: a.UnionID}
	// session_key is only ever used as an AES-128 key (encryptedData) or
	// an HMAC key that WeChat derives the same way, and the official demo
	// rejects anything but 24 base64 chars. A malformed key can't decrypt
	// anything, so it's dropped and the login is still accepted: the openid
	// is what identifies the user, and refusing it would lock the user out
	// over a field most logins never use. An empty SessionKey means "none
	// usable; log in again to get one".
	if validSessionKey(a.SessionKey) {
		s.SessionKey = a.SessionKey
	}
	return s, nil
}

// kindOf maps a non-zero errcode to the kind of failure.
func kindOf(c errCode) error {
	if !c.Numeric {
		return provider.ErrUnavailable
	}
	switch n := c.N; {
	case n == -1: // system busy
		return provider.ErrUnavailable
	case n == 40029: // invalid code: expired, or another appid's
		return provider.ErrCodeInvalid
	case n == 40163: // code been used
		return provider.ErrCodeUsed
	case n == 45011: // api minute-quota reach limit
		return provider.ErrRateLimited
	case n == 40226: // code blocked: high-risk user
		return provider.ErrUserBlocked
	case n == 40013, // invalid appid
		n == 40125,               // invalid appsecret
		n == 40164,               // caller IP not in the whitelist
		n == 40243,               // AppSecret frozen
		n == 40002,               // invalid grant_type
		n == 40066,               // invalid url (path)
		n >= 41001 && n <= 41099: // missing parameter (41002 appid, 41004 secret, 41008 code)
		return provider.ErrMisconfigured
	default:
		// An errcode we don't know is not the user's fault and not provably
		// our configuration's: report the platform as unavailable (retryable,
		// 5xx-like) and keep the code in the error for the operator.
		return provider.ErrUnavailable
	}
}

// retryAfter is the back-off of a rate limit: 45011 (minute quota) and
// 45009 (daily quota, where no shorter hint is known either).
func retryAfter(c errCode) time.Duration {
	if c.Numeric && (c.N == 45011 || c.N == 45009) {
		return RateLimitRetryAfter
	}
	return 0
}

// retryable reports WeChat's -1 "system busy": the call was not acted on.
func retryable(c errCode) bool {
	return c.Numeric && c.N == -1
}

// errCode is errcode as WeChat sends it: a JSON number, or (in one doc
// example) a string such as "40029". Absent, null, "" and 0 are success
// (see provider.FlexCode.Failed).
type errCode = provider.FlexCode

// message returns errmsg (normally a string) cleaned and truncated.
func message(raw json.RawMessage) string {
	return provider.Message(raw, maxMessage)
}

// validSessionKey reports whether k is 24 base64 chars of a 16-byte key.
func validSessionKey(k string) bool {
	return provider.IsBase64Key(k, 16)
}

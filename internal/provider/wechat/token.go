package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// StableTokenPath is the stable access token endpoint (platforms.md §1.5):
//
//	POST https://api.weixin.qq.com/cgi-bin/stable_token
//	{"grant_type":"client_credential","appid":"APPID","secret":"APPSECRET","force_refresh":false}
//
// Its tokens are independent of cgi-bin/token's, so mpauth can share an app
// with another backend that uses the classic token without the two
// invalidating each other's tokens.
const StableTokenPath = "/cgi-bin/stable_token"

const (
	// maxAccessToken bounds a token we accept; WeChat asks to store at
	// least 512 characters, real ones are about 150.
	maxAccessToken = 2048
	// maxTokenLifetime bounds expires_in (documented: 7200 s); anything
	// longer is not a WeChat answer.
	maxTokenLifetime = 30 * 24 * time.Hour
)

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// FetchAccessToken asks WeChat for the app's stable access token. With force
// WeChat issues a new one (the previous one stays valid for five minutes);
// WeChat allows that 20 times a day, 30 s apart, so the broker should force
// only after the platform rejected a token. Errors are *provider.Error.
func (w *wechat) FetchAccessToken(ctx context.Context, force bool) (provider.AccessToken, error) {
	body, err := json.Marshal(stableTokenRequest{
		GrantType:    "client_credential",
		AppID:        w.app.AppID,
		Secret:       w.app.Secret,
		ForceRefresh: force,
	})
	if err != nil {
		return provider.AccessToken{}, provider.Unavailable(platform, "encoding the request failed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpointURL(StableTokenPath), bytes.NewReader(body))
	if err != nil {
		return provider.AccessToken{}, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	status, resp, err := provider.Do(ctx, w.client, platform, req)
	if err != nil {
		return provider.AccessToken{}, err
	}
	t, err := DecodeAccessToken(status, resp)
	if err != nil {
		return provider.AccessToken{}, provider.ScrubError(err, w.app.Secret)
	}
	return t, nil
}

// tokenAnswer is the union of stable_token's success and error bodies.
type tokenAnswer struct {
	ErrCode     errCode         `json:"errcode"`
	ErrMsg      json.RawMessage `json:"errmsg"`
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// DecodeAccessToken turns a stable_token (or cgi-bin/token) answer into an
// access token, or a *provider.Error:
//
//   - framing as in Decode: any status but 200, an empty body or anything
//     but a JSON object is ErrUnavailable;
//   - errcode (number or numeric string) absent or 0 is success; a non-zero
//     one is mapped by tokenKindOf;
//   - success needs a non-empty access_token (at most 2048 characters, no
//     spaces or control characters: it goes into URLs) and expires_in, a
//     number of seconds in 1..30 days; a numeric string ("7200") is accepted
//     too (UNCONFIRMED that WeChat ever sends one; cheap to tolerate).
//
// Error texts never quote the body or the token.
func DecodeAccessToken(status int, body []byte) (provider.AccessToken, error) {
	var a tokenAnswer
	if err := provider.DecodeAnswer(platform, status, body, &a); err != nil {
		return provider.AccessToken{}, err
	}
	if a.ErrCode.Failed() {
		return provider.AccessToken{}, &provider.Error{
			Kind:       tokenKindOf(a.ErrCode),
			Platform:   platform,
			Code:       a.ErrCode.Text,
			Message:    message(a.ErrMsg),
			RetryAfter: retryAfter(a.ErrCode),
			Retryable:  retryable(a.ErrCode),
		}
	}
	if a.AccessToken == "" || len(a.AccessToken) > maxAccessToken || strings.ContainsFunc(a.AccessToken, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return provider.AccessToken{}, provider.Unavailable(platform, "success answer without a usable access_token")
	}
	secs, ok := expiresIn(a.ExpiresIn)
	if !ok {
		return provider.AccessToken{}, provider.Unavailable(platform, "success answer without a usable expires_in")
	}
	return provider.AccessToken{Token: a.AccessToken, ExpiresIn: time.Duration(secs) * time.Second}, nil
}

// expiresIn reads expires_in: a JSON number or numeric string of seconds,
// 1..maxTokenLifetime.
func expiresIn(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	n, ok := provider.ParseFlexInt(s)
	if !ok || n <= 0 || n > int64(maxTokenLifetime/time.Second) {
		return 0, false
	}
	return n, true
}

// tokenKindOf maps a non-zero stable_token errcode to the kind of failure.
// On this endpoint nearly every error is the app's configuration.
func tokenKindOf(c errCode) error {
	if !c.Numeric {
		return provider.ErrUnavailable
	}
	switch n := c.N; {
	case n == -1: // system busy
		return provider.ErrUnavailable
	case n == 45009, // api freq out of limit (daily quota; force_refresh 20/day)
		n == 45011: // api minute-quota reach limit
		return provider.ErrRateLimited
	case n == 40001, // invalid credential: here, a wrong AppSecret
		n == 40002,               // invalid grant_type
		n == 40013,               // invalid appid
		n == 40125,               // invalid appsecret
		n == 40164,               // caller IP not in the API IP whitelist
		n == 40243,               // AppSecret frozen
		n == 40066,               // invalid url (path)
		n == 43002,               // require POST method
		n == 47001,               // data format error (request body)
		n >= 41001 && n <= 41099: // missing parameter (41002 appid, 41004 secret)
		return provider.ErrMisconfigured
	default:
		return provider.ErrUnavailable
	}
}

// Package baidu exchanges a Baidu smart program login code (swan.getLoginCode
// or swan.login) for the user's identity:
//
//	POST https://spapi.baidu.com/oauth/jscode2sessionkey        code, client_id, sk  → openid, session_key
//	POST https://openapi.baidu.com/rest/2.0/smartapp/getunionid  ?access_token=, openid → unionid
//	POST https://openapi.baidu.com/oauth/2.0/token               client_credentials   → access_token
//
// Baidu calls the app id the AppKey; it is provider.App.AppID and goes out as
// client_id. The unionid is not part of the login answer: when the app has a
// union scope the provider fetches it with the app's access token, taken from
// the shared broker (provider.Env.Tokens).
//
// The wire format, including its oddities, is described in section 5 of
// platforms.md. DecodeSession, DecodeToken, DecodeUnionID and Decrypt are
// free of I/O so they can be fuzzed and benchmarked.
package baidu

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// Hosts. App.Endpoint replaces both (scheme://host[:port]) in tests and
// against a local fake.
const (
	// DefaultBaseURL serves jscode2sessionkey.
	DefaultBaseURL = "https://spapi.baidu.com"
	// OpenAPIBaseURL serves the access token and getunionid.
	OpenAPIBaseURL = "https://openapi.baidu.com"
)

// Paths.
const (
	SessionKeyPath = "/oauth/jscode2sessionkey"
	TokenPath      = "/oauth/2.0/token"
	UnionIDPath    = "/rest/2.0/smartapp/getunionid"
	// TokenScope is the only scope smart programs ask for (§5.4).
	TokenScope = "smartapp_snsapi_base"
)

const (
	platform = provider.Baidu
	// maxCode bounds the login code we forward; real ones are short.
	maxCode = 1024
)

type baidu struct {
	app    provider.App
	tokens provider.AccessTokens
	client *http.Client
	// Full URLs without query.
	sessionURL, tokenURL, unionURL string
}

var (
	_ provider.Provider          = (*baidu)(nil)
	_ provider.TokenFetcher      = (*baidu)(nil)
	_ provider.UserDataDecrypter = (*baidu)(nil)
)

// New returns the provider of one Baidu smart program. app.AppID is the
// AppKey (client_id) and app.Secret the AppSecret (sk). An app with a union
// scope needs env.Tokens to fetch unionids.
func New(app provider.App, env provider.Env) (provider.Provider, error) {
	if app.AppID == "" {
		return nil, errors.New("app_id: required (the smart program's AppKey, sent as client_id)")
	}
	if app.Secret == "" {
		return nil, errors.New("secret: required (the smart program's AppSecret, sent as sk)")
	}
	if err := provider.ValidateEndpoint(app.Endpoint); err != nil {
		return nil, errors.New("endpoint: " + err.Error())
	}
	if app.UnionScope != "" && env.Tokens == nil {
		return nil, errors.New("union_scope: Baidu returns the unionid only through getunionid, which needs the access-token broker, and none is configured")
	}
	// ValidateEndpoint allows a trailing "/" but App.URL concatenates.
	a := app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	b := &baidu{
		app:        app,
		tokens:     env.Tokens,
		client:     provider.NewHTTPClient(app.Timeout),
		sessionURL: a.URL(DefaultBaseURL, SessionKeyPath),
		tokenURL:   a.URL(OpenAPIBaseURL, TokenPath),
		unionURL:   a.URL(OpenAPIBaseURL, UnionIDPath),
	}
	for _, u := range []string{b.sessionURL, b.tokenURL, b.unionURL} {
		if _, err := url.Parse(u); err != nil {
			return nil, errors.New("endpoint: invalid URL")
		}
	}
	return b, nil
}

// Exchange calls jscode2sessionkey with the code and, when the app has a
// union scope, getunionid with the openid. Errors are *provider.Error; test
// their kind with errors.Is.
func (b *baidu) Exchange(ctx context.Context, c provider.Credentials) (*provider.Identity, error) {
	code := c.Code
	// Baidu has no guest login, so an AnonymousCode alone is just a missing
	// code. Spare the call for empty or absurd codes.
	if code == "" || len(code) > maxCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "empty or oversized login code"}
	}
	form := url.Values{
		"code":      {code},
		"client_id": {b.app.AppID},
		"sk":        {b.app.Secret},
	}
	status, body, err := b.post(ctx, b.sessionURL, form)
	if err != nil {
		return nil, err
	}
	s, err := DecodeSession(status, body)
	if err != nil {
		return nil, b.scrub(err, code)
	}
	id := &provider.Identity{
		Platform:   platform,
		AppID:      b.app.AppID,
		OpenID:     s.OpenID,
		SessionKey: s.SessionKey,
	}
	if b.app.UnionScope == "" {
		return id, nil
	}
	unionID, err := b.unionID(ctx, s.OpenID)
	if err != nil {
		// The whole login fails, even on a transient getunionid error: the
		// account is keyed by the unionid when the app has a union scope,
		// and a login without it would be filed under the openid alone,
		// splitting the user into two accounts once the unionid comes
		// back. The code is spent, so the client logs in again (and the
		// login is not retried with it).
		return nil, provider.NotRetryable(err)
	}
	id.UnionID = unionID
	return id, nil
}

// unionID fetches the user's unionid with the app's access token. When
// Baidu rejects the token (invalid or expired) it is invalidated in the
// broker and the call retried once with a fresh one.
func (b *baidu) unionID(ctx context.Context, openID string) (string, error) {
	tok, err := b.tokens.Token(ctx, b.app, b)
	if err != nil {
		return "", provider.BrokerError(platform, err)
	}
	u, err := b.getUnionID(ctx, tok, openID)
	if !errors.Is(err, provider.ErrAccessTokenInvalid) {
		return u, err
	}
	if err := b.tokens.Invalidate(ctx, b.app, tok); err != nil {
		return "", provider.BrokerError(platform, err)
	}
	fresh, err := b.tokens.Token(ctx, b.app, b)
	if err != nil {
		return "", provider.BrokerError(platform, err)
	}
	u, err = b.getUnionID(ctx, fresh, openID)
	if errors.Is(err, provider.ErrAccessTokenInvalid) {
		// A token rejected right after a refresh: Baidu is inconsistent or
		// another party keeps replacing the token. Drop it too and give up
		// on this login (retryable), without looping.
		_ = b.tokens.Invalidate(ctx, b.app, fresh)
		var pe *provider.Error
		errors.As(err, &pe)
		return "", &provider.Error{Kind: provider.ErrUnavailable, Platform: platform, Code: pe.Code, Message: provider.Clean("getunionid rejected a freshly fetched access token: "+pe.Message, maxMessage)}
	}
	return u, err
}

func (b *baidu) getUnionID(ctx context.Context, token, openID string) (string, error) {
	u := b.unionURL + "?" + url.Values{"access_token": {token}}.Encode()
	status, body, err := b.post(ctx, u, url.Values{"openid": {openID}})
	if err != nil {
		return "", err
	}
	unionID, err := DecodeUnionID(status, body)
	if err != nil {
		return "", b.scrub(err, token)
	}
	return unionID, nil
}

// FetchAccessToken gets a new app access token with client_credentials
// (§5.4). force is ignored: Baidu has no such flag, and every
// client_credentials call already issues a new token.
func (b *baidu) FetchAccessToken(ctx context.Context, _ bool) (provider.AccessToken, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {b.app.AppID},
		"client_secret": {b.app.Secret},
		"scope":         {TokenScope},
	}
	status, body, err := b.post(ctx, b.tokenURL, form)
	if err != nil {
		return provider.AccessToken{}, err
	}
	t, err := DecodeToken(status, body)
	if err != nil {
		return provider.AccessToken{}, b.scrub(err)
	}
	return t, nil
}

// post sends form as an x-www-form-urlencoded body, as Baidu's docs and SDKs
// do. u may carry a secret (access_token) in its query; provider.Do never
// puts the URL in an error.
func (b *baidu) post(ctx context.Context, u string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		// err would quote the URL: drop it.
		return 0, nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return provider.Do(ctx, b.client, platform, req)
}

// scrub removes the app secret and the given values (login code, access
// token) from a decoded error: Baidu's OAuth messages quote the code
// ("Invalid authorization code: ..."), and a proxy or a fake might echo
// anything.
func (b *baidu) scrub(err error, values ...string) error {
	return provider.ScrubError(err, append([]string{b.app.Secret}, values...)...)
}

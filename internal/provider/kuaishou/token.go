package kuaishou

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultAccessTokenTTL is the documented lifetime of an access token (48
// hours), used when an answer has no expires_in.
const DefaultAccessTokenTTL = 48 * time.Hour

// maxAccessTokenTTL bounds expires_in; anything longer is not an answer we
// trust.
const maxAccessTokenTTL = 365 * 24 * time.Hour

// maxAccessToken bounds the token we accept; real ones are well under 200
// characters.
const maxAccessToken = 2048

// FetchAccessToken gets a new access token of the app (platforms.md §4.4):
//
//	POST https://open.kuaishou.com/oauth2/access_token
//	app_id=&app_secret=&grant_type=client_credentials
//
// Every call issues a new token and the previous ones stay valid until they
// expire, so force changes nothing: there is no "force refresh" parameter
// and none is needed.
func (k *kuaishou) FetchAccessToken(ctx context.Context, _ bool) (provider.AccessToken, error) {
	status, body, err := k.post(ctx, k.tokenURL, url.Values{
		"app_id":     {k.app.AppID},
		"app_secret": {k.app.Secret},
		"grant_type": {"client_credentials"}, // plural, unlike WeChat and Douyin
	})
	if err != nil {
		return provider.AccessToken{}, err
	}
	t, err := DecodeAccessToken(status, body)
	if err != nil {
		return provider.AccessToken{}, provider.ScrubError(err, k.app.Secret)
	}
	return t, nil
}

// tokenAnswer is the union of access_token's success and error bodies:
// {"result":1,"access_token":"xxxxxxx","expires_in":23435,"token_type":"bearer"}.
type tokenAnswer struct {
	Result      result          `json:"result"`
	Error       json.RawMessage `json:"error"`
	ErrorMsg    json.RawMessage `json:"error_msg"`
	AccessToken string          `json:"access_token"`
	ExpiresIn   result          `json:"expires_in"`
}

// DecodeAccessToken turns an access_token answer into a provider.AccessToken,
// or a *provider.Error, with the same rules as Decode: result 1 (number or
// numeric string) is success; errors are mapped by result with tokenKindOf.
// expires_in (seconds, number or numeric string) defaults to the documented
// 48 hours when absent; a present but non-positive or absurd one is
// ErrUnavailable, as is a success without a usable access_token.
func DecodeAccessToken(status int, body []byte) (provider.AccessToken, error) {
	var a tokenAnswer
	if err := provider.DecodeAnswer(platform, status, body, &a); err != nil {
		return provider.AccessToken{}, err
	}
	if err := failure(a.Result, a.Error, a.ErrorMsg, a.AccessToken != "", tokenKindOf, tokenOAuthKind); err != nil {
		return provider.AccessToken{}, err
	}
	if !validAccessToken(a.AccessToken) {
		return provider.AccessToken{}, provider.Unavailable(platform, "success answer without a usable access_token")
	}
	ttl := DefaultAccessTokenTTL
	if a.ExpiresIn.Present {
		if !a.ExpiresIn.Numeric || a.ExpiresIn.N <= 0 || a.ExpiresIn.N > int64(maxAccessTokenTTL/time.Second) {
			return provider.AccessToken{}, provider.Unavailable(platform, "success answer with an unusable expires_in")
		}
		ttl = time.Duration(a.ExpiresIn.N) * time.Second
	}
	return provider.AccessToken{Token: a.AccessToken, ExpiresIn: ttl}, nil
}

// tokenKindOf maps an access_token result other than 1. Only configuration
// errors are ours to fix; login-code errors cannot happen here, so anything
// else is reported as unavailable (retryable).
func tokenKindOf(r result) error {
	if !r.Numeric {
		return errUnknown
	}
	switch n := r.N; {
	case n == resultInvalidRequest, // a parameter is missing or malformed
		n == resultUnauthorizedClient, // app_id/app_secret rejected
		n == resultUnsupportedResponseType,
		n == resultUnsupportedGrantType, // grant_type is not client_credentials
		n == gameMissingParams,
		n == gameInvalidSecret:
		return provider.ErrMisconfigured
	case n >= resultServerError && n <= resultServerError+99:
		return provider.ErrUnavailable
	default:
		return errUnknown
	}
}

// tokenOAuthKind maps the OAuth error name of an access_token answer whose
// result is missing or unknown.
func tokenOAuthKind(name string) error {
	if k := oauthKind(name); errors.Is(k, provider.ErrMisconfigured) {
		return k
	}
	return provider.ErrUnavailable
}

// validAccessToken reports whether t can go into a query string or header
// as is: non-empty, bounded, printable and without spaces.
func validAccessToken(t string) bool {
	if t == "" || len(t) > maxAccessToken {
		return false
	}
	return utf8.ValidString(t) && !strings.ContainsFunc(t, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	})
}

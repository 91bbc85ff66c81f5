package douyin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultTokenTTL is the documented lifetime of a client access token (two
// hours). It is used when an answer gives no positive expires_in, and caps
// a longer one.
const DefaultTokenTTL = 2 * time.Hour

// tokenRequest is the JSON body of POST /api/apps/v2/token (platforms.md
// §3.4).
type tokenRequest struct {
	AppID     string `json:"appid"`
	Secret    string `json:"secret"`
	GrantType string `json:"grant_type"`
}

// FetchAccessToken gets a new client access token of the app. Douyin has no
// "force" switch and no stable token: every call issues a new token and cuts
// the previous one's remaining life to five minutes, so force changes
// nothing here and the caller (the token broker) must fetch sparingly.
func (d *douyin) FetchAccessToken(ctx context.Context, _ bool) (provider.AccessToken, error) {
	status, body, err := d.post(ctx, d.tokenURL, tokenRequest{
		AppID:     d.app.AppID,
		Secret:    d.app.Secret,
		GrantType: "client_credential",
	})
	if err != nil {
		return provider.AccessToken{}, err
	}
	t, err := DecodeToken(status, body)
	if err != nil {
		return provider.AccessToken{}, d.redactErr(err)
	}
	return t, nil
}

// tokenData is the data object of a token answer. expires_in is a number in
// the doc; a numeric string is accepted too.
type tokenData struct {
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// DecodeToken turns a token answer into an AccessToken, or a
// *provider.Error, with the same transport rules as Decode:
//
//	{"err_no":0,"err_tips":"success","data":{"access_token":"0801121...","expires_in":7200}}
//	{"err_no":40017,"err_tips":"bad secret","data":{"access_token":"","expires_in":0}}
//
// -1 is ErrUnavailable; 40014 (bad params), 40015 (appid), 40017 (secret)
// and 40020 (grant_type) are ErrMisconfigured; unknown codes are
// ErrUnavailable. A success without an access_token is ErrUnavailable. An
// absent, non-positive or unreadable expires_in means the documented two
// hours, and a longer one is capped to it.
func DecodeToken(status int, body []byte) (provider.AccessToken, error) {
	e, err := decodeEnvelope(status, body)
	if err != nil {
		return provider.AccessToken{}, err
	}
	if e.ErrNo.Failed() {
		return provider.AccessToken{}, e.failure(tokenKinds)
	}
	var data tokenData
	if !e.dataInto(&data) || data.AccessToken == "" {
		return provider.AccessToken{}, provider.Unavailable(platform, "success answer without an access_token")
	}
	return provider.AccessToken{Token: data.AccessToken, ExpiresIn: tokenTTL(data.ExpiresIn)}, nil
}

var tokenKinds = map[int64]error{
	errSystem:       provider.ErrUnavailable,
	errBadParams:    provider.ErrMisconfigured,
	errBadAppID:     provider.ErrMisconfigured,
	errBadSecret:    provider.ErrMisconfigured,
	errBadGrantType: provider.ErrMisconfigured,
}

func tokenTTL(raw json.RawMessage) time.Duration {
	var e errNo // the same number-or-numeric-string reading
	if err := e.UnmarshalJSON(raw); err != nil || !e.Numeric || e.N <= 0 || e.N > int64(DefaultTokenTTL/time.Second) {
		return DefaultTokenTTL
	}
	return time.Duration(e.N) * time.Second
}

package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/mpauth/mpauth/internal/provider"
)

// PhoneNumberPath is phonenumber.getPhoneNumber (platforms.md §1.7):
//
//	POST https://api.weixin.qq.com/wxa/business/getuserphonenumber?access_token=TOKEN
//	{"code":"<code from the getPhoneNumber button>"}
const PhoneNumberPath = "/wxa/business/getuserphonenumber"

const (
	// maxPhoneCode bounds a phone code we forward; real ones are 64 chars.
	maxPhoneCode = 1024
	// maxPhoneField bounds phoneNumber / purePhoneNumber / countryCode.
	maxPhoneField = 32
)

// PhoneNumber turns a phone code (the getPhoneNumber button's e.detail.code,
// not a wx.login code) into the user's verified phone number. It takes the
// app's access token from env.Tokens; when WeChat rejects the token (40001,
// 42001, 40014) it invalidates it and retries once with a fresh one (the
// phone code is not consumed by a call WeChat refused). Errors are
// *provider.Error; they never include the token, the code or the secret.
func (w *wechat) PhoneNumber(ctx context.Context, code string) (*provider.Phone, error) {
	if code == "" || len(code) > maxPhoneCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "empty or oversized phone code"}
	}
	if w.env.Tokens == nil {
		return nil, &provider.Error{Kind: provider.ErrMisconfigured, Platform: platform, Message: "no access-token broker configured (provider.Env.Tokens)"}
	}
	var rejected string
	for attempt := 0; ; attempt++ {
		tok, err := w.env.Tokens.Token(ctx, w.app, w)
		if err != nil {
			return nil, provider.BrokerError(platform, err)
		}
		if tok == "" {
			return nil, provider.Unavailable(platform, "the access-token broker returned an empty token")
		}
		if tok == rejected {
			// The broker handed back the token WeChat just rejected: a
			// second call would fail the same way.
			return nil, &provider.Error{Kind: provider.ErrAccessTokenInvalid, Platform: platform, Message: "the access-token broker returned the rejected token again"}
		}
		phone, err := w.phoneNumber(ctx, tok, code)
		if !errors.Is(err, provider.ErrAccessTokenInvalid) {
			return phone, err
		}
		// Expired or replaced (another instance forced a refresh): tell the
		// broker, so this and every later call gets a fresh token.
		if ierr := w.env.Tokens.Invalidate(ctx, w.app, tok); ierr != nil {
			return nil, provider.BrokerError(platform, ierr)
		}
		if attempt > 0 {
			return nil, err
		}
		rejected = tok
	}
}

// phoneNumber makes one getuserphonenumber call with tok.
func (w *wechat) phoneNumber(ctx context.Context, tok, code string) (*provider.Phone, error) {
	body, err := json.Marshal(struct {
		Code string `json:"code"`
	}{code})
	if err != nil {
		return nil, provider.Unavailable(platform, "encoding the request failed")
	}
	u := w.endpointURL(PhoneNumberPath) + "?" + url.Values{"access_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		// err would quote the URL, which holds the access token: drop it.
		return nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	status, resp, err := provider.Do(ctx, w.client, platform, req)
	if err != nil {
		return nil, err // ErrUnavailable, without the URL
	}
	p, err := DecodePhoneNumber(status, resp, w.app.AppID)
	if err != nil {
		return nil, provider.ScrubError(err, tok, code, w.app.Secret)
	}
	return p, nil
}

// phoneAnswer is the union of getuserphonenumber's success and error bodies.
type phoneAnswer struct {
	ErrCode   errCode         `json:"errcode"`
	ErrMsg    json.RawMessage `json:"errmsg"`
	PhoneInfo *phoneDoc       `json:"phone_info"`
}

// phoneDoc is a phone number as WeChat gives it: phone_info of
// getuserphonenumber and the decrypted legacy getPhoneNumber data.
type phoneDoc struct {
	PhoneNumber     flexString `json:"phoneNumber"`
	PurePhoneNumber flexString `json:"purePhoneNumber"`
	// CountryCode: the doc table says string, the doc example shows the
	// number 86 (UNCONFIRMED which one is live; both accepted).
	CountryCode flexString `json:"countryCode"`
	Watermark   *watermark `json:"watermark"`
}

// watermark says which app WeChat issued the data for.
type watermark struct {
	AppID string `json:"appid"`
	// Timestamp is not checked: the platform sets it and its clock is not
	// ours. Kept raw so any type decodes.
	Timestamp json.RawMessage `json:"timestamp"`
}

// checkWatermark returns ErrWatermark unless wm names appID. An absent
// watermark fails too: WeChat always sends one, and without it nothing says
// the data is for this app.
func checkWatermark(wm *watermark, appID string) error {
	if wm != nil && wm.AppID == appID && appID != "" {
		return nil
	}
	msg := "watermark missing"
	if wm != nil {
		msg = "watermark is for app " + provider.Clean(wm.AppID, 64)
	}
	return &provider.Error{Kind: provider.ErrWatermark, Platform: platform, Message: msg}
}

// phone checks d's fields; bad is the kind to report them with.
func (d *phoneDoc) phone(bad error) (*provider.Phone, error) {
	p := &provider.Phone{Number: string(d.PhoneNumber), PureNumber: string(d.PurePhoneNumber), CountryCode: string(d.CountryCode)}
	if !printable(p.Number, maxPhoneField) {
		return nil, &provider.Error{Kind: bad, Platform: platform, Message: "phoneNumber missing or malformed"}
	}
	for _, f := range []string{p.PureNumber, p.CountryCode} {
		if f != "" && !printable(f, maxPhoneField) {
			return nil, &provider.Error{Kind: bad, Platform: platform, Message: "purePhoneNumber or countryCode malformed"}
		}
	}
	return p, nil
}

// DecodePhoneNumber turns a getuserphonenumber answer into the phone number
// for appID, or a *provider.Error:
//
//   - framing as in Decode (status 200 and a JSON object, else
//     ErrUnavailable); errcode absent or 0 is success ("errcode":0,
//     "errmsg":"ok" in practice); a non-zero errcode is mapped by
//     phoneKindOf (ErrAccessTokenInvalid for 40001/42001/40014);
//   - success needs phone_info with a phoneNumber (a string, or a number:
//     tolerated) else ErrUnavailable; countryCode may be a string or a
//     number;
//   - phone_info.watermark.appid must be appID, else ErrWatermark.
func DecodePhoneNumber(status int, body []byte, appID string) (*provider.Phone, error) {
	var a phoneAnswer
	if err := provider.DecodeAnswer(platform, status, body, &a); err != nil {
		return nil, err
	}
	if a.ErrCode.Failed() {
		return nil, &provider.Error{
			Kind:       phoneKindOf(a.ErrCode),
			Platform:   platform,
			Code:       a.ErrCode.Text,
			Message:    message(a.ErrMsg),
			RetryAfter: retryAfter(a.ErrCode),
			Retryable:  retryable(a.ErrCode),
		}
	}
	if a.PhoneInfo == nil {
		return nil, provider.Unavailable(platform, "success answer without phone_info")
	}
	if err := checkWatermark(a.PhoneInfo.Watermark, appID); err != nil {
		return nil, err
	}
	return a.PhoneInfo.phone(provider.ErrUnavailable)
}

// phoneKindOf maps a non-zero getuserphonenumber errcode to the kind of
// failure.
func phoneKindOf(c errCode) error {
	if !c.Numeric {
		return provider.ErrUnavailable
	}
	switch n := c.N; {
	case n == -1: // system error
		return provider.ErrUnavailable
	case n == 40001, // invalid credential, access_token is invalid or not latest
		n == 42001, // access_token expired
		n == 40014: // invalid access_token
		return provider.ErrAccessTokenInvalid
	case n == 40029: // invalid code: expired, used, or another app's
		return provider.ErrCodeInvalid
	case n == 40163: // code been used (UNCONFIRMED on this endpoint; the doc lists only 40029)
		return provider.ErrCodeUsed
	case n == 45011, // api minute-quota reach limit
		n == 45009: // api freq out of limit
		return provider.ErrRateLimited
	case n == 40013, // invalid appid
		n == 40164,               // caller IP not in the whitelist
		n == 48001,               // api unauthorized (the app may not use the phone API)
		n == 40066,               // invalid url
		n == 43002,               // require POST method
		n == 47001,               // data format error
		n >= 41001 && n <= 41099: // missing parameter (41001 access_token, 41008 code)
		return provider.ErrMisconfigured
	default:
		return provider.ErrUnavailable
	}
}

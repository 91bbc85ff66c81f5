// Package douyin exchanges a Douyin (ByteDance / Toutiao) mini-program login
// code (tt.login) for the user's identity with the v2 code2Session API:
//
//	POST https://developer.toutiao.com/api/apps/v2/jscode2session
//	{"appid":"tt...","secret":"...","code":"...","anonymous_code":"..."}
//
// It also fetches the app's client access token (POST /api/apps/v2/token)
// and decrypts the user data a mini-program receives (AES-128-CBC with the
// session_key, the same scheme as WeChat).
//
// The wire format is described in section 3 of platforms.md. Only v2 is
// spoken: the legacy v1 endpoint (GET /api/apps/jscode2session, flat body
// with errcode/errmsg/error/message) is still served by Douyin but is not
// used here, and its shape is not accepted as an answer of v2. Decode,
// DecodeToken, Decrypt, DecodePhone and DecodeProfile are free of I/O so
// they can be fuzzed and benchmarked.
//
// Douyin has no phone-code API whose endpoint and body are documented
// (platforms.md §3.5: the basic library 3.51 flow is UNCONFIRMED), so the
// provider does not implement provider.PhoneByCode.
package douyin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultBaseURL is Douyin's mini-program server API host; App.Endpoint
// replaces it in tests and against a local fake. (Douyin's own sandbox is
// https://open-sandbox.douyin.com, usable as an endpoint override.)
const DefaultBaseURL = "https://developer.toutiao.com"

// API paths (v2).
const (
	SessionPath = "/api/apps/v2/jscode2session"
	TokenPath   = "/api/apps/v2/token"
)

// GuestNotAllowedMessage is the Message of the ErrGuestNotAllowed error.
const GuestNotAllowedMessage = "enable allow_guests for this app to accept tt.login anonymous codes"

const (
	platform = provider.Douyin
	// maxMessage bounds the platform's err_tips we keep for the log.
	maxMessage = 200
	// maxLogID bounds the log_id we keep for the log (real ones are 34).
	maxLogID = 64
	// maxLoginCode bounds a login or anonymous code we forward; real ones
	// are a few dozen characters.
	maxLoginCode = 1024
)

// Douyin err_no values (platforms.md §3.1 and §3.4; the v1 table is the only
// published list and the v2 token doc uses the same codes).
const (
	errSystem       = -1    // system error: transient
	errBadParams    = 40014 // bad params (a parameter is empty)
	errBadAppID     = 40015 // appid error
	errBadSecret    = 40017 // secret error
	errBadCode      = 40018 // code error: invalid, used or expired
	errBadAnonCode  = 40019 // anonymous code (acode) error
	errBadGrantType = 40020 // grant_type is not client_credential (token API)
)

// Session is a successful code2Session answer. Douyin sends empty strings
// for what does not apply; they come out as empty fields.
type Session struct {
	// OpenID and SessionKey are present when a code was sent.
	OpenID string
	// SessionKey is the base64 of a 16-byte AES key, or empty when Douyin
	// sent none or one we could not use (see Decode).
	SessionKey string
	// UnionID is present when Douyin has one for the user (per developer and
	// host app).
	UnionID string
	// AnonymousOpenID is present when an anonymous code was sent.
	AnonymousOpenID string
}

type douyin struct {
	app        provider.App
	client     *http.Client
	sessionURL string // scheme://host[:port]/api/apps/v2/jscode2session
	tokenURL   string // scheme://host[:port]/api/apps/v2/token
}

var (
	_ provider.Provider          = (*douyin)(nil)
	_ provider.TokenFetcher      = (*douyin)(nil)
	_ provider.UserDataDecrypter = (*douyin)(nil)
)

// New returns the provider of one Douyin mini-program. The value also
// implements provider.TokenFetcher and provider.UserDataDecrypter.
func New(app provider.App, _ provider.Env) (provider.Provider, error) {
	if app.AppID == "" {
		return nil, errors.New("app_id: required (the mini-program AppID, tt...)")
	}
	if app.Secret == "" {
		return nil, errors.New("secret: required (the mini-program App Secret, from developer.open-douyin.com)")
	}
	if err := provider.ValidateEndpoint(app.Endpoint); err != nil {
		return nil, errors.New("endpoint: " + err.Error())
	}
	// ValidateEndpoint allows a trailing "/" but App.URL concatenates.
	a := app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	d := &douyin{
		app:        app,
		client:     provider.NewHTTPClient(app.Timeout),
		sessionURL: a.URL(DefaultBaseURL, SessionPath),
		tokenURL:   a.URL(DefaultBaseURL, TokenPath),
	}
	for _, u := range []string{d.sessionURL, d.tokenURL} {
		if _, err := url.Parse(u); err != nil {
			return nil, errors.New("endpoint: invalid URL")
		}
	}
	return d, nil
}

// sessionRequest is the JSON body of code2Session. Only the codes the
// mini-program sent are included: at least one of them is required, and an
// empty anonymous_code is never needed.
type sessionRequest struct {
	AppID         string `json:"appid"`
	Secret        string `json:"secret"`
	Code          string `json:"code,omitempty"`
	AnonymousCode string `json:"anonymous_code,omitempty"`
}

// Exchange calls code2Session with the login code and/or the anonymous code
// and returns who they belong to. An answer with only an anonymous_openid is
// a guest login: accepted only when the app allows guests. Errors are
// *provider.Error; test their kind with errors.Is.
func (d *douyin) Exchange(ctx context.Context, c provider.Credentials) (*provider.Identity, error) {
	code, anon := c.Code, c.AnonymousCode
	if code == "" && anon == "" {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "no login code or anonymous code"}
	}
	if len(code) > maxLoginCode || len(anon) > maxLoginCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "oversized login code"}
	}
	// An anonymous code alone can only ever give a guest login: refuse it
	// without spending the code (the mini-program may still log the user
	// in properly and send it along for data migration).
	if code == "" && !d.app.AllowGuests {
		return nil, guestNotAllowed()
	}
	status, body, err := d.post(ctx, d.sessionURL, sessionRequest{
		AppID:         d.app.AppID,
		Secret:        d.app.Secret,
		Code:          code,
		AnonymousCode: anon,
	})
	if err != nil {
		return nil, err
	}
	s, err := Decode(status, body)
	if err != nil {
		return nil, d.redactErr(err, code, anon)
	}
	if s.OpenID == "" && !d.app.AllowGuests {
		return nil, guestNotAllowed()
	}
	return &provider.Identity{
		Platform:        platform,
		AppID:           d.app.AppID,
		OpenID:          s.OpenID,
		UnionID:         s.UnionID,
		SessionKey:      s.SessionKey,
		AnonymousOpenID: s.AnonymousOpenID,
	}, nil
}

func guestNotAllowed() error {
	return &provider.Error{Kind: provider.ErrGuestNotAllowed, Platform: platform, Message: GuestNotAllowedMessage}
}

// post sends v as a JSON body and returns the answer.
func (d *douyin) post(ctx context.Context, u string, v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, provider.Unavailable(platform, "encoding the request failed")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	// provider.Do's errors are ErrUnavailable without the URL or body.
	return provider.Do(ctx, d.client, platform, req)
}

// redactErr removes the secret and the codes from a decoded error: Douyin
// does not echo them in err_tips, but a proxy or a fake might.
func (d *douyin) redactErr(err error, codes ...string) error {
	return provider.ScrubError(err, append([]string{d.app.Secret}, codes...)...)
}

// sessionData is the data object of a code2Session answer. dopenid appears
// in real answers (platforms.md §3.1); its meaning is UNCONFIRMED and it is
// ignored.
type sessionData struct {
	SessionKey      string `json:"session_key"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid"`
}

// Decode turns a code2Session answer (HTTP status and body) into a Session,
// or a *provider.Error:
//
//   - any status but 200, an empty or undecodable body, or JSON that is not
//     an object: ErrUnavailable (Douyin answers business errors with 200
//     and JSON, so anything else comes from a proxy or an outage). The
//     Content-Type is ignored.
//   - err_no absent, null, "" or 0 is success; err_no may be a number or a
//     numeric string. A non-zero err_no is mapped by number only (see
//     kindOf); err_tips and log_id are kept, cleaned and truncated, for the
//     log. The data of an error answer (empty strings) is ignored.
//   - a success's data must be an object with an openid or an
//     anonymous_openid; empty strings count as absent. Without either:
//     ErrUnavailable.
//
// Error texts never quote the body: a truncated success still holds the
// session_key.
func Decode(status int, body []byte) (*Session, error) {
	e, err := decodeEnvelope(status, body)
	if err != nil {
		return nil, err
	}
	if e.ErrNo.Failed() {
		return nil, e.failure(sessionKinds)
	}
	var data sessionData
	if !e.dataInto(&data) {
		return nil, provider.Unavailable(platform, "success answer without a data object")
	}
	if data.OpenID == "" && data.AnonymousOpenID == "" {
		return nil, provider.Unavailable(platform, "success answer without openid or anonymous_openid")
	}
	s := &Session{OpenID: data.OpenID, UnionID: data.UnionID, AnonymousOpenID: data.AnonymousOpenID}
	// session_key is only ever used as an AES-128 key. A malformed one can't
	// decrypt anything, so it's dropped and the login still accepted (the
	// openid identifies the user); an empty SessionKey means "none usable,
	// log in again to get one".
	if data.OpenID != "" && validSessionKey(data.SessionKey) {
		s.SessionKey = data.SessionKey
	}
	return s, nil
}

// sessionKinds maps code2Session's err_no to the kind of failure. Douyin
// documents no rate-limit or risk-control code for code2Session, so those
// kinds never come from it; unknown codes are ErrUnavailable.
var sessionKinds = map[int64]error{
	errSystem:      provider.ErrUnavailable,
	errBadParams:   provider.ErrMisconfigured, // we never send an empty parameter
	errBadAppID:    provider.ErrMisconfigured,
	errBadSecret:   provider.ErrMisconfigured,
	errBadCode:     provider.ErrCodeInvalid, // Douyin does not tell reuse from expiry: both are 40018
	errBadAnonCode: provider.ErrCodeInvalid,
	// Not documented for code2Session, but the same table serves the token
	// API: a grant_type complaint is ours to fix.
	errBadGrantType: provider.ErrMisconfigured,
}

// Package kuaishou exchanges a Kuaishou mini-program login code (ks.login)
// for the user's identity with code2session:
//
//	POST https://open.kuaishou.com/oauth2/mp/code2session
//	Content-Type: application/x-www-form-urlencoded
//	app_id=&app_secret=&js_code=
//
// It also fetches the app's access token (oauth2/access_token) and decrypts
// the user data the mini-program sends (AES-128-CBC with the session_key).
// The wire format, including its oddities, is described in section 4 of
// platforms.md; Decode, DecodeAccessToken, DecryptPhone and DecryptProfile
// implement it and are kept free of I/O so they can be fuzzed and
// benchmarked.
package kuaishou

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// DefaultBaseURL is Kuaishou's open-platform host; App.Endpoint replaces it
// in tests and against a local fake.
const DefaultBaseURL = "https://open.kuaishou.com"

// Paths of the calls this provider makes.
const (
	Code2SessionPath = "/oauth2/mp/code2session"
	AccessTokenPath  = "/oauth2/access_token"
)

const (
	platform = provider.Kuaishou
	// maxMessage bounds the platform's error / error_msg we keep for the log.
	maxMessage = 200
	// maxCodeField bounds an OAuth error name we keep as the code.
	maxCodeField = 32
	// maxJSCode bounds the login code we forward; real ones are 64 hex
	// characters.
	maxJSCode = 1024
)

// Result codes. Success is result 1 (not 0). The failures are the Kuaishou
// open-platform OAuth table (platforms.md §4.2: the mp access_token doc
// documents 100200100 and 100200101; the open-platform error table, mirrored
// by several SDKs, the rest). Which of them mp/code2session itself returns
// is UNCONFIRMED.
const (
	ResultOK = 1

	resultInvalidRequest          = 100200100 // invalid_request: missing or malformed parameter
	resultUnauthorizedClient      = 100200101 // unauthorized_client: app_id/app_secret rejected
	resultAccessDenied            = 100200102 // access_denied: request rejected (token / authorization)
	resultUnsupportedResponseType = 100200103 // unsupported_response_type
	resultUnsupportedGrantType    = 100200104 // unsupported_grant_type
	resultInvalidGrant            = 100200105 // invalid_grant: the code is wrong
	resultInvalidScope            = 100200106 // invalid_scope: or the user cancelled the authorization
	resultInvalidOpenID           = 100200107 // invalid_openid
	resultAuthorizationCancelled  = 100200109 // the user cancelled the app's authorization
	resultAuthorizationExpired    = 100200110 // the user's authorization expired
	resultNotAuthorized           = 100200111 // the user never authorized the app
	resultServerError             = 100200500 // server_error: transient (the 1002005xx family)

	// Kuaishou mini-game code2session (another host, same idea) documents
	// its own codes; they are accepted in case the mini-program endpoint
	// shares them (UNCONFIRMED).
	gameMissingParams = 100
	gameInvalidCode   = 240001
	gameInvalidSecret = 240002
)

// Session is a successful code2session answer.
type Session struct {
	OpenID string
	// UnionID is union_id when Kuaishou sent one. Kuaishou documents
	// union_id only for mini-games; for mini-programs it is UNCONFIRMED, so
	// it is taken when present and its absence is normal.
	UnionID string
	// SessionKey is the base64 of a 16-byte AES key, or empty when Kuaishou
	// sent none or one we could not use (see Decode).
	SessionKey string
}

type kuaishou struct {
	app        provider.App
	client     *http.Client
	sessionURL string // scheme://host[:port]/oauth2/mp/code2session
	tokenURL   string // scheme://host[:port]/oauth2/access_token
}

var (
	_ provider.Provider          = (*kuaishou)(nil)
	_ provider.TokenFetcher      = (*kuaishou)(nil)
	_ provider.UserDataDecrypter = (*kuaishou)(nil)
)

// New returns the provider of one Kuaishou mini-program. It also implements
// provider.TokenFetcher and provider.UserDataDecrypter.
func New(app provider.App, _ provider.Env) (provider.Provider, error) {
	if app.AppID == "" {
		return nil, errors.New("app_id: required (the mini-program app_id, ks...)")
	}
	if app.Secret == "" {
		return nil, errors.New("secret: required (the mini-program app_secret, from mp.kuaishou.com)")
	}
	if err := provider.ValidateEndpoint(app.Endpoint); err != nil {
		return nil, errors.New("endpoint: " + err.Error())
	}
	// ValidateEndpoint allows a trailing "/" but App.URL concatenates, which
	// would make the path "//oauth2/...": drop it.
	a := app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	k := &kuaishou{
		app:        app,
		client:     provider.NewHTTPClient(app.Timeout),
		sessionURL: a.URL(DefaultBaseURL, Code2SessionPath),
		tokenURL:   a.URL(DefaultBaseURL, AccessTokenPath),
	}
	for _, u := range []string{k.sessionURL, k.tokenURL} {
		if _, err := url.Parse(u); err != nil {
			return nil, errors.New("endpoint: invalid URL")
		}
	}
	return k, nil
}

// Exchange calls code2session with code and returns who it belongs to.
// Errors are *provider.Error; test their kind with errors.Is.
func (k *kuaishou) Exchange(ctx context.Context, c provider.Credentials) (*provider.Identity, error) {
	code := c.Code
	// Kuaishou would answer 100200100 (a parameter error, which we map to
	// ErrMisconfigured) to an empty js_code; it is the client's fault, so
	// say so without spending a call (the same for absurdly long codes).
	if code == "" || len(code) > maxJSCode {
		return nil, &provider.Error{Kind: provider.ErrCodeInvalid, Platform: platform, Message: "empty or oversized login code"}
	}
	status, body, err := k.post(ctx, k.sessionURL, url.Values{
		"app_id":     {k.app.AppID},
		"app_secret": {k.app.Secret},
		"js_code":    {code},
	})
	if err != nil {
		return nil, err
	}
	s, err := Decode(status, body)
	if err != nil {
		return nil, k.scrub(err, code)
	}
	return &provider.Identity{
		Platform:   platform,
		AppID:      k.app.AppID,
		OpenID:     s.OpenID,
		UnionID:    s.UnionID,
		SessionKey: s.SessionKey,
	}, nil
}

// post sends form as an x-www-form-urlencoded POST body (never in the query
// string, where proxies log it) and returns the status and body.
func (k *kuaishou) post(ctx context.Context, u string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, provider.Unavailable(platform, "building the request failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return provider.Do(ctx, k.client, platform, req) // errors never quote the URL or body
}

// scrub removes the secret and the login code from a decoding error: Kuaishou
// does not echo them, but a proxy or a fake might, and they must never reach
// a log. A numeric Code is Kuaishou's result, never one of ours.
func (k *kuaishou) scrub(err error, code string) error {
	return provider.ScrubError(err, k.app.Secret, code)
}

// answer is the union of code2session's success and error bodies.
type answer struct {
	Result   result          `json:"result"`
	Error    json.RawMessage `json:"error"`
	ErrorMsg json.RawMessage `json:"error_msg"`
	OpenID   string          `json:"open_id"`
	// union_id is the mini-game spelling; unionid is what a few clients
	// expect. Both UNCONFIRMED for mini-programs.
	UnionID    string `json:"union_id"`
	UnionIDAlt string `json:"unionid"`
	SessionKey string `json:"session_key"`
}

// Decode turns a code2session answer (HTTP status and body) into a Session,
// or a *provider.Error:
//
//   - any status but 200, an empty or undecodable body, or JSON that is not
//     an object: ErrUnavailable. The Content-Type is ignored.
//   - result 1 is success; result may be a number or a numeric string.
//   - any other result is mapped by number (see kindOf), falling back to the
//     OAuth error name in "error" for numbers we do not know; error and
//     error_msg are kept, cleaned and truncated, for the log.
//   - no result at all: an error when error/error_msg say so, otherwise a
//     success if open_id is there (tolerated, UNCONFIRMED), otherwise
//     ErrUnavailable.
//   - a success without open_id: ErrUnavailable.
//
// Error texts never quote the body: a truncated success still holds the
// session_key.
func Decode(status int, body []byte) (*Session, error) {
	var a answer
	if err := provider.DecodeAnswer(platform, status, body, &a); err != nil {
		return nil, err
	}
	if err := failure(a.Result, a.Error, a.ErrorMsg, a.OpenID != "", kindOf, oauthKind); err != nil {
		return nil, err
	}
	if a.OpenID == "" {
		return nil, provider.Unavailable(platform, "success answer without open_id")
	}
	s := &Session{OpenID: a.OpenID, UnionID: a.UnionID}
	if s.UnionID == "" {
		s.UnionID = a.UnionIDAlt
	}
	// session_key is only ever used as an AES-128 key for the user's
	// encrypted data. A malformed key can't decrypt anything, so it is
	// dropped and the login still accepted: the open_id identifies the
	// user, and refusing it would lock the user out over a field most
	// logins never use. An empty SessionKey means "none usable; log in
	// again to get one".
	if validSessionKey(a.SessionKey) {
		s.SessionKey = a.SessionKey
	}
	return s, nil
}

// failure returns the error an answer carries, or nil for a success. kind
// maps a result that is not 1; byName maps the OAuth error name when the
// result is missing or kind does not know it (errUnknown).
func failure(r result, errName, errMsg json.RawMessage, hasPayload bool, kind func(result) error, byName func(string) error) error {
	name := message(errName)
	msg := message(errMsg)
	if name != "" && msg != "" {
		msg = name + ": " + msg
	} else if msg == "" {
		msg = name
	}
	msg = provider.Clean(msg, maxMessage)
	if !r.Present {
		switch {
		case name != "" || msg != "":
			return &provider.Error{Kind: byName(name), Platform: platform, Code: provider.Clean(name, maxCodeField), Message: msg}
		case hasPayload:
			// Every documented answer has result; tolerate a success
			// without it rather than lock everyone out.
			return nil
		default:
			return provider.Unavailable(platform, "answer without result")
		}
	}
	if r.Numeric && r.N == ResultOK {
		return nil
	}
	k := kind(r)
	if errors.Is(k, errUnknown) {
		k = byName(name)
	}
	// The 1002005xx family is Kuaishou's transient server error: not
	// acted on.
	retryable := k == provider.ErrUnavailable && r.Numeric && r.N >= resultServerError && r.N <= resultServerError+99
	return &provider.Error{Kind: k, Platform: platform, Code: r.Text, Message: msg, Retryable: retryable}
}

// errUnknown marks a result the table does not know; failure then looks at
// the OAuth error name.
var errUnknown = errors.New("unknown result")

// kindOf maps a code2session result other than 1 to the kind of failure.
func kindOf(r result) error {
	if !r.Numeric {
		return errUnknown
	}
	switch n := r.N; {
	case n >= resultServerError && n <= resultServerError+99: // 1002005xx: internal error, transient
		return provider.ErrUnavailable
	case n == resultInvalidGrant, // the code is wrong: expired, used or another app's
		n == gameInvalidCode:
		// Kuaishou documents no separate "code already used" result, so a
		// reused code is reported as invalid (ErrCodeUsed is never
		// returned; UNCONFIRMED).
		return provider.ErrCodeInvalid
	case n == resultAccessDenied,
		n == resultInvalidScope,
		n == resultInvalidOpenID,
		n == resultAuthorizationCancelled,
		n == resultAuthorizationExpired,
		n == resultNotAuthorized:
		// UNCONFIRMED for code2session: these are about the user's
		// authorization or identity; treated defensively as a bad login
		// code (the user logs in again), not as our misconfiguration.
		return provider.ErrCodeInvalid
	case n == resultInvalidRequest, // a parameter is missing or malformed
		n == resultUnauthorizedClient, // app_id/app_secret rejected
		n == resultUnsupportedResponseType,
		n == resultUnsupportedGrantType,
		n == gameMissingParams,
		n == gameInvalidSecret:
		return provider.ErrMisconfigured
	default:
		// A result we don't know (including 100200108 access token
		// expired, 100200112 and 100200113, which make no sense here) is
		// not the user's fault and not provably our configuration's:
		// report the platform as unavailable (retryable, 5xx-like) and keep
		// the code in the error for the operator.
		return errUnknown
	}
}

// oauthKind maps Kuaishou's OAuth error name ("error": "invalid_grant") of a
// code2session answer whose result is missing or unknown.
func oauthKind(name string) error {
	switch name {
	case "invalid_grant", "access_denied", "invalid_scope", "invalid_openid":
		return provider.ErrCodeInvalid
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "unsupported_grant_type", "invalid_client":
		return provider.ErrMisconfigured
	default: // server_error, temporarily_unavailable, anything new
		return provider.ErrUnavailable
	}
}

// result is result as Kuaishou sends it: a JSON number, or (tolerated) a
// numeric string such as "1". Unlike an errcode, 0 is not success: only 1
// is; Present is false when the field is absent, null or "".
type result = provider.FlexCode

// message returns a text field (normally a string) as text; any other JSON
// is kept as its JSON text.
func message(raw json.RawMessage) string {
	return provider.Message(raw, maxMessage)
}

// validSessionKey reports whether k is 24 base64 chars of a 16-byte key.
func validSessionKey(k string) bool {
	return provider.IsBase64Key(k, 16)
}

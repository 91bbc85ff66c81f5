package sandbox

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/mpauth/mpauth/internal/provider"
)

// The WeChat fake: GET /sns/jscode2session (auth.code2Session), answered as
// the real api.weixin.qq.com does (see platforms.md §1).

var wechat = &platform{
	name: provider.WeChat,
	// wx.login codes are 32 characters, e.g. 0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V.
	newCode: func() string { return randomString(32, alnum) },
	// openids and unionids are "o" + 27 base64url characters; real ones of
	// one app (or one Open Platform account) share their first characters,
	// so the first five come from the app (scope) alone.
	openID: func(appID, user string) string {
		return wechatID(digest("wechat openid app", appID), digest("wechat openid", appID, user))
	},
	unionID: func(scope, user string) string {
		return wechatID(digest("wechat unionid scope", scope), digest("wechat unionid", scope, user))
	},
	// session_key: 16 random bytes (an AES-128 key), 24 base64 characters.
	newSessionKey: func() string { return base64.StdEncoding.EncodeToString(randomBytes(16)) },
	routes: func(s *Sandbox, p *platform, mux *http.ServeMux) {
		// No method in the pattern: the real API answers other methods
		// with a business error, not 405.
		mux.HandleFunc("/sns/jscode2session", func(w http.ResponseWriter, r *http.Request) {
			s.wechatJSCode2Session(w, r, p)
		})
		// The path is case-sensitive; a wrong one (jsCode2Session) gets
		// 40066 invalid url.
		mux.HandleFunc("/sns/", func(w http.ResponseWriter, r *http.Request) {
			writeWeChatError(w, s, wxInvalidURL)
		})
	},
}

func wechatID(prefix, body []byte) string {
	enc := base64.RawURLEncoding
	return "o" + enc.EncodeToString(prefix)[:5] + enc.EncodeToString(body)[:22]
}

// WeChat errcodes and the real errmsg texts (platforms.md §1.3); errmsg
// gets a ", rid: ..." suffix when sent.
const (
	wxSystemError   = -1
	wxInvalidGrant  = 40002
	wxInvalidAppID  = 40013
	wxInvalidCode   = 40029
	wxInvalidURL    = 40066
	wxInvalidSecret = 40125
	wxCodeUsed      = 40163
	wxCodeBlocked   = 40226
	wxAppIDMissing  = 41002
	wxSecretMissing = 41004
	wxCodeMissing   = 41008
	wxMinuteQuota   = 45011
)

var wxMessages = map[int]string{
	wxSystemError:   "system error",
	wxInvalidGrant:  "invalid grant_type",
	wxInvalidAppID:  "invalid appid",
	wxInvalidCode:   "invalid code",
	wxInvalidURL:    "invalid url",
	wxInvalidSecret: "invalid appsecret",
	wxCodeUsed:      "code been used",
	wxCodeBlocked:   "code blocked",
	wxAppIDMissing:  "appid missing",
	wxSecretMissing: "appsecret missing",
	wxCodeMissing:   "missing code",
	wxMinuteQuota:   "api minute-quota reach limit mustslower retry next minute",
}

// wechatSession is a successful answer. Like the real API it has no errcode
// or errmsg at all, and unionid only when the app is bound to an Open
// Platform account (has a union_scope).
type wechatSession struct {
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
}

type wechatError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *Sandbox) wechatJSCode2Session(w http.ResponseWriter, r *http.Request, p *platform) {
	if r.Method != http.MethodGet {
		// A POST carries no query the API reads: "appid missing".
		writeWeChatError(w, s, wxAppIDMissing)
		return
	}
	q := r.URL.Query()
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	switch {
	case appID == "":
		writeWeChatError(w, s, wxAppIDMissing)
		return
	case secret == "":
		writeWeChatError(w, s, wxSecretMissing)
		return
	case code == "":
		writeWeChatError(w, s, wxCodeMissing)
		return
	case q.Get("grant_type") != "authorization_code":
		// UNCONFIRMED: what jscode2session says about a missing or wrong
		// grant_type is not documented. 40002 "invalid grant_type" is
		// WeChat's global code for it (cgi-bin/token answers it), and
		// being strict here catches a provider that forgets the parameter.
		writeWeChatError(w, s, wxInvalidGrant)
		return
	}
	app, ok := s.app(p.name, appID)
	if !ok {
		s.logExchange(appID, "", wxInvalidAppID)
		writeWeChatError(w, s, wxInvalidAppID)
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(app.Secret)) != 1 {
		// UNCONFIRMED: 40125 is what cgi-bin/token answers for a wrong
		// secret; the code jscode2session itself uses is not documented.
		s.logExchange(appID, "", wxInvalidSecret)
		writeWeChatError(w, s, wxInvalidSecret)
		return
	}

	l, err := s.redeem(p, app, code)
	var fe *faultError
	switch {
	case errors.As(err, &fe):
		s.log.Infow("msg", "wechat jscode2session: injected fault", "app_id", appID, "user", fe.user, "fault", fe.kind)
		if s.writeTransportFault(w, r, fe.kind) {
			return
		}
		switch fe.kind {
		case FaultRateLimited:
			writeWeChatError(w, s, wxMinuteQuota)
		case FaultBlocked:
			writeWeChatError(w, s, wxCodeBlocked)
		default: // FaultBusy
			writeWeChatError(w, s, wxSystemError)
		}
		return
	case errors.Is(err, errCodeUsed):
		s.logExchange(appID, l.user, wxCodeUsed)
		writeWeChatError(w, s, wxCodeUsed)
		return
	case err != nil: // errCodeInvalid
		s.logExchange(appID, l.user, wxInvalidCode)
		writeWeChatError(w, s, wxInvalidCode)
		return
	}
	s.logExchange(appID, l.user, 0)
	writeWeChat(w, wechatSession{SessionKey: l.sessionKey, OpenID: l.openID, UnionID: l.unionID})
}

func (s *Sandbox) logExchange(appID, user string, errcode int) {
	s.log.Infow("msg", "wechat jscode2session", "app_id", appID, "user", user, "errcode", errcode)
}

// writeWeChatError answers a business error: HTTP 200 and errmsg with the
// ", rid: ..." suffix real answers carry (callers must match on errcode).
func writeWeChatError(w http.ResponseWriter, s *Sandbox, code int) {
	writeWeChat(w, wechatError{ErrCode: code, ErrMsg: wxMessages[code] + ", rid: " + wechatRID(s)})
}

// writeWeChat sends a body the way jscode2session does: HTTP 200 and, as
// reported from real traffic, Content-Type text/plain (platforms.md §1.2).
// Serving text/plain keeps providers honest: they must decode the body as
// JSON whatever the Content-Type says.
func writeWeChat(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// wechatRID looks like a real rid: the Unix time in hex, then two random
// 32-bit values (e.g. 652d44d0-1d0af18b-5b069232).
func wechatRID(s *Sandbox) string {
	r := randomBytes(8)
	return fmt.Sprintf("%08x-%08x-%08x", uint32(s.now().Unix()), binary.BigEndian.Uint32(r[:4]), binary.BigEndian.Uint32(r[4:]))
}

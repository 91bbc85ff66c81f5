package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mpauth/mpauth/internal/provider/wechat"
)

// The fake WeChat answers code2Session (GET /sns/jscode2session) in WeChat's
// exact wire format, in microseconds, for any code minted by codeOf. A code
// names the user it belongs to, so "returning users" log in with the openid
// they already have; every code is distinct (a per-run counter), as the
// platform's single-use codes are.

const (
	// codeLen is the length of every minted code (WeChat's are 32 chars).
	codeLen = 32
	// newUserBase numbers the users created by "new user" logins, far above
	// any seeded user (seeded users are 0..n-1).
	newUserBase = uint64(1) << 40
)

// codeSeq makes every code of the run distinct.
var codeSeq atomic.Uint64

// codeOf mints a fresh login code of user n: "b", 12 hex digits of n, "z",
// 18 hex digits of a per-run counter — 32 alphanumeric characters.
func codeOf(n uint64) string {
	return fmt.Sprintf("b%012xz%018x", n, codeSeq.Add(1))
}

// userOfCode returns the user a code was minted for.
func userOfCode(code string) (uint64, bool) {
	if len(code) != codeLen || code[0] != 'b' || code[13] != 'z' {
		return 0, false
	}
	n, err := strconv.ParseUint(code[1:13], 16, 64)
	if err != nil {
		return 0, false
	}
	if _, err := strconv.ParseUint(code[14:], 16, 64); err != nil {
		return 0, false
	}
	return n, true
}

// openIDOf is user n's openid in the benchmark app (28 characters, like
// WeChat's).
func openIDOf(n uint64) string { return fmt.Sprintf("obench%022d", n) }

// fakeWeChat is the fake platform server.
type fakeWeChat struct {
	appID, secret string
	srv           *http.Server
	url           string // scheme://host:port, the apps' endpoint
}

// newFakeWeChat returns the handler of the fake for one app.
func newFakeWeChat(appID, secret string) *fakeWeChat {
	return &fakeWeChat{appID: appID, secret: secret}
}

// ServeHTTP answers code2Session as WeChat does: HTTP 200 and a JSON body,
// {"session_key","openid"} on success, {"errcode","errmsg"} otherwise.
func (f *fakeWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wechat.Path {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	switch {
	case q.Get("appid") != f.appID:
		fmt.Fprint(w, `{"errcode":40013,"errmsg":"invalid appid, rid: bench"}`)
		return
	case q.Get("secret") != f.secret:
		fmt.Fprint(w, `{"errcode":40125,"errmsg":"invalid appsecret, rid: bench"}`)
		return
	case q.Get("grant_type") != "authorization_code":
		fmt.Fprint(w, `{"errcode":40002,"errmsg":"invalid grant_type, rid: bench"}`)
		return
	}
	n, ok := userOfCode(q.Get("js_code"))
	if !ok {
		fmt.Fprint(w, `{"errcode":40029,"errmsg":"invalid code, rid: bench"}`)
		return
	}
	fmt.Fprintf(w, `{"session_key":"%s","openid":"%s"}`, newSessionKey(), openIDOf(n))
}

// newSessionKey is a fresh session_key as WeChat issues one per login: 16
// bytes, base64.
func newSessionKey() string {
	var key [16]byte
	for i := 0; i < len(key); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			key[i+j] = byte(v >> (8 * j))
		}
	}
	return base64.StdEncoding.EncodeToString(key[:])
}

// start serves the fake on a loopback port.
func (f *fakeWeChat) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("fake platform: %w", err)
	}
	f.url = "http://" + ln.Addr().String()
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return nil
}

func (f *fakeWeChat) stop() {
	if f.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
	}
}

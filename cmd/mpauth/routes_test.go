package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/server"
)

// TestEveryHTTPRuleIsServed proves the protos are the one source of truth:
// every google.api.http rule of every service in api/ answers through the
// API (a JSON body from our handlers), never the router's 404/405.
func TestEveryHTTPRuleIsServed(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	pathVar := regexp.MustCompile(`\{[^}]+\}`)
	var routes []server.Route
	protoregistry.GlobalFiles.RangeFilesByPackage("mpauth.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			routes = append(routes, server.Routes(fd.Services().Get(i))...)
		}
		return true
	})
	if len(routes) < 4 {
		t.Fatalf("found only %d rules: is the api package registered?", len(routes))
	}
	for _, r := range routes {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			var body io.Reader
			if r.Body != "" {
				body = strings.NewReader("{}")
			}
			req, _ := http.NewRequest(r.Method, in.httpURL+pathVar.ReplaceAllString(r.Path, "x"), body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s %s is not served: %d %q", r.Method, r.Path, resp.StatusCode, raw)
			}
			if resp.StatusCode != 200 && out["reason"] == "" {
				t.Fatalf("%s %s is not served: %d %q", r.Method, r.Path, resp.StatusCode, raw)
			}
		})
	}
}

// With body "*" every field comes from the body (google.api.http; kratos's
// generated handlers do the same): a query string cannot change what the
// body says.
func TestBodyStarRulesTakeNothingFromTheQueryString(t *testing.T) {
	in := start(t, testConfig(t, "sqlite"))
	code := in.mintCode(t, appA, "query-user")
	status, _, out := in.call(t, "POST", "/v1/auth/login?platform=alipay&app_id=nope&code=spent", "",
		map[string]string{"platform": "wechat", "app_id": appA, "code": code})
	if status != 200 || out["user_id"] == "" {
		t.Fatalf("login with a query string: %d %v; want the body's login to succeed", status, out)
	}
}

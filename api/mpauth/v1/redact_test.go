package v1

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// sensitiveFields must never reach a log line in clear.
var sensitiveFields = map[protoreflect.Name]bool{
	"code": true, "anonymous_code": true, "refresh_token": true, "token": true,
	"encrypted_data": true, "sign": true, "phone": true,
}

// TestRequestsWithSecretsRedact: every request message of the API that
// carries a secret has a Redact method (kratos's logging middleware logs
// requests through it), and Redact hides the value.
func TestRequestsWithSecretsRedact(t *testing.T) {
	checked := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("mpauth.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			methods := fd.Services().Get(i).Methods()
			for j := 0; j < methods.Len(); j++ {
				in := methods.Get(j).Input()
				mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName())
				if err != nil {
					continue // well-known types (Empty)
				}
				msg := mt.New()
				var secret []protoreflect.FieldDescriptor
				for k := 0; k < in.Fields().Len(); k++ {
					if f := in.Fields().Get(k); sensitiveFields[f.Name()] && f.Kind() == protoreflect.StringKind {
						secret = append(secret, f)
						msg.Set(f, protoreflect.ValueOfString("SECRET-"+string(f.Name())+"-13812345678"))
					}
				}
				if len(secret) == 0 {
					continue
				}
				checked++
				r, ok := msg.Interface().(interface{ Redact() string })
				if !ok {
					t.Errorf("%s carries %v but has no Redact method", in.FullName(), secret[0].Name())
					continue
				}
				out := r.Redact()
				if strings.Contains(out, "SECRET-") || strings.Contains(out, "13812345678") {
					t.Errorf("%s.Redact() = %q shows a secret", in.FullName(), out)
				}
			}
		}
		return true
	})
	if checked < 5 {
		t.Fatalf("only %d requests with secrets found: is the registry populated?", checked)
	}
}

// TestLoginRedactQuotesAsFmt: the login's log line quotes platform and app
// id exactly as %q does, whatever they hold, and never shows the codes.
func TestLoginRedactQuotesAsFmt(t *testing.T) {
	for _, tc := range []struct{ name, platform, appID string }{
		{"plain", "wechat", "wx1234567890abcdef"},
		{"empty", "", ""},
		{"quotes and newline", `we"chat`, "wx\n1"},
		{"not UTF-8", "\xff\xfe", "wx\x00"},
		{"longer than the buffer", strings.Repeat("p", 200), strings.Repeat("a", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &LoginRequest{Platform: tc.platform, AppId: tc.appID, Code: "SECRET-code", AnonymousCode: "SECRET-anon"}
			want := fmt.Sprintf("platform:%q app_id:%q code:<redacted> anonymous_code:<redacted>", tc.platform, tc.appID)
			if got := req.Redact(); got != want {
				t.Errorf("Redact() = %q, want %q", got, want)
			}
		})
	}
}

func BenchmarkLoginRedact(b *testing.B) {
	req := &LoginRequest{Platform: "wechat", AppId: "wx1234567890abcdef", Code: "0a1b2c3d"}
	b.ReportAllocs()
	for b.Loop() {
		_ = req.Redact()
	}
}

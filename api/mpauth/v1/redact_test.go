package v1

import (
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

package biz_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/provider"
)

// The code record's key must not change between versions: during a rolling
// upgrade, instances of both share the records, and a retry that reaches
// the other version must find its code's record.
func TestCodeHashIsSHA256OfTheNULEndedFieldsInHex(t *testing.T) {
	long := strings.Repeat("c", 300) // longer than codeHash's stack buffer
	for _, tc := range []struct {
		name          string
		platform, app string
		cred          provider.Credentials
	}{
		{"code", "wechat", "wx0123456789abcdef", provider.Credentials{Code: "0a3Xs8000VL9bS1KfG200vJ5Nj1Xs80V"}},
		{"anonymous code", "douyin", "tt07e3715e98c9aac0", provider.Credentials{AnonymousCode: "anon-1"}},
		{"both", "douyin", "tt07e3715e98c9aac0", provider.Credentials{Code: "c", AnonymousCode: "a"}},
		{"longer than the buffer", "alipay", "2021000000000001", provider.Credentials{Code: long}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := sha256.Sum256([]byte(tc.platform + "\x00" + tc.app + "\x00" + tc.cred.Code + "\x00" + tc.cred.AnonymousCode + "\x00"))
			if got, want := biz.CodeHash(tc.platform, tc.app, tc.cred), hex.EncodeToString(sum[:]); got != want {
				t.Fatalf("codeHash = %s, want %s", got, want)
			}
		})
	}
	// The NUL ends each field: moving a character across fields changes the key.
	if biz.CodeHash("wechat", "wxa", provider.Credentials{Code: "bc"}) == biz.CodeHash("wechat", "wxab", provider.Credentials{Code: "c"}) {
		t.Fatal("codeHash does not separate its fields")
	}
}

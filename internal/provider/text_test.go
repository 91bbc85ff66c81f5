package provider_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

func TestCleanMakesOneSafeLogLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain text is kept", "invalid code, rid: 6512", 200, "invalid code, rid: 6512"},
		{"empty stays empty", "", 10, ""},
		{"newlines and tabs become spaces", "line1\nline2\r\tx", 200, "line1 line2  x"},
		{"other control characters become spaces", "a\x00b\x1bc\u0085d", 200, "a b c d"},
		{"invalid UTF-8 becomes U+FFFD", "bad \xff\xfe byte", 200, "bad \uFFFD byte"},
		{"cut at max runes, then an ellipsis", "abcdef", 3, "abc..."},
		{"exactly max runes is not cut", "abc", 3, "abc"},
		{"runes are counted, not bytes", "系统繁忙请稍后", 4, "系统繁忙..."},
		{"max 0 keeps nothing but the ellipsis", "abc", 0, "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.Clean(tt.in, tt.max); got != tt.want {
				t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestRedactReplacesSecretsOfUsefulLength(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"every occurrence of a secret", "secret " + secret + " again " + secret, []string{secret}, "secret [redacted] again [redacted]"},
		{"several secrets", "code=abcdef123 secret=" + secret, []string{secret, "abcdef123"}, "code=[redacted] secret=[redacted]"},
		{"no secret in the text", "invalid code", []string{secret}, "invalid code"},
		{"a one-character code cannot garble the message", "invalid code 40029", []string{"4"}, "invalid code 40029"},
		{"five bytes are too short", "xx abcde xx", []string{"abcde"}, "xx abcde xx"},
		{"six bytes are long enough", "xx abcdef xx", []string{"abcdef"}, "xx [redacted] xx"},
		{"an empty secret is ignored", "text", []string{""}, "text"},
		{"no secrets at all", "text", nil, "text"},
		{"a secret cut short by Clean", "echo " + secret[:20] + "...", []string{secret}, "echo [redacted]..."},
		{"a cut start shorter than six bytes stays", "echo " + secret[:5] + "...", []string{secret}, "echo " + secret[:5] + "..."},
		{"a cut text not ending in the secret", "echo " + secret[:20] + " more...", []string{secret}, "echo " + secret[:20] + " more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.Redact(tt.in, tt.secrets...); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubErrorKeepsSecretsOutOfPlatformErrors(t *testing.T) {
	const secret, code = "app-secret-0123456789", "login-code-abcdef"
	tests := []struct {
		name        string
		err         *provider.Error
		wantCode    string
		wantMessage string
	}{
		{
			name:        "secret and code in the message",
			err:         &provider.Error{Kind: provider.ErrCodeInvalid, Code: "40029", Message: "bad code " + code + " for secret " + secret},
			wantCode:    "40029",
			wantMessage: "bad code [redacted] for secret [redacted]",
		},
		{
			name:        "a non-numeric code is redacted too",
			err:         &provider.Error{Kind: provider.ErrUnavailable, Code: "echo:" + secret},
			wantCode:    "echo:[redacted]",
			wantMessage: "",
		},
		{
			// A platform's numeric code is never a secret; a secret that
			// happens to be digits must not eat it.
			name:        "an integer code is left alone",
			err:         &provider.Error{Kind: provider.ErrUnavailable, Code: "-100200500", Message: "x"},
			wantCode:    "-100200500",
			wantMessage: "x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("exchange: %w", tt.err)
			got := provider.ScrubError(wrapped, secret, code, "100200500")
			if got != wrapped {
				t.Fatalf("ScrubError returned %v, want the error it was given", got)
			}
			if tt.err.Code != tt.wantCode || tt.err.Message != tt.wantMessage {
				t.Errorf("Code, Message = %q, %q; want %q, %q", tt.err.Code, tt.err.Message, tt.wantCode, tt.wantMessage)
			}
		})
	}
	t.Run("a secret in a non-numeric code cut by FlexCode", func(t *testing.T) {
		const long = "0123456789abcdef0123456789abcdef" // longer than MaxCodeText allows after "zz"
		var c provider.FlexCode
		if err := json.Unmarshal([]byte(`"zz`+long+`"`), &c); err != nil {
			t.Fatal(err)
		}
		pe := &provider.Error{Kind: provider.ErrUnavailable, Code: c.Text}
		provider.ScrubError(pe, long)
		if strings.Contains(pe.Code, long[:provider.MinRedact]) {
			t.Errorf("Code = %q still holds the start of the secret", pe.Code)
		}
	})
	t.Run("other errors and nil pass through", func(t *testing.T) {
		plain := errors.New("dial failed " + secret)
		if got := provider.ScrubError(plain, secret); got != plain || got.Error() != "dial failed "+secret {
			t.Errorf("ScrubError(plain) = %v", got)
		}
		if got := provider.ScrubError(nil, secret); got != nil {
			t.Errorf("ScrubError(nil) = %v, want nil", got)
		}
	})
}

func TestMessageReadsErrmsgOfAnyType(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		max  int
		want string
		text string // JSONText, before cleaning
	}{
		{name: "a string", raw: `"invalid code, rid: 1"`, max: 200, want: "invalid code, rid: 1", text: "invalid code, rid: 1"},
		{name: "escapes are decoded", raw: `"a\u0041\n\"b\""`, max: 200, want: `aA "b"`, text: "aA\n\"b\""},
		{name: "absent", raw: ``, max: 200, want: "", text: ""},
		{name: "null", raw: `null`, max: 200, want: "", text: ""},
		{name: "a number keeps its JSON text", raw: `40029`, max: 200, want: "40029", text: "40029"},
		{name: "an object keeps its JSON text", raw: `{"zh":"系统繁忙"}`, max: 200, want: `{"zh":"系统繁忙"}`, text: `{"zh":"系统繁忙"}`},
		{name: "cut to max runes", raw: `"abcdefgh"`, max: 5, want: "abcde...", text: "abcdefgh"},
		{name: "surrounding spaces are kept", raw: `" x "`, max: 200, want: " x ", text: " x "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := json.RawMessage(tt.raw)
			if got := provider.Message(raw, tt.max); got != tt.want {
				t.Errorf("Message(%s) = %q, want %q", tt.raw, got, tt.want)
			}
			if got := provider.JSONText(raw); got != tt.text {
				t.Errorf("JSONText(%s) = %q, want %q", tt.raw, got, tt.text)
			}
		})
	}
}

func TestParseFlexIntAcceptsIntegersWrittenAnyWay(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"40029", 40029, true},
		{"-1", -1, true},
		{"0", 0, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"40029.0", 40029, true},
		{"4.0029e4", 40029, true},
		{"1.002005e8", 100200500, true},
		{"-1.0", -1, true},
		{"9007199254740992", 9007199254740992, true},   // 2^53 as an integer
		{"9007199254740992.0", 9007199254740992, true}, // 2^53 as a float: still exact
		{"9007199254740994.0", 0, false},               // beyond 2^53: not exact
		{"1e300", 0, false},                            // far beyond int64
		{"40029.5", 0, false},                          // not an integer
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"", 0, false},
		{" 1", 0, false}, // callers trim
		{"abc", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := provider.ParseFlexInt(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseFlexInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFlexCodeReadsPlatformCodes(t *testing.T) {
	tests := []struct {
		name   string
		json   string // the value of "code"; "" leaves it absent
		want   provider.FlexCode
		failed bool
	}{
		{name: "absent", json: ``, want: provider.FlexCode{}},
		{name: "null", json: `null`, want: provider.FlexCode{}},
		{name: "empty string", json: `""`, want: provider.FlexCode{}},
		{name: "blank string", json: `"  "`, want: provider.FlexCode{}},
		{name: "zero is a present success", json: `0`, want: provider.FlexCode{Text: "0", Numeric: true, Present: true}},
		{name: "zero as a string", json: `"0"`, want: provider.FlexCode{Text: "0", Numeric: true, Present: true}},
		{name: "a number", json: `40029`, want: provider.FlexCode{Text: "40029", N: 40029, Numeric: true, Present: true}, failed: true},
		{name: "a negative number", json: `-1`, want: provider.FlexCode{Text: "-1", N: -1, Numeric: true, Present: true}, failed: true},
		{name: "a numeric string with spaces", json: `" 40163 "`, want: provider.FlexCode{Text: "40163", N: 40163, Numeric: true, Present: true}, failed: true},
		{name: "a float", json: `40029.0`, want: provider.FlexCode{Text: "40029", N: 40029, Numeric: true, Present: true}, failed: true},
		{name: "an exponent", json: `1.002005e8`, want: provider.FlexCode{Text: "100200500", N: 100200500, Numeric: true, Present: true}, failed: true},
		{name: "one (Kuaishou's success) is a failure by the errcode convention", json: `1`, want: provider.FlexCode{Text: "1", N: 1, Numeric: true, Present: true}, failed: true},
		{name: "a word", json: `"busy"`, want: provider.FlexCode{Text: "busy", Present: true}, failed: true},
		{name: "true", json: `true`, want: provider.FlexCode{Text: "true", Present: true}, failed: true},
		{name: "an object", json: `{"a":1}`, want: provider.FlexCode{Text: `{"a":1}`, Present: true}, failed: true},
		{name: "a fraction", json: `1.5`, want: provider.FlexCode{Text: "1.5", Present: true}, failed: true},
		{name: "a long word is cut", json: `"` + strings.Repeat("x", 40) + `"`, want: provider.FlexCode{Text: strings.Repeat("x", provider.MaxCodeText) + "...", Present: true}, failed: true},
		{name: "control characters are cleaned", json: `"a\nb"`, want: provider.FlexCode{Text: "a b", Present: true}, failed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{}`
			if tt.json != "" {
				body = `{"code":` + tt.json + `}`
			}
			var v struct {
				Code provider.FlexCode `json:"code"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("Unmarshal(%s): %v", body, err)
			}
			if v.Code != tt.want {
				t.Errorf("FlexCode of %s = %+v, want %+v", body, v.Code, tt.want)
			}
			if got := v.Code.Failed(); got != tt.failed {
				t.Errorf("Failed() = %v, want %v", got, tt.failed)
			}
		})
	}
	t.Run("a reused value is reset", func(t *testing.T) {
		c := provider.FlexCode{Text: "40029", N: 40029, Numeric: true, Present: true}
		if err := c.UnmarshalJSON([]byte(`null`)); err != nil || c != (provider.FlexCode{}) {
			t.Errorf("after null: %+v, %v", c, err)
		}
	})
	t.Run("an invalid JSON string fails", func(t *testing.T) {
		var c provider.FlexCode
		if err := c.UnmarshalJSON([]byte(`"\x"`)); err == nil {
			t.Errorf("UnmarshalJSON of a bad string = nil error (%+v)", c)
		}
	})
}

func TestBase64KeyChecksTheExactShape(t *testing.T) {
	key16 := []byte("0123456789abcdef")
	key24 := []byte("0123456789abcdef01234567")
	tests := []struct {
		name string
		in   string
		size int
		want []byte // nil: refused
	}{
		{"a 16-byte key", "MDEyMzQ1Njc4OWFiY2RlZg==", 16, key16},
		{"a 24-byte key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", 24, key24},
		{"the official WeChat vector key", "tiihtNczf5v6AKRyjwEUhQ==", 16, []byte{0xb6, 0x28, 0xa1, 0xb4, 0xd7, 0x33, 0x7f, 0x9b, 0xfa, 0x00, 0xa4, 0x72, 0x8f, 0x01, 0x14, 0x85}},
		{"unpadded", "MDEyMzQ1Njc4OWFiY2RlZg", 16, nil},
		{"URL-safe characters are refused", "tiihtNczf5v6AKRyjwEU-_==", 16, nil},
		{"a 24-byte key where 16 are wanted", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", 16, nil},
		{"a 16-byte key where 24 are wanted", "MDEyMzQ1Njc4OWFiY2RlZg==", 24, nil},
		{"24 characters of 17 bytes", "MDEyMzQ1Njc4OWFiY2RlZjA=", 16, nil},
		{"24 characters with a line break", "MDEyMzQ1Njc4OWFiY2Rl\nZg=", 16, nil},
		{"not base64", "!!!!!!!!!!!!!!!!!!!!!!!!", 16, nil},
		{"non-ASCII", "MDEyMzQ1Njc4OWFiY2Rl\xffZg=", 16, nil},
		{"empty", "", 16, nil},
		{"size 0", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := provider.DecodeBase64Key(tt.in, tt.size)
			if ok != (tt.want != nil) || string(got) != string(tt.want) {
				t.Errorf("DecodeBase64Key(%q, %d) = %x, %v; want %x", tt.in, tt.size, got, ok, tt.want)
			}
			if is := provider.IsBase64Key(tt.in, tt.size); is != ok {
				t.Errorf("IsBase64Key(%q, %d) = %v, DecodeBase64Key says %v", tt.in, tt.size, is, ok)
			}
		})
	}
	t.Run("a 32-byte key", func(t *testing.T) {
		const k = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		if b, ok := provider.DecodeBase64Key(k, 32); !ok || string(b) != "0123456789abcdef0123456789abcdef" || !provider.IsBase64Key(k, 32) {
			t.Errorf("DecodeBase64Key(32 bytes) = %q, %v", b, ok)
		}
	})
	t.Run("IsBase64Key does not allocate for session keys", func(t *testing.T) {
		for _, c := range []struct {
			k    string
			size int
		}{{"tiihtNczf5v6AKRyjwEUhQ==", 16}, {"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", 24}} {
			if n := testing.AllocsPerRun(100, func() { provider.IsBase64Key(c.k, c.size) }); n != 0 {
				t.Errorf("IsBase64Key(%d bytes) allocates %v times", c.size, n)
			}
		}
	})
}

func TestIsJSONObject(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"phoneNumber":"13800138000"}`, true},
		{`{}`, true},
		{"  {\"a\":1}\n\t", true},
		{`[1,2]`, false},
		{`"{}"`, false},
		{`null`, false},
		{`{"a":1`, false},
		{`{"a":1}x`, false},
		{`{"a":1}{}`, false},
		{"\x10\x10\x10", false},
		{``, false},
		{`   `, false},
	}
	for _, tt := range tests {
		if got := provider.IsJSONObject([]byte(tt.in)); got != tt.want {
			t.Errorf("IsJSONObject(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzFlexCode checks that any JSON value decodes without panicking into a
// code whose Text is bounded, clean and consistent with N.
func FuzzFlexCode(f *testing.F) {
	for _, s := range []string{`0`, `40029`, `"40029"`, `4.0029e4`, `"abc"`, `null`, `true`, `{"a":[1]}`, `"\u0000"`, `1e400`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c provider.FlexCode
		if err := c.UnmarshalJSON([]byte(s)); err != nil {
			return
		}
		if !c.Present && c != (provider.FlexCode{}) {
			t.Fatalf("absent code with fields: %+v", c)
		}
		if c.Numeric && c.Text != fmt.Sprint(c.N) {
			t.Fatalf("Text %q does not match N %d", c.Text, c.N)
		}
		if !utf8.ValidString(c.Text) || utf8.RuneCountInString(c.Text) > provider.MaxCodeText+3 || strings.ContainsAny(c.Text, "\n\r\x00") {
			t.Fatalf("Text %q is not a short clean line", c.Text)
		}
		if c.Failed() != (c.Present && (!c.Numeric || c.N != 0)) {
			t.Fatalf("Failed() = %v for %+v", c.Failed(), c)
		}
	})
}

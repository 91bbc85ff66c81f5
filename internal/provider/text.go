package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// This file holds the text handling every platform's decoder needs: making
// a platform's words safe for a log line, keeping secrets out of them, and
// reading the loosely typed fields platforms send (codes that are numbers
// or strings, messages that are strings or anything else). What a code
// means stays with each platform's provider.

// MinRedact is the shortest value Redact replaces. Real codes, secrets and
// tokens are far longer; a client sending code "4" must not be able to
// garble every message ("[redacted]0029").
const MinRedact = 6

// Redacted is what Redact puts in place of a secret.
const Redacted = "[redacted]"

// MaxCodeText bounds the Text of a non-numeric FlexCode, which only ever
// goes into a log line.
const MaxCodeText = 32

// Clean makes s safe for a one-line log: valid UTF-8 (invalid bytes become
// U+FFFD), control characters (newlines included) turned into spaces, and
// at most max runes, after which it is cut and "..." appended.
func Clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if n == max {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Redact replaces every occurrence of each secret in s with "[redacted]",
// in the order given. Secrets shorter than MinRedact bytes are left alone.
// A secret that Clean cut short (s ends in "...") is redacted too: the
// decoders cut platform text for the log before the provider, which knows
// the secrets, scrubs it.
func Redact(s string, secrets ...string) string {
	for _, x := range secrets {
		if len(x) < MinRedact {
			continue
		}
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, Redacted)
		}
		if head, ok := strings.CutSuffix(s, "..."); ok {
			// The longest start of x (MinRedact bytes or more) that head ends with.
			for n := len(x) - 1; n >= MinRedact; n-- {
				if strings.HasSuffix(head, x[:n]) {
					s = head[:len(head)-n] + Redacted + "..."
					break
				}
			}
		}
	}
	return s
}

// ScrubError removes the secrets (see Redact) from err's Message and Code
// when err is (or wraps) an *Error, should a platform, a proxy or a fake
// echo one. A Code that is an integer is a platform's own numeric code and
// is left alone. err is returned, changed in place.
func ScrubError(err error, secrets ...string) error {
	var pe *Error
	if errors.As(err, &pe) {
		if _, perr := strconv.ParseInt(pe.Code, 10, 64); perr != nil {
			pe.Code = Redact(pe.Code, secrets...)
		}
		pe.Message = Redact(pe.Message, secrets...)
	}
	return err
}

// JSONText returns a JSON value that should be a string (an errmsg, an
// err_tips) as text: a string's value, or, for anything else (a number, an
// object...), its JSON text as sent. Absent (empty) and null are "". The
// result is not cleaned; see Message.
func JSONText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	return s
}

// Message returns a platform's message field (see JSONText) cleaned and
// cut to max runes for the log (see Clean).
func Message(raw json.RawMessage, max int) string {
	return Clean(JSONText(raw), max)
}

// ParseFlexInt reads a platform's integer as text: a decimal integer
// ("40029", "-1"), or one written as a float with no fractional part
// ("40029.0", "4.0029e4") within ±2^53. Anything else is false.
func ParseFlexInt(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// FlexCode is a platform's numeric status field (WeChat errcode, Douyin
// err_no, Kuaishou result, Baidu errno / error_code) as it really arrives:
// a JSON number, a numeric string ("40029", with spaces around it), or an
// integer written as a float (see ParseFlexInt). Its zero value is an
// absent field; null, "" and "  " decode to the zero value too.
type FlexCode struct {
	// Text is the code's canonical text: the decimal integer, or, when it
	// is not a number (true, {}, "abc"), the value cleaned and cut to
	// MaxCodeText runes. "" when absent.
	Text string
	// N is the value when Numeric.
	N int64
	// Numeric is true when the field is an integer (see ParseFlexInt).
	Numeric bool
	// Present is true when the field holds anything but null or "".
	Present bool
}

// UnmarshalJSON reads any JSON value; only an invalid JSON string fails.
func (c *FlexCode) UnmarshalJSON(b []byte) error {
	*c = FlexCode{}
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if n, ok := ParseFlexInt(s); ok {
		*c = FlexCode{Text: strconv.FormatInt(n, 10), N: n, Numeric: true, Present: true}
		return nil
	}
	// Not a number: a failure nobody can classify; keep it for the log.
	*c = FlexCode{Text: Clean(s, MaxCodeText), Present: true}
	return nil
}

// Failed reports a failure under the errcode convention of WeChat, Douyin
// and Baidu, where absent, null, "" and 0 all mean success: c is present
// and not the number 0.
func (c FlexCode) Failed() bool {
	return c.Present && !(c.Numeric && c.N == 0)
}

// DecodeBase64Key decodes s, which must be exactly the padded standard
// base64 of size bytes (24 characters for a 16-byte AES-128 key, 32 for a
// 24-byte AES-192 key). Anything else (other lengths, unpadded or URL-safe
// base64, line breaks) is false.
func DecodeBase64Key(s string, size int) ([]byte, bool) {
	if size <= 0 || len(s) != base64.StdEncoding.EncodedLen(size) {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, []byte(s))
	if err != nil || n != size {
		return nil, false
	}
	return b[:size], true
}

// IsBase64Key reports whether DecodeBase64Key(s, size) succeeds, without
// allocating for keys of up to 32 bytes. Decoders use it to check the shape
// of a session_key before storing it.
func IsBase64Key(s string, size int) bool {
	if size <= 0 || len(s) != base64.StdEncoding.EncodedLen(size) {
		return false
	}
	var buf [36]byte
	dst := buf[:]
	if n := base64.StdEncoding.DecodedLen(len(s)); n > len(buf) {
		dst = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(dst, []byte(s))
	return err == nil && n == size
}

// IsJSONObject reports whether b, white space around it aside, is one
// valid JSON object: what decrypted user data must be (garbage from a
// wrong key never is).
func IsJSONObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

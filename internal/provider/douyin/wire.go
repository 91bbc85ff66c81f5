package douyin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// envelope is the v2 answer of every Douyin server API:
//
//	{"err_no":0,"err_tips":"success","log_id":"...","data":{...}}
//
// log_id is in the current code2Session doc but not in every real answer.
type envelope struct {
	ErrNo   errNo           `json:"err_no"`
	ErrTips json.RawMessage `json:"err_tips"`
	LogID   json.RawMessage `json:"log_id"`
	Data    json.RawMessage `json:"data"`
}

// decodeEnvelope checks the transport-level shape of an answer.
func decodeEnvelope(status int, body []byte) (*envelope, error) {
	if status != http.StatusOK {
		return nil, provider.BadStatus(platform, status)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, provider.Unavailable(platform, "empty answer")
	}
	// json.Unmarshal accepts "null" into a struct; only an object is an
	// answer.
	if trimmed[0] != '{' {
		return nil, provider.Unavailable(platform, "answer is not a JSON object (%d bytes)", len(body))
	}
	var e envelope
	if err := json.Unmarshal(trimmed, &e); err != nil {
		return nil, provider.Unavailable(platform, "undecodable answer (%d bytes)", len(body))
	}
	return &e, nil
}

// failure is the error of a non-zero err_no, of the kind kinds gives (an
// unknown or non-numeric err_no is ErrUnavailable: not the user's fault and
// not provably our configuration's, so retryable, 5xx-like).
func (e *envelope) failure(kinds map[int64]error) *provider.Error {
	kind := provider.ErrUnavailable
	if e.ErrNo.numeric {
		if k, ok := kinds[e.ErrNo.n]; ok {
			kind = k
		}
	}
	msg := text(e.ErrTips, maxMessage)
	if id := text(e.LogID, maxLogID); id != "" {
		if msg != "" {
			msg += ", "
		}
		msg += "log_id: " + id
	}
	// -1 "system error" is Douyin's transient answer: not acted on.
	retryable := kind == provider.ErrUnavailable && e.ErrNo.numeric && e.ErrNo.n == errSystem
	return &provider.Error{Kind: kind, Platform: platform, Code: e.ErrNo.code, Message: msg, Retryable: retryable}
}

// dataInto decodes the data object into v; false when it is absent, not an
// object or does not fit v.
func (e *envelope) dataInto(v any) bool {
	d := bytes.TrimSpace(e.Data)
	if len(d) == 0 || d[0] != '{' {
		return false
	}
	return json.Unmarshal(d, v) == nil
}

// errNo is err_no as Douyin sends it: a JSON number (int64 per the doc), or
// a numeric string, which some gateways and SDK examples show. code is its
// canonical text, empty for success (absent, null, "" or 0).
type errNo struct {
	code    string
	n       int64
	numeric bool
}

func (c *errNo) UnmarshalJSON(b []byte) error {
	*c = errNo{}
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
	if n, ok := parseInt(s); ok {
		if n != 0 {
			*c = errNo{code: strconv.FormatInt(n, 10), n: n, numeric: true}
		}
		return nil
	}
	// Not a number (true, {}, "abc"...): a failure we can't classify.
	*c = errNo{code: clean(s, maxCodeField)}
	return nil
}

// parseInt reads an integer, also written as a float ("40018.0", "4.0018e4").
func parseInt(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func isInteger(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// text returns a JSON value (normally a string) cleaned and truncated; a
// non-string keeps its JSON text.
func text(raw json.RawMessage, max int) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	return clean(s, max)
}

// clean makes s safe for a one-line log: valid UTF-8, no control characters,
// at most max runes (then "...").
func clean(s string, max int) string {
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

// redact replaces every occurrence of the given secrets in s. Very short
// values are skipped so that a client sending code "4" can't garble every
// message.
func redact(s string, secrets ...string) string {
	for _, x := range secrets {
		if len(x) >= minRedact && strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}

// validSessionKey reports whether k is 24 base64 chars of a 16-byte key.
func validSessionKey(k string) bool {
	if len(k) != 24 || !utf8.ValidString(k) {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(k))
	return err == nil && n == 16
}

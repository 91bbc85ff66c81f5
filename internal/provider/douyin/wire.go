package douyin

import (
	"bytes"
	"encoding/json"

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
	var e envelope
	if err := provider.DecodeAnswer(platform, status, body, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// failure is the error of a non-zero err_no, of the kind kinds gives (an
// unknown or non-numeric err_no is ErrUnavailable: not the user's fault and
// not provably our configuration's, so retryable, 5xx-like).
func (e *envelope) failure(kinds map[int64]error) *provider.Error {
	kind := provider.ErrUnavailable
	if e.ErrNo.Numeric {
		if k, ok := kinds[e.ErrNo.N]; ok {
			kind = k
		}
	}
	msg := provider.Message(e.ErrTips, maxMessage)
	if id := provider.Message(e.LogID, maxLogID); id != "" {
		if msg != "" {
			msg += ", "
		}
		msg += "log_id: " + id
	}
	// -1 "system error" is Douyin's transient answer: not acted on.
	retryable := kind == provider.ErrUnavailable && e.ErrNo.Numeric && e.ErrNo.N == errSystem
	return &provider.Error{Kind: kind, Platform: platform, Code: e.ErrNo.Text, Message: msg, Retryable: retryable}
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
// a numeric string, which some gateways and SDK examples show. Absent, null,
// "" and 0 are success (see provider.FlexCode.Failed).
type errNo = provider.FlexCode

// validSessionKey reports whether k is 24 base64 chars of a 16-byte key.
func validSessionKey(k string) bool {
	return provider.IsBase64Key(k, 16)
}

package provider

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// DecodeAnswer checks the framing of a platform answer that must be one
// JSON object with HTTP 200, and decodes it into v. Failures are
// ErrUnavailable of platform (the platforms answer their business errors
// with 200 and JSON, so anything else comes from a proxy or an outage):
//
//   - any status but 200: BadStatus (retryable for a 5xx but 504);
//   - an empty or blank body: "empty answer";
//   - anything but a JSON object ("null", an array, HTML): json.Unmarshal
//     would accept "null" into a struct without complaint;
//   - JSON that does not decode into v.
//
// The Content-Type is ignored (WeChat has been seen serving JSON as
// text/plain), and error texts never quote the body: a truncated success
// may hold a session_key.
func DecodeAnswer(platform string, status int, body []byte, v any) error {
	if status != http.StatusOK {
		return BadStatus(platform, status)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return Unavailable(platform, "empty answer")
	}
	if trimmed[0] != '{' {
		return Unavailable(platform, "answer is not a JSON object (%d bytes)", len(body))
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return Unavailable(platform, "undecodable answer (%d bytes)", len(body))
	}
	return nil
}

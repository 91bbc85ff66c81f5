package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mpauth/mpauth/internal/provider"
)

// What the provider offers besides Exchange.
var (
	_ provider.TokenFetcher      = (*wechat)(nil)
	_ provider.PhoneByCode       = (*wechat)(nil)
	_ provider.UserDataDecrypter = (*wechat)(nil)
)

// endpointURL returns the URL of path on WeChat's API host, or on the app's
// endpoint override (a trailing "/" dropped, as in New).
func (w *wechat) endpointURL(path string) string {
	a := w.app
	a.Endpoint = strings.TrimSuffix(a.Endpoint, "/")
	return a.URL(DefaultBaseURL, path)
}

// flexString is a JSON string that WeChat (or its docs) sometimes sends as a
// number: countryCode is documented as a string but shown as 86. A number
// keeps its JSON text; null is "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*f = flexString(n.String())
	return nil
}

// printable reports whether s is 1..max runes of valid UTF-8 without control
// characters: what a phone number or a country code must look like before
// it is stored.
func printable(s string, max int) bool {
	if s == "" || len(s) > 4*max || !utf8.ValidString(s) {
		return false
	}
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
		n++
	}
	return n <= max
}

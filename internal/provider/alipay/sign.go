package alipay

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"sort"
	"strings"

	"github.com/mpauth/mpauth/internal/provider"
)

// This file holds Alipay's RSA2 scheme (platforms.md §2.3 and §2.7): key
// parsing, the request string-to-sign, and locating the signed node of an
// answer.

// ParsePrivateKey reads the app private key (应用私钥) as Alipay's tools and
// console hand it out: a PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"
// PEM block, or the bare base64 body of either without PEM armour. Errors
// never quote the input.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := keyDER(s, "RSA PRIVATE KEY", "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not a PKCS#1 or PKCS#8 RSA private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key (Alipay RSA2 needs RSA)")
	}
	return rk, nil
}

// ParsePublicKey reads the Alipay public key (支付宝公钥): a PKIX "PUBLIC
// KEY" PEM block or its bare base64 body (as the console shows it). A
// PKCS#1 "RSA PUBLIC KEY" is accepted too. Certificates (certificate mode)
// are not: only public-key mode is supported.
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	if strings.Contains(s, "-----BEGIN CERTIFICATE-----") {
		return nil, errors.New("is a certificate: only public-key mode is supported, give the Alipay public key (支付宝公钥), not alipayCertPublicKey_RSA2.crt")
	}
	der, err := keyDER(s, "PUBLIC KEY", "RSA PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA public key")
		}
		return rk, nil
	}
	k, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, errors.New("not a PKIX or PKCS#1 RSA public key")
	}
	return k, nil
}

// keyDER returns the DER bytes of a PEM block of one of the given types, or
// of bare base64 (whitespace ignored).
func keyDER(s string, types ...string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		// YAML or environment variables sometimes carry "\n" literally.
		if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
			s = strings.ReplaceAll(s, `\n`, "\n")
		}
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, errors.New("malformed PEM")
		}
		for _, t := range types {
			if b.Type == t {
				return b.Bytes, nil
			}
		}
		return nil, errors.New("PEM block of type " + quoteType(b.Type) + ", want " + strings.Join(types, " or "))
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errors.New("neither PEM nor base64")
	}
	return der, nil
}

// quoteType keeps a PEM type printable and short: it comes from config, but
// an error must never echo key material.
func quoteType(t string) string {
	if len(t) > 40 {
		t = t[:40]
	}
	return `"` + provider.Clean(t, 40) + `"`
}

// SignContent is the string-to-sign of a gateway request (§2.3): every
// parameter but sign whose value is non-empty (sign_type included), sorted
// by key in byte order, joined as k=v with & using the raw, unescaped
// values. Only a parameter's first value counts.
func SignContent(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if k == "sign" || k == "" || len(v) == 0 || v[0] == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k][0])
	}
	return b.String()
}

// Sign returns the RSA2 signature of params: SHA256withRSA (PKCS#1 v1.5) of
// SignContent, base64 with the standard alphabet.
func Sign(params url.Values, key *rsa.PrivateKey) (string, error) {
	return signBytes([]byte(SignContent(params)), key)
}

func signBytes(content []byte, key *rsa.PrivateKey) (string, error) {
	h := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verify checks an RSA2 signature (base64) of content.
func verify(pub *rsa.PublicKey, content []byte, sign string) bool {
	if pub == nil || sign == "" || len(sign) > 4096 {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(sign)
	if err != nil {
		return false
	}
	h := sha256.Sum256(content)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
}

// verifyNode checks the signature of an answer's node. The signature covers
// the node's raw bytes (§2.7); like the Java SDK it retries once with "\/"
// unescaped to "/", for gateways that signed the text before escaping it.
// Both texts decode to the same JSON, which is what we read.
func verifyNode(pub *rsa.PublicKey, content []byte, sign string) bool {
	if verify(pub, content, sign) {
		return true
	}
	if bytes.Contains(content, []byte(`\/`)) {
		return verify(pub, bytes.ReplaceAll(content, []byte(`\/`), []byte(`/`)), sign)
	}
	return false
}

// SignedNode is what a gateway answer's signature covers: the raw bytes of
// one top-level node's value (§2.7), as sent.
type SignedNode struct {
	// Name is the node found: one of the names asked for.
	Name string
	// Content is the node's value exactly as it appears in the body, from
	// its opening brace to the matching closing one.
	Content []byte
	// Sign is the top-level "sign" string; HasSign says whether the body
	// had a non-empty one.
	Sign    string
	HasSign bool
	// CertSN is the top-level "alipay_cert_sn" (certificate mode only).
	CertSN string
}

// Errors of ExtractNode.
var (
	errNotObject = errors.New("answer is not a JSON object")
	errNoNode    = errors.New("answer has none of the expected nodes")
	errDuplicate = errors.New("answer repeats a top-level key")
	errNodeType  = errors.New("node is not a JSON object")
	errSignType  = errors.New("sign is not a string")
)

// ExtractNode finds the first of names (in order of preference) among the
// top-level keys of the JSON object body and returns its raw value with the
// answer's sign. It scans the body itself, string-, escape- and
// bracket-aware, so the bytes returned are exactly those Alipay signed;
// JSON is never re-serialised. A body that is not a single valid JSON
// object, a node that is not an object, or a repeated node or sign key is
// an error (a repeated key could make us verify one value and read
// another).
func ExtractNode(body []byte, names ...string) (SignedNode, error) {
	if !json.Valid(body) {
		return SignedNode{}, errNotObject
	}
	var (
		out      SignedNode
		rank     = len(names) // rank of the node kept; len(names) = none
		seen     = make(map[string]bool, 4)
		interest = func(k string) bool {
			if k == "sign" || k == "alipay_cert_sn" {
				return true
			}
			for _, n := range names {
				if k == n {
					return true
				}
			}
			return false
		}
	)
	err := scanObject(body, func(key string, value []byte) error {
		if !interest(key) {
			return nil
		}
		if seen[key] {
			return errDuplicate
		}
		seen[key] = true
		switch key {
		case "sign":
			switch value[0] {
			case 'n': // null: no signature
				return nil
			case '"':
				var s string
				if err := json.Unmarshal(value, &s); err != nil {
					return errSignType
				}
				out.Sign, out.HasSign = s, s != ""
				return nil
			default:
				return errSignType
			}
		case "alipay_cert_sn":
			var s string
			if json.Unmarshal(value, &s) == nil {
				out.CertSN = s
			}
			return nil
		}
		for i, n := range names {
			if key == n && i < rank {
				rank, out.Name = i, n
				out.Content = value
			}
		}
		return nil
	})
	if err != nil {
		return SignedNode{}, err
	}
	if rank == len(names) {
		return SignedNode{}, errNoNode
	}
	if out.Content[0] != '{' {
		return SignedNode{}, errNodeType
	}
	return out, nil
}

// scanObject calls f with each top-level key (decoded) and the raw bytes of
// its value, in order. body must be a JSON object (the caller checked it is
// valid JSON; the scanner still fails safely on anything else).
func scanObject(body []byte, f func(key string, value []byte) error) error {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return errNotObject
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		if skipSpace(body, i+1) != len(body) {
			return errNotObject
		}
		return nil
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return errNotObject
		}
		kEnd, ok := scanString(body, i)
		if !ok {
			return errNotObject
		}
		key, ok := decodeKey(body[i:kEnd])
		if !ok {
			return errNotObject
		}
		i = skipSpace(body, kEnd)
		if i >= len(body) || body[i] != ':' {
			return errNotObject
		}
		vStart := skipSpace(body, i+1)
		vEnd, ok := scanValue(body, vStart)
		if !ok {
			return errNotObject
		}
		if err := f(key, body[vStart:vEnd]); err != nil {
			return err
		}
		i = skipSpace(body, vEnd)
		if i >= len(body) {
			return errNotObject
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			if skipSpace(body, i+1) != len(body) {
				return errNotObject
			}
			return nil
		default:
			return errNotObject
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the closing quote of the string
// starting at b[i] == '"', skipping escaped characters.
func scanString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++ // the escaped byte (a \uXXXX's hex digits need no care)
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// scanValue returns the index just past the JSON value starting at b[i].
// Objects and arrays are matched bracket by bracket, with strings (and the
// brackets or quotes escaped inside them) skipped whole.
func scanValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		var stack []byte
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				stack = append(stack, c)
			case '}', ']':
				if len(stack) == 0 || (c == '}') != (stack[len(stack)-1] == '{') {
					return 0, false
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default: // number, true, false, null
		j := i
		for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
			j++
		}
		return j, j > i
	}
}

// decodeKey decodes a quoted key; keys without escapes (all real ones) are
// taken as they are.
func decodeKey(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

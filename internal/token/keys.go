package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is one signing key of the token issuer.
//
// ID is the JWS "kid"; it is published in the JWKS and put into the header of
// every token signed with this key. Signer holds the private key: an
// ed25519.PrivateKey (alg EdDSA) or an *ecdsa.PrivateKey on P-256 (alg ES256).
// Other crypto.Signer implementations (HSM, KMS) are accepted as long as
// their Public() is an Ed25519 or P-256 key.
//
// Key's String and GoString methods print only the kid and algorithm, so a
// Key (or a Config holding it) can be logged without leaking the private key.
type Key struct {
	ID     string
	Signer crypto.Signer
}

// Alg returns the JWS algorithm of the key ("EdDSA" or "ES256"), or "" if
// the key is missing or of an unsupported type.
func (k Key) Alg() string {
	if k.Signer == nil {
		return ""
	}
	alg, _, err := publicKeyAlg(k.Signer.Public())
	if err != nil {
		return ""
	}
	return string(alg)
}

// String implements fmt.Stringer without revealing private key material.
func (k Key) String() string {
	alg := k.Alg()
	if alg == "" {
		alg = "unsupported"
	}
	return fmt.Sprintf("token.Key{ID: %q, Alg: %s}", k.ID, alg)
}

// GoString implements fmt.GoStringer (%#v) without revealing private key
// material.
func (k Key) GoString() string { return k.String() }

// publicKeyAlg maps a public key to its JWS algorithm and returns the key in
// the canonical form used for verification.
func publicKeyAlg(pub crypto.PublicKey) (jose.SignatureAlgorithm, crypto.PublicKey, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", nil, errors.New("malformed Ed25519 public key")
		}
		return jose.EdDSA, p, nil
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return "", nil, errors.New("malformed EC public key")
		}
		if p.Curve != elliptic.P256() {
			return "", nil, fmt.Errorf("EC curve %s is not supported (only P-256/ES256)", p.Curve.Params().Name)
		}
		return jose.ES256, p, nil
	case *rsa.PublicKey:
		return "", nil, errors.New("RSA keys are not supported (use Ed25519 or EC P-256)")
	case nil:
		return "", nil, errors.New("missing public key")
	default:
		return "", nil, fmt.Errorf("key type %T is not supported (use Ed25519 or EC P-256)", pub)
	}
}

// ParsePrivateKeyPEM parses a PEM encoded private key:
//
//   - "PRIVATE KEY" (PKCS#8) holding an Ed25519 key (alg EdDSA) or an EC
//     P-256 key (alg ES256);
//   - "EC PRIVATE KEY" (SEC1) holding an EC P-256 key (alg ES256). A leading
//     "EC PARAMETERS" block, as written by `openssl ecparam -genkey`, is
//     skipped.
//
// Everything else (RSA, other curves, X25519, encrypted keys, public keys,
// certificates, garbage) is rejected with an error naming the problem.
//
// If kid is empty, the RFC 7638 JWK thumbprint (SHA-256, base64url) of the
// public key is used as the key ID.
func ParsePrivateKeyPEM(kid string, pemBytes []byte) (Key, error) {
	var block *pem.Block
	rest := pemBytes
	for {
		block, rest = pem.Decode(rest)
		if block == nil {
			return Key{}, errors.New("token: parse private key: no PEM block found")
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return Key{}, errors.New("token: parse private key: encrypted PEM keys are not supported")
	}

	var (
		priv any
		err  error
	)
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("token: parse private key: invalid PKCS#8 key: %w", err)
		}
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return Key{}, fmt.Errorf("token: parse private key: invalid SEC1 EC key: %w", err)
		}
	case "RSA PRIVATE KEY":
		return Key{}, errors.New("token: parse private key: RSA keys are not supported (use Ed25519 or EC P-256)")
	case "ENCRYPTED PRIVATE KEY":
		return Key{}, errors.New("token: parse private key: encrypted PKCS#8 keys are not supported")
	default:
		return Key{}, fmt.Errorf("token: parse private key: unsupported PEM block type %q (want \"PRIVATE KEY\" or \"EC PRIVATE KEY\")", block.Type)
	}

	var signer crypto.Signer
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		signer = k
	case *ecdsa.PrivateKey:
		signer = k
	case *rsa.PrivateKey:
		return Key{}, errors.New("token: parse private key: RSA keys are not supported (use Ed25519 or EC P-256)")
	default:
		return Key{}, fmt.Errorf("token: parse private key: key type %T is not supported (use Ed25519 or EC P-256)", priv)
	}
	if _, _, err := publicKeyAlg(signer.Public()); err != nil {
		return Key{}, fmt.Errorf("token: parse private key: %w", err)
	}

	if kid == "" {
		kid, err = thumbprint(signer.Public())
		if err != nil {
			return Key{}, fmt.Errorf("token: parse private key: %w", err)
		}
	}
	return Key{ID: kid, Signer: signer}, nil
}

// thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of a public key.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("compute key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// devKeyMu serialises LoadOrCreateDevKey within one process.
var devKeyMu sync.Mutex

// LoadOrCreateDevKey is for DEVELOPMENT ONLY: production keys must come from
// configuration/secret storage and be parsed with ParsePrivateKeyPEM.
//
// If path exists it is parsed with ParsePrivateKeyPEM. Otherwise a new
// Ed25519 key is generated and written there as PKCS#8 PEM with mode 0600
// (parent directories are created with mode 0700). The kid is the RFC 7638
// thumbprint of the public key, so it is stable across restarts.
//
// The file is written to a temporary file and then hard-linked into place,
// so a concurrent caller (even in another process) never sees a partially
// written key, and if two callers race, both end up with the key that won.
func LoadOrCreateDevKey(path string) (Key, error) {
	devKeyMu.Lock()
	defer devKeyMu.Unlock()

	if k, err := readKeyFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("token: create dev key directory: %w", err)
	}

	pemBytes, err := NewEd25519PEM()
	if err != nil {
		return Key{}, fmt.Errorf("token: dev key: %w", err)
	}

	// os.CreateTemp creates the file with mode 0600.
	tmp, err := os.CreateTemp(dir, ".devkey-*.tmp")
	if err != nil {
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			return readKeyFile(path)
		}
		return Key{}, fmt.Errorf("token: write dev key: %w", err)
	}
	return ParsePrivateKeyPEM("", pemBytes)
}

// NewEd25519PEM generates an Ed25519 signing key as a PKCS#8 PEM block (what
// auth.keys[].private_key takes).
func NewEd25519PEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode Ed25519 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func readKeyFile(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("token: read key file: %w", err)
	}
	k, err := ParsePrivateKeyPEM("", data)
	if err != nil {
		return Key{}, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

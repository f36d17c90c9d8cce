// Package keys provides the API keys of `llmfence guard`: generating them,
// reading them from requests, storing only their hashes, and authenticating
// presented keys against a store.KeyStore.
//
// # Key format
//
// A key reads lf_<id>_<secret>: the prefix "lf_", an 8-character base62 ID
// and a 43-character base62 secret, all from crypto/rand. The secret alone
// carries 43·log2(62) ≈ 256 bits. The ID is not secret: it names the key in
// logs and in the store, and is how a presented key is looked up. It stays
// the same when the key is rotated, so usage history continues.
//
// # Storage and comparison
//
// The store keeps only SHA-256(full key). Because every key is 256 bits of
// randomness, a plain hash is enough: nobody can guess or brute-force a
// preimage, so there is no need for a slow password hash, and a server
// pepper (HMAC) would only add a second secret whose loss locks out every
// key. A presented key is hashed and compared with the stored hash by
// crypto/subtle.ConstantTimeCompare; an unknown ID is compared against a
// dummy hash, so both refusals take the same path.
//
// # Freshness
//
// [Manager.Authenticate] caches what it read from the store for at most
// [Options.CacheTTL] (2 seconds by default; negative turns the cache off).
// Expiry is checked against the clock on every call, cached or not, so an
// expired key is refused at the instant it expires. A revocation or rotation
// made through the same Manager takes effect at once; one made by another
// process (`llmfence keys revoke` while the gateway runs) within CacheTTL.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// Key format constants.
const (
	// Prefix starts every key.
	Prefix = "lf_"
	// IDLen is the length of the non-secret ID.
	IDLen = 8
	// SecretLen is the length of the secret part.
	SecretLen = 43
	// Len is the length of a whole key.
	Len = len(Prefix) + IDLen + 1 + SecretLen
)

// SecretBits is the entropy of a key's secret part in bits.
var SecretBits = float64(SecretLen) * math.Log2(float64(len(alphabet)))

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Generate makes a new key from crypto/rand and returns it with its ID and
// hash.
func Generate() (key, id string, hash []byte, err error) {
	return generate(rand.Reader)
}

func generate(r io.Reader) (key, id string, hash []byte, err error) {
	id, err = randomBase62(r, IDLen)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate API key: %w", err)
	}
	return newSecret(r, id)
}

// newSecret makes a key with the given ID and a fresh secret.
func newSecret(r io.Reader, id string) (key, _ string, hash []byte, err error) {
	secret, err := randomBase62(r, SecretLen)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate API key: %w", err)
	}
	key = Prefix + id + "_" + secret
	return key, id, Hash(key), nil
}

// randomBase62 draws n characters uniformly from the base62 alphabet by
// rejection sampling: bytes of 248 and above (248 = 4·62) are discarded so
// that every character is equally likely.
func randomBase62(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// Hash is what the store keeps of a key: SHA-256 of the whole key string.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Parse checks a presented key's format and returns its ID. It never
// returns the secret, and its errors never repeat the key.
func Parse(key string) (id string, err error) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", fmt.Errorf("%w: it does not start with %q", ErrMalformed, Prefix)
	}
	if len(key) != Len || rest[IDLen] != '_' {
		return "", fmt.Errorf("%w: wrong length or layout (want %s<%d characters>_<%d characters>)", ErrMalformed, Prefix, IDLen, SecretLen)
	}
	id, secret := rest[:IDLen], rest[IDLen+1:]
	if !isBase62(id) || !isBase62(secret) {
		return "", fmt.Errorf("%w: only letters and digits may follow %q", ErrMalformed, Prefix)
	}
	return id, nil
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// FromRequest returns the key a request presents: the token of an
// "Authorization: Bearer" header (scheme in any case), else the value of
// X-API-Key; "" when it presents none. Surrounding spaces are removed.
func FromRequest(r *http.Request) string {
	for _, v := range r.Header.Values("Authorization") {
		scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if t := strings.TrimSpace(token); t != "" {
				return t
			}
		}
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// authError is a reason to refuse a presented key. Every one matches
// ErrUnauthenticated with errors.Is.
type authError string

func (e authError) Error() string { return string(e) }

func (e authError) Is(target error) bool { return target == ErrUnauthenticated }

// ErrUnauthenticated matches every refusal of a presented key (answer 401).
// Other errors from Authenticate mean the store could not be read (503).
var ErrUnauthenticated = errors.New("not authenticated")

// Why a presented key is refused.
var (
	ErrNoKey     error = authError("no API key presented (send Authorization: Bearer <key> or X-API-Key)")
	ErrMalformed error = authError("not an llmfence API key")
	// ErrUnknownKey: no key has that ID, or the secret does not match.
	ErrUnknownKey error = authError("unknown API key")
	ErrRevoked    error = authError("API key revoked")
	ErrExpired    error = authError("API key expired")
)

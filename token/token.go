// Package token makes and checks the secrets of the patient portal: link and session tokens
// (256 bits, base64url) and six-digit one-time codes. Only keyed hashes of them are ever
// stored, so someone who can write the database can neither plant a token of their choosing
// nor try every code against a stolen hash.
package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math/big"
)

// Size is the number of random bytes in a token: 256 bits.
const Size = 32

// CodeDigits is the number of digits in a one-time code.
const CodeDigits = 6

var codeSpace = big.NewInt(1_000_000) // 10^CodeDigits

// New returns a fresh token: Size bytes from crypto/rand, base64url without padding
// (43 characters of A-Z a-z 0-9 - _).
func New() string {
	b := make([]byte, Size)
	// crypto/rand.Read never returns an error on supported platforms (and crashes the
	// program rather than return weak randomness).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hasher hashes tokens and codes with a key kept outside the database (HMAC-SHA256).
type Hasher struct{ key []byte }

// HashKeyFromSecret derives the hashing key from a configured secret
// (network.privacy.identity_key, which never rotates, so rotating the storage key signs
// nobody out). The label keeps it independent of every other key derived from that secret.
func HashKeyFromSecret(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("careline token hash v1"))
	return m.Sum(nil)
}

// NewHasher returns a Hasher with key, which must be at least 32 bytes.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("token: the hashing key must be at least 32 bytes, not %d", len(key))
	}
	return &Hasher{key: bytes.Clone(key)}, nil
}

// Hash returns HMAC-SHA256 over purpose and the parts, each length-prefixed, so a link hash
// is never a valid session hash and no two inputs collide by concatenation.
func (h *Hasher) Hash(purpose string, parts ...string) []byte {
	m := hmac.New(sha256.New, h.key)
	for _, p := range append([]string{purpose}, parts...) {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Equal reports whether a and b are equal, in time that does not depend on their contents.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// NewCode returns a one-time code of CodeDigits decimal digits, uniformly distributed
// (crypto/rand.Int rejects out-of-range samples, so there is no modulo bias).
func NewCode() string {
	n, err := rand.Int(rand.Reader, codeSpace)
	if err != nil {
		panic(fmt.Errorf("token: reading random bytes: %w", err))
	}
	return fmt.Sprintf("%0*d", CodeDigits, n.Int64())
}

// Package token makes and checks the secrets of the patient portal: link and session tokens
// (256 bits, base64url) and six-digit one-time codes. Only hashes of them are ever stored.
package token

import (
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

// Hash returns the SHA-256 hash of s. Tokens carry 256 bits of entropy, so a plain
// hash is enough to keep a database dump from being replayed.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
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

package token

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewLengthAndAlphabet(t *testing.T) {
	for range 1000 {
		tok := New()
		if len(tok) != 43 {
			t.Fatalf("len(New()) = %d, want 43", len(tok))
		}
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("New() = %q has characters outside base64url", tok)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != Size {
			t.Fatalf("New() = %q does not decode to %d bytes (%v)", tok, Size, err)
		}
	}
}

func TestNewUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		tok := New()
		if seen[tok] {
			t.Fatalf("New() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestNewBitsVary(t *testing.T) {
	// Every bit position must take both values across a few hundred tokens: catches
	// constant bytes, truncated reads and zero padding.
	var or, and [Size]byte
	for i := range and {
		and[i] = 0xff
	}
	for range 256 {
		raw, _ := base64.RawURLEncoding.DecodeString(New())
		for i, b := range raw {
			or[i] |= b
			and[i] &= b
		}
	}
	for i := range or {
		if or[i] != 0xff || and[i] != 0 {
			t.Fatalf("byte %d of tokens does not vary: or=%08b and=%08b", i, or[i], and[i])
		}
	}
}

func testHasher(t *testing.T, secret string) *Hasher {
	t.Helper()
	h, err := NewHasher(HashKeyFromSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHash(t *testing.T) {
	h := testHasher(t, "a test identity key that is long enough to use")
	a, b := h.Hash("link", "one"), h.Hash("link", "two")
	if len(a) != 32 {
		t.Fatalf("len(Hash) = %d, want 32", len(a))
	}
	if bytes.Equal(a, b) {
		t.Fatal("different inputs hash the same")
	}
	if !bytes.Equal(a, h.Hash("link", "one")) {
		t.Fatal("Hash is not deterministic")
	}
	if bytes.Contains(a, []byte("one")) {
		t.Fatal("hash contains its input")
	}
	// Keyed: the unkeyed SHA-256 someone with database access could compute is not it, and
	// another key gives another hash.
	if sum := sha256.Sum256([]byte("one")); bytes.Equal(a, sum[:]) {
		t.Fatal("Hash is a plain SHA-256")
	}
	if bytes.Equal(a, testHasher(t, "another identity key that is long enough to use").Hash("link", "one")) {
		t.Fatal("the key does not change the hash")
	}
	// Purposes and parts are separated.
	if bytes.Equal(a, h.Hash("session", "one")) || bytes.Equal(h.Hash("code", "ab", "c"), h.Hash("code", "a", "bc")) {
		t.Fatal("purpose or part boundaries do not change the hash")
	}
	if _, err := NewHasher(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

func TestEqual(t *testing.T) {
	h := testHasher(t, "a test identity key that is long enough to use")
	a := h.Hash("t", "x")
	if !Equal(a, h.Hash("t", "x")) {
		t.Fatal("Equal(h, h) = false")
	}
	if Equal(a, h.Hash("t", "y")) {
		t.Fatal("Equal of different hashes = true")
	}
	if Equal(a, a[:31]) || Equal(a, nil) || Equal(nil, a) {
		t.Fatal("Equal of different lengths = true")
	}
	c := bytes.Clone(a)
	c[31] ^= 1
	if Equal(a, c) {
		t.Fatal("Equal ignores the last bit")
	}
}

func TestNewCodeFormat(t *testing.T) {
	for range 10000 {
		c := NewCode()
		if len(c) != CodeDigits {
			t.Fatalf("NewCode() = %q, want %d digits", c, CodeDigits)
		}
		for _, r := range c {
			if r < '0' || r > '9' {
				t.Fatalf("NewCode() = %q has a non-digit", c)
			}
		}
	}
}

func TestNewCodeDistribution(t *testing.T) {
	// Each digit position should be roughly uniform. With 20000 codes each digit
	// appears ~2000 times per position; a chi-squared statistic over 9 degrees of
	// freedom above 40 happens by chance with probability < 1e-5.
	const n = 20000
	var counts [CodeDigits][10]int
	leading := 0
	for range n {
		c := NewCode()
		if c[0] == '0' {
			leading++
		}
		for i := range CodeDigits {
			counts[i][c[i]-'0']++
		}
	}
	for i := range CodeDigits {
		chi := 0.0
		for _, k := range counts[i] {
			d := float64(k) - n/10.0
			chi += d * d / (n / 10.0)
		}
		if chi > 40 {
			t.Errorf("digit %d looks biased: counts %v (chi² = %.1f)", i, counts[i], chi)
		}
	}
	if leading == 0 {
		t.Error("no code starts with 0: leading zeros are lost")
	}
}

func TestNewCodeVaries(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		seen[NewCode()] = true
	}
	// 1000 draws from 10^6 values: expect about 0.5 collisions.
	if len(seen) < 990 {
		t.Fatalf("only %d distinct codes in 1000", len(seen))
	}
}

package atrest

import (
	"bytes"
	"errors"
	"testing"
)

func testKeyring(t *testing.T, active string, ids ...string) *Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for i, id := range ids {
		keys[id] = bytes.Repeat([]byte{byte(i + 1)}, KeySize)
	}
	kr, err := NewKeyring(active, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpen(t *testing.T) {
	kr := testKeyring(t, "k1", "k1")
	sealed := kr.SealString("blood test results are normal", "message:1")
	if bytes.Contains(sealed, []byte("blood")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := kr.OpenString(sealed, "message:1")
	if err != nil || got != "blood test results are normal" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if bytes.Equal(sealed, kr.SealString("blood test results are normal", "message:1")) {
		t.Fatal("two seals of the same value are identical: nonce reuse")
	}
}

func TestOpenRefusesOtherContext(t *testing.T) {
	kr := testKeyring(t, "k1", "k1")
	sealed := kr.SealString("x", "message:1")
	if _, err := kr.Open(sealed, "message:2"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("moved value opened: %v", err)
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	kr := testKeyring(t, "k1", "k1")
	sealed := kr.SealString("hello", "c")
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := kr.Open(bad, "c"); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for n := 0; n < len(sealed); n++ {
		if _, err := kr.Open(sealed[:n], "c"); err == nil {
			t.Fatalf("truncation to %d bytes went unnoticed", n)
		}
	}
}

func TestRotation(t *testing.T) {
	old := testKeyring(t, "k1", "k1")
	sealed := old.SealString("hello", "c")
	rotated := testKeyring(t, "k2", "k1", "k2")
	if got, err := rotated.OpenString(sealed, "c"); err != nil || got != "hello" {
		t.Fatalf("old value not readable after rotation: %q %v", got, err)
	}
	fresh := rotated.SealString("hello", "c")
	if _, err := old.Open(fresh, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}
}

func TestKeyValidation(t *testing.T) {
	if _, err := NewKeyring("k1", map[string][]byte{"k1": make([]byte, 16)}); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := NewKeyring("k2", map[string][]byte{"k1": make([]byte, KeySize)}); err == nil {
		t.Fatal("missing active key accepted")
	}
	if _, err := ParseKey("not base64!"); err == nil {
		t.Fatal("bad key text accepted")
	}
	key, err := ParseKey(NewKey())
	if err != nil || len(key) != KeySize {
		t.Fatalf("NewKey round trip: %v", err)
	}
}

func TestReseal(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, err := NewKeyring("k1", map[string][]byte{"k1": k1})
	if err != nil {
		t.Fatal(err)
	}
	sealed := old.SealString("date of birth", "patient-dob:p1")
	rotated, err := NewKeyring("k2", map[string][]byte{"k1": k1, "k2": k2})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := rotated.Reseal(sealed, "patient-dob:p1")
	if err != nil || !changed {
		t.Fatalf("reseal: changed=%v %v", changed, err)
	}
	// Only the new key is needed now.
	onlyNew, _ := NewKeyring("k2", map[string][]byte{"k2": k2})
	if got, err := onlyNew.OpenString(out, "patient-dob:p1"); err != nil || got != "date of birth" {
		t.Fatalf("after reseal: %q %v", got, err)
	}
	if again, changed, err := rotated.Reseal(out, "patient-dob:p1"); err != nil || changed || !bytes.Equal(again, out) {
		t.Fatalf("resealing a current value: changed=%v %v", changed, err)
	}
	if _, _, err := rotated.Reseal(sealed, "patient-dob:p2"); err == nil {
		t.Fatal("resealed under another context")
	}
}

package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	good := map[string]string{
		"+1 (415) 555-2671": "+14155552671",
		"415.555.2671":      "+14155552671",
		" +447911123456 ":   "+447911123456",
	}
	for in, want := range good {
		got, err := Normalize(in, "US")
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "hello", "+1 555", "+1 900 555 0100", "12", "+999 1234567"}
	for _, in := range bad {
		got, err := Normalize(in, "US")
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestNormalizeRefusesLandline(t *testing.T) {
	// A UK geographic number is certainly a fixed line.
	_, err := Normalize("+44 20 7946 0018", "US")
	if err == nil || !strings.Contains(err.Error(), "landline") {
		t.Fatalf("want a landline error, got %v", err)
	}
}

func TestErrorsNeverContainFullNumber(t *testing.T) {
	_, err := Normalize("+44 20 7946 0018", "US")
	if err == nil || strings.Contains(err.Error(), "7946") {
		t.Fatalf("error leaks digits beyond the last four: %v", err)
	}
}

func TestMask(t *testing.T) {
	if got := Mask("+14155552671"); got != "···2671" {
		t.Fatalf("Mask = %q", got)
	}
	if got := Mask("12"); got != "···12" {
		t.Fatalf("Mask short = %q", got)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+14155552671", "(415) 555-2671", "", "+", "++1", "0044 20 7946 0018"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in, "US")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if !strings.HasPrefix(out, "+") || len(out) < 8 || len(out) > 16 {
			t.Fatalf("Normalize(%q) = %q is not E.164", in, out)
		}
		again, err := Normalize(out, "US")
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

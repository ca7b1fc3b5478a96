package form

import (
	"net/http"
	"strings"
	"time"
	"unicode"
)

// VerifyForm is the one-time code form (POST /code/verify).
type VerifyForm struct {
	Code string // after Validate: exactly six ASCII digits
	DOB  string
	// BirthDate is set by Validate when a date of birth is needed.
	BirthDate time.Time
}

// NewVerifyForm reads the form from r (already size-limited by the caller).
func NewVerifyForm(r *http.Request) *VerifyForm {
	return &VerifyForm{Code: r.PostFormValue("code"), DOB: r.PostFormValue("dob")}
}

// Validate normalizes the code (spaces and dashes are dropped: people copy "123 456") and,
// when needDOB is set, parses the date of birth: 2006-01-02 (what <input type=date> sends),
// or, for browsers without a date picker, 01/02/2006 in English and 02/01/2006 in Spanish.
func (f *VerifyForm) Validate(needDOB bool, lang string, now time.Time) error {
	code, ok := normalizeCode(f.Code)
	if !ok {
		return ErrCodeInvalid
	}
	f.Code = code
	if !needDOB {
		return nil
	}
	dob, ok := parseDOB(f.DOB, lang)
	if !ok || dob.Year() < 1900 || dob.After(now) {
		return ErrDOBInvalid
	}
	f.BirthDate = dob
	return nil
}

func normalizeCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case unicode.IsSpace(r) || r == '-':
		default:
			return "", false
		}
	}
	if b.Len() != 6 {
		return "", false
	}
	return b.String(), true
}

func parseDOB(s, lang string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 32 {
		return time.Time{}, false
	}
	layouts := []string{"2006-01-02", "1/2/2006"}
	if lang == "es" {
		layouts[1] = "2/1/2006"
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Package phone normalizes patients' phone numbers to E.164 and masks them for display and logs.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is wrapped by every error Normalize returns, so callers can tell bad input apart.
var ErrInvalid = errors.New("not a valid phone number")

// Normalize turns what a person typed ("(555) 123-4567", "+1 555 123 4567") into E.164.
// Numbers without a country code are read in defaultRegion (e.g. "US"). Numbers that can
// never receive a text message (fixed lines where the type is certain, premium, toll-free
// voice-only, etc.) are refused with a reason a nurse can act on.
func Normalize(input, defaultRegion string) (string, error) {
	trimmed := strings.TrimSpace(input)
	if trimmed == "" {
		return "", fmt.Errorf("%w: the number is empty", ErrInvalid)
	}
	num, err := phonenumbers.Parse(trimmed, defaultRegion)
	if err != nil {
		return "", fmt.Errorf("%w: %q could not be read as a phone number (include the country code, e.g. +1 for the US)", ErrInvalid, Mask(trimmed))
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w: %s is not a number that exists in its country", ErrInvalid, Mask(trimmed))
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.FIXED_LINE:
		return "", fmt.Errorf("%w: %s is a landline and cannot receive text messages", ErrInvalid, Mask(trimmed))
	case phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL:
		return "", fmt.Errorf("%w: %s is not a mobile number", ErrInvalid, Mask(trimmed))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// Last4 returns the last four digits of a number, the only part careline shows or logs.
func Last4(number string) string {
	digits := make([]byte, 0, len(number))
	for i := 0; i < len(number); i++ {
		if number[i] >= '0' && number[i] <= '9' {
			digits = append(digits, number[i])
		}
	}
	if len(digits) <= 4 {
		return string(digits)
	}
	return string(digits[len(digits)-4:])
}

// Mask returns the display and log form of a number: "···4567".
func Mask(number string) string {
	return "···" + Last4(number)
}

// Format writes a number in E.164 without judging it: unlike Normalize it accepts numbers
// the library calls invalid, landlines and premium numbers. It is for senders a carrier
// already delivered, whose texts careline must never refuse.
func Format(input string) (string, error) {
	num, err := phonenumbers.Parse(strings.TrimSpace(input), "")
	if err != nil {
		return "", fmt.Errorf("%w: %q could not be read as a phone number", ErrInvalid, Mask(input))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

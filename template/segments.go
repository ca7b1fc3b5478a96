package template

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// GSM 03.38 default alphabet and extension table; extension characters take two septets.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "^{}\\[~]|€\f"
)

// Encodings an SMS goes in.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// SMSCost is how a text is billed: its encoding, segments, and the first character that
// forced UCS-2 (zero for GSM-7). One emoji or smart quote turns 160 characters per segment
// into 70, roughly tripling the bill.
type SMSCost struct {
	Encoding string
	Segments int
	Units    int  // septets (GSM-7) or UTF-16 code units (UCS-2)
	Forcing  rune // the first character outside GSM-7
}

// Cost reports the encoding and segment count of text: 160 septets in one GSM-7 segment
// (153 each when split), 70 UCS-2 code units (67 each).
func Cost(text string) SMSCost {
	septets := 0
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			septets++
		case strings.ContainsRune(gsmExtended, r):
			septets += 2
		default:
			units := len(utf16.Encode([]rune(text)))
			return SMSCost{Encoding: UCS2, Segments: segments(units, 70, 67), Units: units, Forcing: r}
		}
	}
	return SMSCost{Encoding: GSM7, Segments: segments(septets, 160, 153), Units: septets}
}

func segments(units, single, multi int) int {
	if units <= single {
		return 1
	}
	return (units + multi - 1) / multi
}

// String is the cost in words: "1 segment, GSM-7" or "3 segments, UCS-2 (forced by ’)".
func (c SMSCost) String() string {
	s := "1 segment"
	if c.Segments != 1 {
		s = strconv.Itoa(c.Segments) + " segments"
	}
	s += ", " + c.Encoding
	if c.Forcing != 0 {
		s += " (forced by " + describe(c.Forcing) + ")"
	}
	return s
}

// describe names invisible or look-alike characters so an admin can find them in the config.
func describe(r rune) string {
	switch r {
	case '‘', '’':
		return "the smart quote " + string(r) + " — use '"
	case '“', '”':
		return "the smart quote " + string(r) + ` — use "`
	case '–', '—':
		return "the dash " + string(r) + " — use -"
	case '…':
		return "the ellipsis … — use ..."
	case '\u00a0':
		return "a non-breaking space"
	}
	return fmt.Sprintf("“%c” (U+%04X)", r, r)
}

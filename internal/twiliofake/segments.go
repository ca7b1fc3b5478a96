package twiliofake

import (
	"strings"
	"unicode/utf16"
)

// GSM 03.38 default alphabet and its extension table (extension characters
// take two septets). Anything outside both forces UCS-2 for the whole body.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "^{}\\[~]|€\f"
)

// countSegments reports how many SMS segments Twilio would bill for body:
// 160 GSM-7 septets in one segment (153 per part when split), or 70 UCS-2
// code units (67 per part). Tests use it to check that notices fit in one.
func countSegments(body string) int {
	if body == "" {
		return 1
	}
	septets, gsm := 0, true
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			septets++
		case strings.ContainsRune(gsmExtended, r):
			septets += 2
		default:
			gsm = false
		}
	}
	if gsm {
		return parts(septets, 160, 153)
	}
	return parts(len(utf16.Encode([]rune(body))), 70, 67)
}

func parts(n, single, multi int) int {
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}

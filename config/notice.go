package config

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// linkTokenLen is the length of a portal link's token (32 random bytes, base64url).
const linkTokenLen = 43

// SecureNotice renders the SMS that carries a secure link: the template with {clinic} and
// {link} filled in, in one pass, so a clinic name cannot inject a second placeholder.
func (c *Network) SecureNotice(link string) string {
	return strings.NewReplacer("{clinic}", c.ClinicName, "{link}", link).Replace(c.Delivery.SecureNotice)
}

// checkNoticeFits reports a secure notice that would not fit in one SMS segment once the
// clinic name and the longest link are filled in: a split text costs double and can arrive
// out of order, the link cut in two.
func (c *Network) checkNoticeFits() error {
	sample := c.SecureNotice(c.PublicURL() + "/l/" + strings.Repeat("A", linkTokenLen))
	length, limit, alphabet := SMSLength(sample)
	if length > limit {
		return fmt.Errorf("network.delivery.secure_notice is %d characters once clinic_name and the link are filled in, "+
			"but one SMS holds %d (%s): shorten the text or clinic_name", length, limit, alphabet)
	}
	return nil
}

// SMSLength is the length of text as a phone counts it for one segment, with that limit: in
// the GSM 7-bit alphabet (160, the extension characters counting twice) when every character
// is in it, else in UCS-2 (70 UTF-16 units).
func SMSLength(text string) (length, limit int, alphabet string) {
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			length++
		case strings.ContainsRune(gsm7Extension, r):
			length += 2
		default:
			return len(utf16.Encode([]rune(text))), 70, "UCS-2, because of characters outside the GSM alphabet"
		}
	}
	return length, 160, "GSM 7-bit"
}

// The GSM 03.38 default alphabet and its extension table (each extension character is sent
// as an escape plus the character).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Extension = "\f^{}\\[~]|€"
)

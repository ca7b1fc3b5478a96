package twilioapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"net/url"
	"slices"
)

// ValidSignature checks X-Twilio-Signature for a webhook received at fullURL (the public URL
// Twilio called, not the one behind the reverse proxy): base64(HMAC-SHA1(auth token, URL and
// each POST parameter sorted by name, name then value)), as twilio-go's RequestValidator
// computes it. Like twilio-go it also accepts the URL with the scheme's default port added,
// or its port removed (Twilio signs either form); unlike it, that second MAC is computed only
// when the first does not match, which for a genuine webhook at the configured URL is never.
func (c *Client) ValidSignature(fullURL string, form url.Values, signature string) bool {
	if signature == "" {
		return false
	}
	keys := make([]string, 0, len(form))
	size := 0
	for key, values := range form {
		if len(values) != 1 {
			// Twilio never repeats a parameter; a repeated one is not from Twilio.
			return false
		}
		keys = append(keys, key)
		size += len(key) + len(values[0])
	}
	slices.Sort(keys)
	params := make([]byte, 0, size)
	for _, key := range keys {
		params = append(append(params, key...), form[key][0]...)
	}
	mac := hmac.New(sha1.New, []byte(c.authToken))
	if signedAs(mac, fullURL, params, signature) {
		return true
	}
	other, ok := otherPortForm(fullURL)
	return ok && signedAs(mac, other, params, signature)
}

// signedAs compares the signature as text, as twilio-go does, so no other spelling of the
// same bytes (base64 ignores line breaks) passes; in constant time.
func signedAs(mac hash.Hash, fullURL string, params []byte, signature string) bool {
	mac.Reset()
	mac.Write([]byte(fullURL))
	mac.Write(params)
	var sum [sha1.Size]byte
	var text [28]byte // base64 of 20 bytes
	base64.StdEncoding.Encode(text[:], mac.Sum(sum[:0]))
	return hmac.Equal(text[:], []byte(signature))
}

// otherPortForm is fullURL with the scheme's default port added when it has none, or its
// port removed when it has one: the other form twilio-go checks.
func otherPortForm(fullURL string) (string, bool) {
	u, err := url.Parse(fullURL)
	if err != nil {
		return "", false
	}
	switch {
	case u.Port() != "":
		u.Host = u.Hostname()
	case u.Scheme == "https":
		u.Host += ":443"
	default:
		u.Host += ":80"
	}
	return u.String(), true
}

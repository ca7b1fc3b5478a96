package twilioapi

import "net/url"

// ValidSignature checks X-Twilio-Signature for a webhook received at fullURL (the public URL
// Twilio called, not the one behind the reverse proxy). twilio-go compares in constant time.
func (c *Client) ValidSignature(fullURL string, form url.Values, signature string) bool {
	if signature == "" {
		return false
	}
	params := make(map[string]string, len(form))
	for key, values := range form {
		if len(values) != 1 {
			// Twilio never repeats a parameter; a repeated one is not from Twilio.
			return false
		}
		params[key] = values[0]
	}
	return c.validator.Validate(fullURL, params, signature)
}

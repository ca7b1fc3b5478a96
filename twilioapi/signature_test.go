package twilioapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"testing"

	twclient "github.com/twilio/twilio-go/client"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "0123456789abcdef0123456789abcdef"
)

// sign is Twilio's algorithm (SPEC §7): base64(HMAC-SHA1(token, URL + each POST parameter
// sorted by name, name then value)). twilio-go has no exported signer.
func sign(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(fullURL))
	for _, k := range keys {
		mac.Write([]byte(k + form.Get(k)))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TestValidSignatureTwilioExamples: the signatures of Twilio's documented example (auth token
// 12345, as twilio-go's own tests use it), including a parameter whose name starts another's,
// and the URL with a port Twilio may or may not have signed.
func TestValidSignatureTwilioExamples(t *testing.T) {
	c := &Client{authToken: "12345"}
	form := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"}, "From": {"+14158675309"},
		"To": {"+18005551212"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	for _, tc := range []struct {
		name, url, signature string
		want                 bool
	}{
		{"documented example", "https://mycompany.com/myapp.php?foo=1&bar=2", "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"signed without the port the URL has", "https://mycompany.com:1234/myapp.php?foo=1&bar=2", "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"http, signed without the port", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", "n2xBNyzSW7rfYStDtOFiFMv7qNo=", true},
		{"http, no port", "http://mycompany.com/myapp.php?foo=1&bar=2", "n2xBNyzSW7rfYStDtOFiFMv7qNo=", true},
		{"https signature for http", "http://mycompany.com/myapp.php?foo=1&bar=2", "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"parameters sorted wrongly", "https://mycompany.com/myapp.php?foo=1&bar=2", "95+Bu0JVPi0r/SsESZCVf0dWAjw=", false},
		{"another URL", "https://mycompany.com/myapp.php?foo=1&bar=3", "vOEb5UThFn24KEfnOFLQY2AE5FY=", false},
		{"line break in the signature", "https://mycompany.com/myapp.php?foo=1&bar=2", "vOEb5UThFn24KEfnOFLQY2AE5FY=\n", false},
		{"no signature", "https://mycompany.com/myapp.php?foo=1&bar=2", "", false},
	} {
		if got := c.ValidSignature(tc.url, form, tc.signature); got != tc.want {
			t.Errorf("%s: valid = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzValidSignature: a webhook signed with the account's token over the URL and form is
// accepted; the same signature over a changed value, a changed URL or another token is not;
// a made-up signature or a repeated parameter never is.
func FuzzValidSignature(f *testing.F) {
	f.Add("https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms", "Body", "my knee hurts", "x", "forged")
	f.Add("https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/status/1", "MessageStatus", "delivered", "", "")
	f.Add("http://127.0.0.1:1/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms?a=b", "", "", "\x00", "AAAA")
	f.Add("https://texts.example.org:443/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms", "From", "+14155550123", "+14155550124", "====")
	c, err := New("https://api.twilio.com", testAccountSID, testAuthToken)
	if err != nil {
		f.Fatal(err)
	}
	twilioGo := twclient.NewRequestValidator(testAuthToken)
	f.Fuzz(func(t *testing.T, fullURL, key, value, otherValue, forged string) {
		form := url.Values{"AccountSid": {testAccountSID}, key: {value}}
		good := sign(testAuthToken, fullURL, form)
		if !c.ValidSignature(fullURL, form, good) {
			t.Fatalf("a correctly signed webhook was refused (url %q, %q=%q)", fullURL, key, value)
		}
		params := map[string]string{"AccountSid": testAccountSID, key: value}
		for _, sig := range []string{good, forged} {
			if ours, theirs := c.ValidSignature(fullURL, form, sig), twilioGo.Validate(fullURL, params, sig); ours != theirs {
				t.Fatalf("signature %q for %q: valid %v, twilio-go says %v", sig, fullURL, ours, theirs)
			}
		}
		if otherValue != value && key != "AccountSid" {
			changed := url.Values{"AccountSid": {testAccountSID}, key: {otherValue}}
			if c.ValidSignature(fullURL, changed, good) {
				t.Fatalf("%q changed from %q to %q was accepted under the original signature", key, value, otherValue)
			}
		}
		// twilio-go also tries the URL with the default port added or removed; a longer URL
		// is never one of those forms of the signed one.
		if c.ValidSignature(fullURL+"x", form, good) {
			t.Fatalf("the signature for %q was accepted for %q", fullURL, fullURL+"x")
		}
		if c.ValidSignature(fullURL, form, sign("fedcba9876543210fedcba9876543210", fullURL, form)) {
			t.Fatal("a webhook signed with another account's token was accepted")
		}
		if forged != good && c.ValidSignature(fullURL, form, forged) {
			t.Fatalf("a made-up signature %q was accepted", forged)
		}
		if c.ValidSignature(fullURL, url.Values{key: {value, value}}, sign(testAuthToken, fullURL, url.Values{key: {value}})) {
			t.Fatal("a repeated parameter was accepted")
		}
	})
}

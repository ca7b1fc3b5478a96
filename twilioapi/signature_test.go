package twilioapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"testing"
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
	f.Fuzz(func(t *testing.T, fullURL, key, value, otherValue, forged string) {
		form := url.Values{"AccountSid": {testAccountSID}, key: {value}}
		good := sign(testAuthToken, fullURL, form)
		if !c.ValidSignature(fullURL, form, good) {
			t.Fatalf("a correctly signed webhook was refused (url %q, %q=%q)", fullURL, key, value)
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

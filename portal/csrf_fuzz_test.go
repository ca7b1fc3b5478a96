package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/careline/careline/portal/form"
)

// FuzzCSRFField: every portal POST carries the anti-CSRF field, and /code/send and /signout
// carry nothing else (their handlers parse no other field). Read as the middleware reads it,
// whatever the body, the check passes exactly when the body's csrf field is this browser's
// token; a cut, a change of case or an empty token never passes.
func FuzzCSRFField(f *testing.F) {
	f.Add("cookie-secret", "", true, uint8(5))
	f.Add("cookie-secret", "csrf=x&csrf=y", false, uint8(0))
	f.Add("", "code=123456", true, uint8(42))
	f.Add("s", "csrf=%zz;a=b", true, uint8(1))
	f.Fuzz(func(t *testing.T, secret, body string, withToken bool, cut uint8) {
		want := csrfToken(secret)
		if withToken {
			body = form.CSRFField + "=" + url.QueryEscape(want) + "&" + body
		}
		r := httptest.NewRequest(http.MethodPost, "/signout", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxFormBytes)
		ok := validCSRF(want, r.PostFormValue(form.CSRFField))
		sent, _ := url.ParseQuery(body) // as net/http parses it, errors skipping a pair
		if ok != (len(body) <= maxFormBytes && sent.Get(form.CSRFField) == want) {
			t.Fatalf("CSRF check %v for a body whose csrf field is %q (token %q, %d bytes)", ok, sent.Get(form.CSRFField), want, len(body))
		}
		if validCSRF(want, want[:int(cut)%len(want)]) || (validCSRF(want, strings.ToUpper(want)) && strings.ToUpper(want) != want) ||
			validCSRF(want, "") || validCSRF("", "") {
			t.Fatalf("a near miss of the token %q passed", want)
		}
	})
}

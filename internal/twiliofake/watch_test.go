package twiliofake

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	api "github.com/twilio/twilio-go/rest/api/v2010"
)

func getPage(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

func TestWatchPageListsEscapedMessages(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)
	for _, body := range []string{"first message", `<script>alert("x")</script>`} {
		if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody(body)); err != nil {
			t.Fatal(err)
		}
	}
	page := getPage(t, s.URL+"/")
	if strings.Contains(page, "<script>") {
		t.Fatal("message body rendered unescaped")
	}
	evil := strings.Index(page, "&lt;script&gt;")
	first := strings.Index(page, "first message")
	if evil < 0 || first < 0 || evil > first {
		t.Fatalf("want both messages, newest first (evil at %d, first at %d)", evil, first)
	}
	for _, want := range []string{`http-equiv="refresh"`, `action="/ui/send"`, `name="From"`, `name="To"`, `name="Body"`, clinicNum[1:]} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := s.Requests(); n != 2 {
		t.Fatalf("watch page counted as REST request: Requests() = %d", n)
	}
}

func TestWatchPageSendsAsPatient(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/ui/send", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	form := url.Values{"From": {patientNum}, "To": {clinicNum}, "Body": {"Can I move my appointment?"}}

	// Nothing configured yet: the page says so and nothing is posted.
	if resp := post(form, s.URL); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?note=nourl" {
		t.Fatalf("unconfigured: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(getPage(t, s.URL+"/?note=nourl"), "no SMS webhook configured") {
		t.Fatal("note not shown")
	}

	c := twilioClient(t, s, testSID, testToken)
	pn, _ := s.NumberSid(clinicNum)
	hook := rc.URL + "/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"
	if _, err := c.Api.UpdateIncomingPhoneNumber(pn, new(api.UpdateIncomingPhoneNumberParams).SetSmsUrl(hook)); err != nil {
		t.Fatal(err)
	}
	if resp := post(form, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin post: %d", resp.StatusCode)
	}
	if resp := post(form, s.URL); resp.Header.Get("Location") != "/?note=sent" {
		t.Fatalf("configured: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := rc.wait(t, 1)
	if len(got) != 1 || got[0].Form.Get("Body") != "Can I move my appointment?" || !validSignature(testToken, hook, got[0]) {
		t.Fatalf("webhook from UI: %d requests, form %v", len(got), got[0].Form)
	}
}

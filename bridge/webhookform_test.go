package bridge

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/careline/careline/phone"
)

func TestMediaRefsHonourTwiliosLimit(t *testing.T) {
	form := url.Values{"NumMedia": {"999999999"}}
	for i := range 12 {
		form.Set("MediaUrl"+strconv.Itoa(i), "https://api.twilio.com/m/"+strconv.Itoa(i))
	}
	if refs := mediaRefs(form); len(refs) != maxMMSMedia {
		t.Fatalf("%d attachments taken from a webhook, Twilio's limit is %d", len(refs), maxMMSMedia)
	}
	if refs := mediaRefs(url.Values{"NumMedia": {"-3"}, "MediaUrl0": {"x"}}); len(refs) != 0 {
		t.Fatalf("a negative NumMedia gave %d attachments", len(refs))
	}
}

// FuzzWebhookForms feeds arbitrary webhook bodies to the parsers behind /twilio/sms and
// /twilio/status (the signature check is FuzzValidSignature in twilioapi).
func FuzzWebhookForms(f *testing.F) {
	f.Add("MessageSid=SM1&From=%2B14155550123&To=%2B15005550006&Body=hi&NumMedia=0")
	f.Add("MessageSid=MM1&From=%2B14155550123&NumMedia=2&MediaUrl0=https%3A%2F%2Fx%2F0&MediaContentType0=image%2Fjpeg&MediaUrl1=")
	f.Add("MessageSid=SM1&MessageStatus=Delivered&ErrorCode=30003")
	f.Add("NumMedia=99999999999999999999&From=+1 (415) 555-0123")
	f.Add("NumMedia=999999&MediaUrl0=a&MediaUrl9=b&MediaUrl10=c")
	f.Add("MessageSid=SM1&MessageStatus=sent&ErrorCode=-1&From=abc")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // net/http refuses such a body before careline sees it
		}
		sid, from, err := parseInbound(form)
		_, fromErr := phone.Normalize(form.Get("From"), "")
		if (err == nil) != (form.Get("MessageSid") != "" && fromErr == nil) {
			t.Fatalf("parseInbound(MessageSid %q, From %q): %v", form.Get("MessageSid"), form.Get("From"), err)
		}
		if err == nil && (sid != form.Get("MessageSid") || !strings.HasPrefix(from, "+") || strings.Trim(from[1:], "0123456789") != "") {
			t.Fatalf("parseInbound accepted sid %q from %q", sid, from)
		}

		u, err := parseStatus(form)
		if (err == nil) != (form.Get("MessageSid") != "" && form.Get("MessageStatus") != "") {
			t.Fatalf("parseStatus(MessageSid %q, MessageStatus %q): %v", form.Get("MessageSid"), form.Get("MessageStatus"), err)
		}
		if err == nil && (u.SID != form.Get("MessageSid") || u.Status != strings.ToLower(form.Get("MessageStatus")) || u.ErrorCode < 0) {
			t.Fatalf("parseStatus accepted %+v", u)
		}

		// Exactly the attachments with a URL among the first NumMedia, at most Twilio's 10,
		// in order: never an allocation sized by NumMedia.
		n, err := strconv.Atoi(form.Get("NumMedia"))
		if err != nil {
			n = 0
		}
		n = max(0, min(n, maxMMSMedia))
		refs := mediaRefs(form)
		next := 0
		for i := range n {
			u := form.Get("MediaUrl" + strconv.Itoa(i))
			if u == "" {
				continue
			}
			if next >= len(refs) {
				t.Fatalf("attachment %d (of NumMedia %q) is missing", i, form.Get("NumMedia"))
			}
			ref := refs[next]
			if ref.Index != i || ref.URL != u || ref.ContentType != form.Get("MediaContentType"+strconv.Itoa(i)) {
				t.Fatalf("attachment %+v, the form has %d: %q", ref, i, u)
			}
			next++
		}
		if next != len(refs) {
			t.Fatalf("%d attachments, the first %d of NumMedia %q name %d", len(refs), n, form.Get("NumMedia"), next)
		}
	})
}

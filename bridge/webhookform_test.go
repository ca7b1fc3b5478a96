package bridge

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
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
	f.Add("MessageSid=SM1&MessageStatus=sent&ErrorCode=-1&From=abc")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // net/http refuses such a body before careline sees it
		}
		if sid, from, err := parseInbound(form); err == nil {
			if sid == "" || !strings.HasPrefix(from, "+") || strings.Trim(from[1:], "0123456789") != "" {
				t.Fatalf("parseInbound accepted sid %q from %q", sid, from)
			}
		}
		if u, err := parseStatus(form); err == nil {
			if u.SID == "" || u.Status == "" || u.Status != strings.ToLower(u.Status) || u.ErrorCode < 0 {
				t.Fatalf("parseStatus accepted %+v", u)
			}
		}
		refs := mediaRefs(form)
		if len(refs) > maxMMSMedia {
			t.Fatalf("%d attachments, Twilio's limit is %d", len(refs), maxMMSMedia)
		}
		for _, ref := range refs {
			if ref.URL == "" || ref.URL != form.Get("MediaUrl"+strconv.Itoa(ref.Index)) {
				t.Fatalf("attachment %+v does not match the form", ref)
			}
		}
	})
}

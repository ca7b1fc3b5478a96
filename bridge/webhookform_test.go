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

// TestInboundAcceptsAnySenderTwilioDelivered: a text from a number the phone library calls
// invalid, a landline or premium, from a short code or an alphanumeric sender, is the
// patient's and must reach the room (issue 10, finding 14); a 400 would lose it for good.
func TestInboundAcceptsAnySenderTwilioDelivered(t *testing.T) {
	for name, from := range map[string]string{
		"US mobile":                 "+14155550123",
		"UK landline":               "+442071838750",
		"US premium":                "+19002001234",
		"invalid in its country":    "+15005550006",
		"the old demo sink default": "+15555550100",
		"short code":                "12345",
		"alphanumeric":              "CLINICLAB",
	} {
		t.Run(name, func(t *testing.T) {
			in, err := parseInbound(url.Values{"MessageSid": {"SM1"}, "From": {from}, "Body": {"my knee hurts"}})
			if err != nil {
				t.Fatalf("refused a text Twilio delivered from %s: %v", name, err)
			}
			if in.From == "" || phone.Last4(in.From) != phone.Last4(from) || in.Body != "my knee hurts" {
				t.Fatalf("parsed %+v", in)
			}
			// The second text from the number (its format remembered) names the same sender.
			if again, err := parseInbound(url.Values{"MessageSid": {"SM2"}, "From": {from}}); err != nil || again.From != in.From {
				t.Fatalf("the same sender read as %q, then %v %v", in.From, again, err)
			}
		})
	}
	for name, form := range map[string]url.Values{
		"no MessageSid": {"From": {"+14155550123"}},
		"no sender":     {"MessageSid": {"SM1"}, "From": {"  "}},
	} {
		if _, err := parseInbound(form); err == nil {
			t.Errorf("%s: accepted", name)
		}
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
		in, err := parseInbound(form)
		// Refused only without a MessageSid or a sender: every sender Twilio delivered is a patient.
		if (err == nil) != (strings.TrimSpace(form.Get("MessageSid")) != "" && strings.TrimSpace(form.Get("From")) != "") {
			t.Fatalf("parseInbound(MessageSid %q, From %q): %v", form.Get("MessageSid"), form.Get("From"), err)
		}
		if err == nil {
			if in.MessageID != strings.TrimSpace(form.Get("MessageSid")) || in.Body != form.Get("Body") || in.From == "" {
				t.Fatalf("parseInbound read %+v", in)
			}
			// A number the library can read is written in E.164, so its patient matches staff's.
			if e164, ferr := phone.Format(form.Get("From")); ferr == nil && in.From != e164 {
				t.Fatalf("parseInbound kept sender %q, E.164 is %q", in.From, e164)
			}
		}

		u, err := parseStatus(form)
		if (err == nil) != (form.Get("MessageSid") != "" && form.Get("MessageStatus") != "") {
			t.Fatalf("parseStatus(MessageSid %q, MessageStatus %q): %v", form.Get("MessageSid"), form.Get("MessageStatus"), err)
		}
		if err == nil && (u.SID != form.Get("MessageSid") || string(u.Status) != strings.ToLower(form.Get("MessageStatus")) || u.ErrorCode < 0) {
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

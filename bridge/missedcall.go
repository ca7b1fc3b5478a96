package bridge

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/template"
)

func (c *Connector) voiceWebhookURL(loginID networkid.UserLoginID) string {
	return c.Config.PublicURL() + "/twilio/" + url.PathEscape(string(loginID)) + "/voice"
}

// configureVoice points the number's voice URL at careline when missed calls are on, or says
// in the log which URL to set in the Twilio console when careline may not configure the number.
func (cl *Client) configureVoice(ctx context.Context) {
	c := cl.connector
	if !c.Config.MissedCalls.Enabled {
		return
	}
	voiceURL := c.voiceWebhookURL(cl.login.ID)
	if !c.Config.Twilio.ConfigureWebhooks || cl.meta.NumberSID == "" {
		zerolog.Ctx(ctx).Info().Str("voice_url", voiceURL).Msg("Missed calls are on: set this voice URL (HTTP POST) on the number in the Twilio console")
		return
	}
	if err := cl.twilio.SetVoiceURL(cl.meta.NumberSID, voiceURL); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not point the number's voice webhook at careline; missed calls will not be texted back")
	}
}

// twimlSay is the answer to a call: one spoken message, then Twilio hangs up.
type twimlSay struct {
	XMLName xml.Name `xml:"Response"`
	Say     string   `xml:"Say"`
}

// handleVoiceWebhook answers a call to the clinic's number when missed calls are on: a short
// spoken message, a text saying the caller can write instead (at most once per caller per
// text_every), and a notice in the caller's room, which is created for a new patient.
func (c *Connector) handleVoiceWebhook(w http.ResponseWriter, r *http.Request) {
	loginID := networkid.UserLoginID(r.PathValue("login"))
	client, form := c.verifiedWebhook(w, r, c.voiceWebhookURL(loginID))
	if client == nil {
		return
	}
	log := zerolog.Ctx(r.Context()).With().Str("call_sid", form.Get("CallSid")).Logger()
	mc := c.Config.MissedCalls
	if !mc.Enabled {
		// The number's voice URL points here but missed calls were turned off since.
		log.Info().Msg("A call came in but missed calls are off; rejecting it")
		writeTwiML(w, `<Response><Reject/></Response>`)
		return
	}
	say, _ := template.Fill("missed_calls.say", mc.Say, map[string]string{"clinic": c.Config.ClinicName})
	answer, _ := xml.Marshal(twimlSay{Say: say})
	number, err := phone.Normalize(form.Get("From"), "")
	if err != nil {
		// A withheld or unknown caller ID: nobody to text and no room to open.
		log.Info().Msg("Missed call from a withheld number; answered, no text")
		writeTwiML(w, string(answer))
		return
	}
	patientID := c.patientID(client.login.ID, number)
	texted, err := c.recordMissedCall(r.Context(), client, patientID, number)
	if err != nil {
		// The caller still hears the message; the text and notice are lost with the error.
		log.Err(err).Str("caller", phone.Mask(number)).Msg("Could not record a missed call")
	}
	writeTwiML(w, string(answer))
	if err != nil {
		return
	}
	log.Info().Str("caller", phone.Mask(number)).Bool("texted", texted).Msg("Missed call answered")
	// Opening the room can take a while on a busy homeserver; Twilio is answered already.
	go c.showMissedCall(zerolog.Ctx(r.Context()).WithContext(c.wf.runCtx()), client, patientID, texted, time.Now())
}

func writeTwiML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(xml.Header + body))
}

// recordMissedCall records the caller as a patient and, unless texted within text_every or
// opted out, queues the missed-call text. It reports whether a text was queued.
func (c *Connector) recordMissedCall(ctx context.Context, cl *Client, patientID, number string) (bool, error) {
	mc := c.Config.MissedCalls
	if _, err := c.Store.GetOrCreatePatient(ctx, patientID, string(cl.login.ID), number); err != nil {
		return false, err
	}
	if mc.Text == "" {
		return false, nil
	}
	text, err := template.Fill("missed_calls.text", mc.Text, map[string]string{"clinic": c.Config.ClinicName})
	if err != nil {
		return false, err
	}
	texted := false
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		p, err := c.Store.GetPatient(ctx, patientID)
		if err != nil || p == nil || !p.OptedOutAt.IsZero() {
			return err
		}
		if texted, err = c.wf.throttle.Take(ctx, "missedcall:"+patientID, time.Now(), mc.TextEvery); err != nil || !texted {
			return err
		}
		return cl.queueAutomatic(ctx, patientID, text)
	})
	if err == nil && texted {
		cl.wakeSender()
	}
	return texted, err
}

// showMissedCall opens the caller's room if needed and shows the call there.
func (c *Connector) showMissedCall(ctx context.Context, cl *Client, patientID string, texted bool, at time.Time) {
	c.audit(ctx, audit.Entry{Actor: patientActor(patientID), Action: "call.missed", PatientID: patientID,
		Detail: fmt.Sprintf("texted: %v", texted)})
	portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(cl.login.ID, patientID))
	if err == nil {
		err = cl.ensureRoom(ctx, portal)
	}
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not open the caller's room to show a missed call")
		return
	}
	text := fmt.Sprintf("📞 Missed call from the patient at %s. They heard the spoken message", at.In(c.Config.Location()).Format("3:04 PM MST, Mon Jan 2"))
	if texted {
		text += " and got a text saying they can write here instead."
	} else {
		text += "; no text went (one went recently, the patient opted out, or texts after calls are off)."
	}
	c.sendNotice(ctx, portal, text, "")
	c.patientWrote(ctx, cl, patientID) // a missed call awaits a reply and reopens a closed conversation
}

package bridge

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
)

// maxWebhookBytes bounds a webhook body; Twilio's are a few kilobytes.
const maxWebhookBytes = 64 << 10

// emptyTwiML acknowledges a message without replying to it.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// verifiedWebhook parses a Twilio webhook and checks its signature against the public URL.
// It answers the request itself and returns nil when the webhook must be ignored.
func (c *Connector) verifiedWebhook(w http.ResponseWriter, r *http.Request, publicURL, numberField string) (*Client, url.Values) {
	log := zerolog.Ctx(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBytes)
	if err := r.ParseForm(); err != nil {
		log.Warn().Err(err).Msg("Rejected a webhook that is not a valid form")
		http.Error(w, "Bad request: the body is not form data.", http.StatusBadRequest)
		return nil, nil
	}
	form := r.PostForm
	client := c.clientForNumber(form.Get(numberField))
	if client == nil && strings.HasPrefix(form.Get("AccountSid"), "AC") {
		// Right after a start, bridgev2 may not have loaded the logins yet: load this one now
		// rather than refuse a webhook Twilio would not retry.
		login, err := c.Bridge.GetExistingUserLoginByID(r.Context(), makeLoginID(form.Get("AccountSid"), form.Get(numberField)))
		if err != nil {
			log.Err(err).Msg("Could not look up the clinic login for a webhook; Twilio will retry")
			http.Error(w, "Temporarily unavailable.", http.StatusServiceUnavailable)
			return nil, nil
		}
		if login != nil {
			client, _ = login.Client.(*Client)
		}
	}
	if client == nil || client.meta.AccountSID != form.Get("AccountSid") ||
		!client.twilio.ValidSignature(publicURL, form, r.Header.Get("X-Twilio-Signature")) {
		// Same answer whether the number is unknown or the signature wrong: nothing to learn.
		log.Warn().Str("clinic_number", phone.Mask(form.Get(numberField))).
			Bool("known_number", client != nil).
			Msg("Rejected a webhook without a valid Twilio signature")
		http.Error(w, "Forbidden: the request is not signed by the Twilio account of this number.", http.StatusForbidden)
		return nil, nil
	}
	return client, form
}

// handleSMSWebhook receives an SMS or MMS from a patient. It answers only after the message is
// durably stored; getting it into the room happens in the inbox, and survives crashes.
func (c *Connector) handleSMSWebhook(w http.ResponseWriter, r *http.Request) {
	client, form := c.verifiedWebhook(w, r, c.smsWebhookURL(), "To")
	if client == nil {
		return
	}
	log := zerolog.Ctx(r.Context())
	sid, from, err := parseInbound(form)
	if err != nil {
		log.Warn().Str("message_sid", form.Get("MessageSid")).Msg("Rejected an SMS webhook without a MessageSid or sender number")
		http.Error(w, "Bad request: MessageSid and a valid From number are required.", http.StatusBadRequest)
		return
	}
	in := &store.Inbound{
		MessageSID: sid,
		LoginID:    string(client.login.ID),
		PatientID:  c.patientID(client.login.ID, from),
		Params:     form,
	}
	isNew, err := c.Store.SaveInbound(r.Context(), in)
	if err != nil {
		// Not acknowledged: Twilio will try again, so nothing is lost.
		log.Err(err).Str("message_sid", sid).Msg("Could not store an incoming SMS; Twilio will retry")
		http.Error(w, "Temporarily unavailable: could not store the message.", http.StatusServiceUnavailable)
		return
	}
	log.Debug().Str("message_sid", sid).Str("patient_id", in.PatientID).Bool("new", isNew).Msg("Incoming SMS stored")
	if isNew {
		c.inbox.enqueue(in)
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(emptyTwiML))
}

// handleStatusWebhook receives Twilio's delivery status for a message careline sent.
func (c *Connector) handleStatusWebhook(w http.ResponseWriter, r *http.Request) {
	client, form := c.verifiedWebhook(w, r, c.statusWebhookURL(), "From")
	if client == nil {
		return
	}
	update, err := parseStatus(form)
	if err != nil {
		http.Error(w, "Bad request: "+err.Error()+".", http.StatusBadRequest)
		return
	}
	if err := client.applyStatus(r.Context(), update.SID, update.Status, update.ErrorCode); err != nil {
		zerolog.Ctx(r.Context()).Err(err).Str("message_sid", update.SID).Msg("Could not apply a delivery status; Twilio will retry")
		http.Error(w, "Temporarily unavailable.", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

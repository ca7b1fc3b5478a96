package bridge

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
)

// maxWebhookBytes bounds a webhook body; Twilio's are a few kilobytes.
const maxWebhookBytes = 64 << 10

// emptyTwiML acknowledges a message without replying to it.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Webhook URLs name what they are for, so nothing is routed by the form's contents: the
// login in the path picks the account whose token checks the signature, and the signature
// covers the whole URL, so a status callback's outbox number cannot be forged either.
func (c *Connector) smsWebhookURL(loginID networkid.UserLoginID) string {
	return c.Config.PublicURL() + "/twilio/" + url.PathEscape(string(loginID)) + "/sms"
}

func (c *Connector) statusWebhookURL(loginID networkid.UserLoginID, seq int64) string {
	return c.Config.PublicURL() + "/twilio/" + url.PathEscape(string(loginID)) + "/status/" + strconv.FormatInt(seq, 10)
}

// verifiedWebhook parses a Twilio webhook for the login named in the URL and checks its
// signature against publicURL. It answers the request itself and returns nil when the webhook
// must be ignored.
func (c *Connector) verifiedWebhook(w http.ResponseWriter, r *http.Request, publicURL string) (*Client, url.Values) {
	log := zerolog.Ctx(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBytes)
	if err := r.ParseForm(); err != nil {
		log.Warn().Err(err).Msg("Rejected a webhook that is not a valid form")
		http.Error(w, "Bad request: the body is not form data.", http.StatusBadRequest)
		return nil, nil
	}
	form := r.PostForm
	loginID := networkid.UserLoginID(r.PathValue("login"))
	login, err := c.Bridge.GetExistingUserLoginByID(r.Context(), loginID)
	if err != nil {
		log.Err(err).Msg("Could not look up the clinic login of a webhook; Twilio will retry")
		http.Error(w, "Temporarily unavailable.", http.StatusServiceUnavailable)
		return nil, nil
	}
	var client *Client
	if login != nil {
		client, _ = login.Client.(*Client)
	}
	if client == nil || client.meta.AccountSID != form.Get("AccountSid") ||
		!client.twilio.ValidSignature(publicURL, form, r.Header.Get("X-Twilio-Signature")) {
		// Same answer whether the login is unknown or the signature wrong: nothing to learn.
		log.Warn().Bool("known_login", client != nil).Msg("Rejected a webhook without a valid Twilio signature")
		http.Error(w, "Forbidden: the request is not signed by the Twilio account of this number.", http.StatusForbidden)
		return nil, nil
	}
	return client, form
}

// handleSMSWebhook receives an SMS or MMS from a patient. It answers only after the message
// and its patient are durably stored; getting it into the room happens in the inbox, and
// survives crashes. The answer waits (briefly) for the message to reach its room, which
// keeps a busy sender from outrunning the inbox.
func (c *Connector) handleSMSWebhook(w http.ResponseWriter, r *http.Request) {
	if !c.accepting(w) {
		return
	}
	client, form := c.verifiedWebhook(w, r, c.smsWebhookURL(networkid.UserLoginID(r.PathValue("login"))))
	if client == nil {
		return
	}
	log := zerolog.Ctx(r.Context())
	in, err := parseInbound(form)
	if err != nil {
		log.Warn().Str("message_sid", form.Get("MessageSid")).Str("reason", err.Error()).Msg("Rejected an SMS webhook")
		http.Error(w, "Bad request: "+err.Error()+".", http.StatusBadRequest)
		return
	}
	in.LoginID = string(client.login.ID)
	in.PatientID = c.patientID(client.login.ID, in.From)
	// Claimed before it is stored: a sweep must not take the message, as one that may have been
	// attempted, between its commit and its hand-over (see inbox.claim).
	claimed := c.inbox.claim(in.MessageID)
	patient, isNew, err := c.Store.SaveInbound(r.Context(), in)
	if err != nil {
		if claimed {
			c.inbox.release(in.MessageID)
		}
		// Not acknowledged: Twilio will try again, so nothing is lost.
		log.Err(err).Str("message_sid", in.MessageID).Msg("Could not store an incoming SMS; Twilio will retry")
		http.Error(w, "Temporarily unavailable: could not store the message.", http.StatusServiceUnavailable)
		return
	}
	log.Debug().Str("message_sid", in.MessageID).Str("patient_id", in.PatientID).Bool("new", isNew).Msg("Incoming SMS stored")
	switch {
	case isNew && claimed:
		item := newWaitedItem(in, patient, client)
		item.fresh = !in.SendingAt.IsZero() // an SMS without media, recorded and marked "sending" with the webhook
		c.inbox.hand(item)
		c.inbox.waitInRoom(r.Context(), item)
	case claimed:
		c.inbox.release(in.MessageID)
	}
	// Not claimed: the same MessageSid, retried by Twilio, is being handled already (if this
	// call stored it, the sweep offers it once the other call lets go).
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(emptyTwiML))
}

// handleStatusWebhook receives Twilio's delivery status for a text careline sent; the URL
// names the login and the outbox entry.
func (c *Connector) handleStatusWebhook(w http.ResponseWriter, r *http.Request) {
	if !c.accepting(w) {
		return
	}
	seq, err := strconv.ParseInt(r.PathValue("outbox"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	client, form := c.verifiedWebhook(w, r, c.statusWebhookURL(networkid.UserLoginID(r.PathValue("login")), seq))
	if client == nil {
		return
	}
	update, err := parseStatus(form)
	if err != nil {
		http.Error(w, "Bad request: "+err.Error()+".", http.StatusBadRequest)
		return
	}
	if err := client.applyStatus(r.Context(), seq, update); err != nil {
		zerolog.Ctx(r.Context()).Err(err).Str("message_sid", update.SID).Msg("Could not apply a delivery status; Twilio will retry")
		http.Error(w, "Temporarily unavailable.", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// inboundSender is the patient's number as Twilio delivered it: formatted E.164 when it reads
// as a number, whatever the phone library thinks of its type. Twilio delivered it, so the
// text is the patient's and is never refused (a landline can text through some carriers;
// short codes and alphanumeric senders exist). Checks apply when careline texts back.
func inboundSender(from string) string {
	return senderFormats.get(from, func(from string) string {
		if formatted, err := phone.Format(from); err == nil {
			return formatted
		}
		return from
	})
}

// senderFormats remembers inboundSender's answers: the phone library's parse is the dearest
// step of reading a webhook (as dear as checking its signature), and patients text again and
// again.
var senderFormats = memo[string, string]{max: 4096}

var _ = store.ChannelSMS

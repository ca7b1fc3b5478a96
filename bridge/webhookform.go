package bridge

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/careline/careline/store"
)

// maxMMSMedia is Twilio's limit of attachments per message.
const maxMMSMedia = 10

// parseInbound reads an incoming SMS webhook once, into what the inbox needs. Only a message
// without a MessageSid or without any sender is refused: a sender the phone library calls
// invalid is still a patient whose text Twilio delivered.
func parseInbound(form url.Values) (*store.Inbound, error) {
	in := &store.Inbound{
		MessageID: strings.TrimSpace(form.Get("MessageSid")),
		Channel:   store.ChannelSMS,
		From:      inboundSender(form.Get("From")),
		Body:      form.Get("Body"),
		Media:     mediaRefs(form),
	}
	switch {
	case in.MessageID == "":
		return nil, errors.New("the webhook has no MessageSid")
	case strings.TrimSpace(in.From) == "":
		return nil, errors.New("the webhook names no sender (From)")
	}
	in.From = strings.TrimSpace(in.From)
	return in, nil
}

// statusUpdate is a delivery status callback.
type statusUpdate struct {
	SID       string
	Status    store.MessageStatus // lower case, one of Twilio's statuses
	ErrorCode int                 // 0 when none
}

// parseStatus reads a status callback. A status careline does not know is passed on and
// changes nothing (it cannot rank it), so a new one from Twilio does not make careline fail.
func parseStatus(form url.Values) (statusUpdate, error) {
	u := statusUpdate{SID: form.Get("MessageSid"), Status: store.MessageStatus(strings.ToLower(form.Get("MessageStatus")))}
	if u.SID == "" || u.Status == "" {
		return u, errors.New("MessageSid and MessageStatus are required")
	}
	if code, err := strconv.Atoi(form.Get("ErrorCode")); err == nil && code > 0 {
		u.ErrorCode = code
	}
	return u, nil
}

// mediaRefs lists an MMS's attachments: at most Twilio's limit, whatever NumMedia says, and
// only those with a URL.
func mediaRefs(params url.Values) []store.MediaRef {
	n, _ := strconv.Atoi(params.Get("NumMedia"))
	n = max(0, min(n, maxMMSMedia))
	var refs []store.MediaRef
	for i := range n {
		u := params.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		refs = append(refs, store.MediaRef{Index: i, URL: u, ContentType: params.Get("MediaContentType" + strconv.Itoa(i))})
	}
	return refs
}

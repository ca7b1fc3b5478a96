package bridge

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/careline/careline/phone"
)

// maxMMSMedia is Twilio's limit of attachments per message.
const maxMMSMedia = 10

// parseInbound reads what careline needs from an incoming SMS webhook: the message's SID and
// the patient's number in E.164.
func parseInbound(form url.Values) (sid, from string, err error) {
	sid = form.Get("MessageSid")
	from, err = phone.Normalize(form.Get("From"), "")
	if sid == "" || err != nil {
		return "", "", errors.New("MessageSid and a valid From number are required")
	}
	return sid, from, nil
}

// statusUpdate is a delivery status callback.
type statusUpdate struct {
	SID       string
	Status    string // lower case, one of Twilio's statuses
	ErrorCode int    // 0 when none
}

// parseStatus reads a status callback. A status careline does not know is passed on and
// changes nothing (it cannot rank it), so a new one from Twilio does not make careline fail.
func parseStatus(form url.Values) (statusUpdate, error) {
	u := statusUpdate{SID: form.Get("MessageSid"), Status: strings.ToLower(form.Get("MessageStatus"))}
	if u.SID == "" || u.Status == "" {
		return u, errors.New("MessageSid and MessageStatus are required")
	}
	if code, err := strconv.Atoi(form.Get("ErrorCode")); err == nil && code > 0 {
		u.ErrorCode = code
	}
	return u, nil
}

// mediaRef is one MMS attachment named in a webhook.
type mediaRef struct {
	Index       int
	URL         string
	ContentType string // as Twilio declared it; the fetched content's own type wins
}

// mediaRefs lists an MMS's attachments: at most Twilio's limit, whatever NumMedia says, and
// only those with a URL.
func mediaRefs(params url.Values) []mediaRef {
	n, _ := strconv.Atoi(params.Get("NumMedia"))
	n = max(0, min(n, maxMMSMedia))
	var refs []mediaRef
	for i := range n {
		u := params.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		refs = append(refs, mediaRef{Index: i, URL: u, ContentType: params.Get("MediaContentType" + strconv.Itoa(i))})
	}
	return refs
}

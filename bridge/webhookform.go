package bridge

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/careline/careline/store"
)

// maxWebhookParams bounds a webhook's parameters, as url.ParseQuery bounds a query's; Twilio
// sends a few dozen.
const maxWebhookParams = 1000

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

// readForm reads a webhook's POST parameters, as Request.ParseForm would into PostForm: a body
// that is not form data has none. ParseForm also copies them, merged with the URL's query, into
// Form, which a webhook never reads: that copy was half of what reading a webhook allocated.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mediaType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(mediaType), "application/x-www-form-urlencoded") {
		return url.Values{}, nil
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= maxWebhookBytes {
		// Read at its announced size at once; the server ends the body there.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	}
	if err != nil {
		return nil, err
	}
	return parseQuery(string(body))
}

// parseQuery is url.ParseQuery, allocating less: the map is made at its size, and the
// parameters' values share one array (a webhook repeats none). Twilio signs the decoded
// parameters, so they must decode exactly as url.ParseQuery decodes them.
func parseQuery(query string) (url.Values, error) {
	n := strings.Count(query, "&") + 1
	if n > maxWebhookParams {
		return nil, errors.New("too many parameters")
	}
	form := make(url.Values, n)
	values := make([]string, 0, n)
	var firstErr error
	for query != "" {
		var key string
		key, query, _ = strings.Cut(query, "&")
		if strings.Contains(key, ";") {
			if firstErr == nil {
				firstErr = errors.New("invalid semicolon separator in query")
			}
			continue
		}
		if key == "" {
			continue
		}
		key, value, _ := strings.Cut(key, "=")
		key, err := url.QueryUnescape(key)
		if err == nil {
			value, err = url.QueryUnescape(value)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if old, ok := form[key]; ok {
			form[key] = append(old, value)
			continue
		}
		values = append(values, value)
		form[key] = values[len(values)-1 : len(values) : len(values)]
	}
	return form, firstErr
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

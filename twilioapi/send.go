package twilioapi

import (
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Outgoing is one SMS to send.
type Outgoing struct {
	From                string // the clinic number, unless MessagingServiceSID is set
	MessagingServiceSID string
	To                  string
	Body                string
	StatusCallback      string
}

// Sent is Twilio's answer to a send.
type Sent struct {
	SID    string
	Status string
}

// Send asks Twilio to send one message.
func (c *Client) Send(out Outgoing) (*Sent, error) {
	params := &openapi.CreateMessageParams{}
	params.SetTo(out.To)
	if out.MessagingServiceSID != "" {
		params.SetMessagingServiceSid(out.MessagingServiceSID)
	} else {
		params.SetFrom(out.From)
	}
	params.SetBody(out.Body)
	if out.StatusCallback != "" {
		params.SetStatusCallback(out.StatusCallback)
	}
	msg, err := c.rest.Api.CreateMessage(params)
	if err != nil {
		return nil, Wrap(err)
	}
	sent := &Sent{}
	if msg.Sid != nil {
		sent.SID = *msg.Sid
	}
	if msg.Status != nil {
		sent.Status = *msg.Status
	}
	return sent, nil
}

// FindSent looks for a message Twilio already accepted: same sender, recipient and body,
// created at or after since. careline uses it after a crash between asking Twilio to send and
// recording the answer, so it does not text the patient twice.
func (c *Client) FindSent(out Outgoing, since time.Time) (*Sent, error) {
	params := &openapi.ListMessageParams{}
	params.SetTo(out.To)
	if out.MessagingServiceSID == "" {
		params.SetFrom(out.From)
	}
	params.SetPageSize(50)
	params.SetLimit(200)
	msgs, err := c.rest.Api.ListMessage(params)
	if err != nil {
		return nil, Wrap(err)
	}
	for _, m := range msgs {
		if m.Body == nil || *m.Body != out.Body || m.Sid == nil {
			continue
		}
		if m.DateCreated != nil {
			created, err := time.Parse(time.RFC1123Z, *m.DateCreated)
			if err == nil && created.Before(since.Add(-time.Minute)) {
				continue // an older message with the same text
			}
		}
		sent := &Sent{SID: *m.Sid}
		if m.Status != nil {
			sent.Status = *m.Status
		}
		return sent, nil
	}
	return nil, nil
}

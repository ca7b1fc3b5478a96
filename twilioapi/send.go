package twilioapi

import (
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

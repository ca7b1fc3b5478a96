package twilioapi

import (
	"net/http"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// SetVoiceURL points the number's incoming-call webhook at careline (missed-call text-back).
func (c *Client) SetVoiceURL(numberSID, voiceURL string) error {
	params := &openapi.UpdateIncomingPhoneNumberParams{}
	params.SetVoiceUrl(voiceURL)
	params.SetVoiceMethod(http.MethodPost)
	if _, err := c.rest.Api.UpdateIncomingPhoneNumber(numberSID, params); err != nil {
		return Wrap(err)
	}
	return nil
}

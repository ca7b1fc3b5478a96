package twilioapi

import (
	"fmt"
	"net/http"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Number is one of the account's phone numbers.
type Number struct {
	SID    string
	E164   string
	SMSURL string
}

// CheckAccount proves the credentials work before a login is saved.
func (c *Client) CheckAccount() error {
	if _, err := c.rest.Api.FetchAccount(c.AccountSID); err != nil {
		return Wrap(err)
	}
	return nil
}

// FindNumber looks up one of the account's numbers.
func (c *Client) FindNumber(e164 string) (*Number, error) {
	params := &openapi.ListIncomingPhoneNumberParams{}
	params.SetPhoneNumber(e164)
	params.SetLimit(20)
	numbers, err := c.rest.Api.ListIncomingPhoneNumber(params)
	if err != nil {
		return nil, Wrap(err)
	}
	for _, n := range numbers {
		if n.PhoneNumber != nil && *n.PhoneNumber == e164 && n.Sid != nil {
			num := &Number{SID: *n.Sid, E164: e164}
			if n.SmsUrl != nil {
				num.SMSURL = *n.SmsUrl
			}
			return num, nil
		}
	}
	return nil, fmt.Errorf("the number %s is not on this Twilio account: check the number or the account SID", maskNumber(e164))
}

// SetSMSURL points the number's incoming-SMS webhook at careline.
func (c *Client) SetSMSURL(numberSID, smsURL string) error {
	params := &openapi.UpdateIncomingPhoneNumberParams{}
	params.SetSmsUrl(smsURL)
	params.SetSmsMethod(http.MethodPost)
	if _, err := c.rest.Api.UpdateIncomingPhoneNumber(numberSID, params); err != nil {
		return Wrap(err)
	}
	return nil
}

func maskNumber(n string) string {
	if len(n) <= 4 {
		return n
	}
	return "···" + n[len(n)-4:]
}

package twilioapi

import (
	"errors"
	"fmt"

	twclient "github.com/twilio/twilio-go/client"
)

// Error is a failed Twilio call, with the reason in words for staff.
type Error struct {
	Code   int // Twilio error code, 0 if the request never got an answer
	Status int // HTTP status, 0 if none
	Err    error
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%s (Twilio error %d)", Describe(e.Code), e.Code)
	}
	if e.Status != 0 {
		return fmt.Sprintf("Twilio answered HTTP %d: %s", e.Status, Describe(0))
	}
	return "Twilio could not be reached: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	if e.Code == 20429 || e.Code == 21611 || e.Code == 30001 || e.Status == 429 || e.Status >= 500 {
		return true
	}
	// No answer at all (network error, timeout): Twilio may be back soon.
	return e.Status == 0 && e.Code == 0
}

// Wrap turns a twilio-go error into an *Error.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	var rest *twclient.TwilioRestError
	if errors.As(err, &rest) {
		return &Error{Code: rest.Code, Status: rest.Status, Err: err}
	}
	return &Error{Err: err}
}

// Describe says what a Twilio error code means, for a nurse or an admin.
func Describe(code int) string {
	switch code {
	case 20003:
		return "Twilio refused the account SID or auth token"
	case 20404:
		return "Twilio does not know this resource"
	case 20429:
		return "Twilio is limiting how fast we send; the message will be retried"
	case 21211:
		return "the phone number is not valid"
	case 21408, 21612:
		return "Twilio cannot send to this number's country or carrier from this account"
	case 21606, 21659:
		return "the clinic number cannot send text messages"
	case 21610:
		return "the patient replied STOP and has opted out of texts"
	case 21611, 30001:
		return "too many messages are waiting at Twilio; the message will be retried"
	case 21614, 21635:
		return "the number is not a mobile number and cannot receive texts"
	case 30003:
		return "the patient's phone is switched off or unreachable"
	case 30004:
		return "the patient's carrier blocked the message"
	case 30005:
		return "the number does not exist or is no longer in service"
	case 30006:
		return "the number is a landline or its carrier cannot receive texts"
	case 30007:
		return "the patient's carrier filtered the message as spam"
	case 30008:
		return "the carrier could not deliver the message for an unknown reason"
	case 30034:
		return "the clinic number is not registered for business texting (10DLC); ask your admin"
	}
	return "the message could not be sent"
}

// Permanent reports whether a delivery error code means retrying will not help.
func Permanent(code int) bool {
	switch code {
	case 21211, 21408, 21606, 21610, 21612, 21614, 21635, 21659, 30005, 30006, 30034, 20003:
		return true
	}
	return false
}

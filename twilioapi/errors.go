package twilioapi

import (
	"errors"
	"fmt"

	twclient "github.com/twilio/twilio-go/client"
)

// Twilio error codes careline acts on (https://www.twilio.com/docs/api/errors).
const (
	CodeBadCredentials     = 20003
	CodeNotFound           = 20404
	CodeTooManyRequests    = 20429
	CodeInvalidTo          = 21211
	CodeRegionNotEnabled   = 21408
	CodeFromCannotSend     = 21606
	CodeOptedOut           = 21610
	CodeQueueFull          = 21611
	CodeCannotRoute        = 21612
	CodeNotMobile          = 21614
	CodeLandlineTo         = 21635
	CodeFromNotSMSCapable  = 21659
	CodeQueueOverflow      = 30001
	CodeUnreachable        = 30003
	CodeBlocked            = 30004
	CodeUnknownDestination = 30005
	CodeLandlineOrCarrier  = 30006
	CodeFiltered           = 30007
	CodeUnknownError       = 30008
	CodeUnregistered10DLC  = 30034
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
	if e.Code == CodeTooManyRequests || e.Code == CodeQueueFull || e.Code == CodeQueueOverflow || e.Status == 429 || e.Status >= 500 {
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
	case CodeBadCredentials:
		return "Twilio refused the account SID or auth token"
	case CodeNotFound:
		return "Twilio does not know this resource"
	case CodeTooManyRequests:
		return "Twilio is limiting how fast we send; the message will be retried"
	case CodeInvalidTo:
		return "the phone number is not valid"
	case CodeRegionNotEnabled, CodeCannotRoute:
		return "Twilio cannot send to this number's country or carrier from this account"
	case CodeFromCannotSend, CodeFromNotSMSCapable:
		return "the clinic number cannot send text messages"
	case CodeOptedOut:
		return "the patient replied STOP and has opted out of texts"
	case CodeQueueFull, CodeQueueOverflow:
		return "too many messages are waiting at Twilio; the message will be retried"
	case CodeNotMobile, CodeLandlineTo:
		return "the number is not a mobile number and cannot receive texts"
	case CodeUnreachable:
		return "the patient's phone is switched off or unreachable"
	case CodeBlocked:
		return "the patient's carrier blocked the message"
	case CodeUnknownDestination:
		return "the number does not exist or is no longer in service"
	case CodeLandlineOrCarrier:
		return "the number is a landline or its carrier cannot receive texts"
	case CodeFiltered:
		return "the patient's carrier filtered the message as spam"
	case CodeUnknownError:
		return "the carrier could not deliver the message for an unknown reason"
	case CodeUnregistered10DLC:
		return "the clinic number is not registered for business texting (10DLC); ask your admin"
	}
	return "the message could not be sent"
}

// Permanent reports whether a delivery error code means retrying will not help.
func Permanent(code int) bool {
	switch code {
	case CodeInvalidTo, CodeRegionNotEnabled, CodeFromCannotSend, CodeOptedOut, CodeCannotRoute, CodeNotMobile, CodeLandlineTo,
		CodeFromNotSMSCapable, CodeUnknownDestination, CodeLandlineOrCarrier, CodeUnregistered10DLC, CodeBadCredentials:
		return true
	}
	return false
}

package bridge

import (
	"errors"
	"fmt"
	"strings"

	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

// errNotDelivered is the error behind every failed-delivery status staff see.
var errNotDelivered = errors.New("not delivered to the patient")

// codeOptedOut is Twilio's answer for a patient who texted STOP.
const codeOptedOut = twilioapi.CodeOptedOut

// deliveryFailure says, in words a nurse can act on, why a text did not reach the patient:
// from Twilio's error code when there is one, else from careline's own reason.
func deliveryFailure(channel store.Channel, code int, reason string) string {
	what := "the text message"
	if channel == store.ChannelSecure {
		what = "the text with the secure link"
	}
	switch {
	case code != 0:
		return fmt.Sprintf("Not delivered: %s did not reach the patient because %s (Twilio error %d)", what, twilioapi.Describe(code), code)
	case reason != "":
		return fmt.Sprintf("Not delivered: %s was not sent: %s", what, strings.TrimSuffix(reason, "."))
	}
	return fmt.Sprintf("Not delivered: %s could not be delivered to the patient's phone", what)
}

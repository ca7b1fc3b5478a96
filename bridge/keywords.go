package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
)

// Twilio's standard keywords, matched against the whole trimmed message, case-insensitively.
var (
	optOutKeywords = map[string]bool{"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true, "END": true, "QUIT": true, "REVOKE": true, "OPTOUT": true}
	optInKeywords  = map[string]bool{"START": true, "UNSTOP": true, "YES": true}
	helpKeywords   = map[string]bool{"HELP": true, "INFO": true}
)

type keyword int

const (
	noKeyword keyword = iota
	keywordOptOut
	keywordOptIn
	keywordHelp
)

func classifyKeyword(body string) keyword {
	word := strings.ToUpper(strings.TrimSpace(body))
	switch {
	case optOutKeywords[word]:
		return keywordOptOut
	case optInKeywords[word]:
		return keywordOptIn
	case helpKeywords[word]:
		return keywordHelp
	}
	return noKeyword
}

// applyKeyword records an opt-out or opt-in, or answers HELP, for a message the patient
// texted. It returns the notice staff should see in the room, if any.
func (cl *Client) applyKeyword(ctx context.Context, patient *store.Patient, body string) (string, error) {
	c := cl.connector
	name := c.patientName(ctx, patient.ID)
	switch classifyKeyword(body) {
	case keywordOptOut:
		if err := c.Store.SetOptedOut(ctx, patient.ID, true); err != nil {
			return "", err
		}
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted out of texts")
		c.audit(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optout", PatientID: patient.ID, Channel: store.ChannelSMS})
		return fmt.Sprintf("🚫 %s replied %s and opted out of texts. careline will not text them until they text START.",
			name, strings.ToUpper(strings.TrimSpace(body))), nil
	case keywordOptIn:
		if patient.OptedOutAt.IsZero() {
			return "", nil
		}
		if err := c.Store.SetOptedOut(ctx, patient.ID, false); err != nil {
			return "", err
		}
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted back in to texts")
		c.audit(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optin", PatientID: patient.ID, Channel: store.ChannelSMS})
		return fmt.Sprintf("✅ %s texted %s and can receive texts again.", name, strings.ToUpper(strings.TrimSpace(body))), nil
	case keywordHelp:
		if patient.OptedOutAt.IsZero() && c.Config.Delivery.HelpReply != "" {
			err := cl.enqueue(ctx, &store.Outgoing{PatientID: patient.ID, Kind: store.KindHelp, Body: c.Config.Delivery.HelpReply})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("ℹ️ %s asked for HELP; the clinic's help reply is on its way.", name), nil
		}
	}
	return "", nil
}

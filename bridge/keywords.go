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

func classifyKeyword(body string) store.Keyword {
	word := strings.ToUpper(strings.TrimSpace(body))
	switch {
	case optOutKeywords[word]:
		return store.KeywordOptOut
	case optInKeywords[word]:
		return store.KeywordOptIn
	case helpKeywords[word]:
		return store.KeywordHelp
	}
	return store.KeywordNone
}

// applyKeyword records an opt-out or opt-in, or answers HELP, for a message the patient
// texted, and returns the notice staff should see in the room, if any. It acts once per
// message: a retry after a crash, or a replayed webhook long after the inbox forgot the
// message, finds the keyword already recorded and changes nothing.
func (cl *Client) applyKeyword(ctx context.Context, patient *store.Patient, messageID, body string) (string, error) {
	c := cl.connector
	kw := classifyKeyword(body)
	if kw == store.KeywordNone {
		return "", nil
	}
	word := strings.ToUpper(strings.TrimSpace(body))
	name := c.nameOf(patient)
	var notice string
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		notice = ""
		first, err := c.Store.RecordKeyword(ctx, messageID, patient.ID, kw)
		if err != nil || !first {
			return err
		}
		switch kw {
		case store.KeywordOptOut:
			if err = c.Store.SetOptedOut(ctx, patient.ID, true); err == nil {
				notice = fmt.Sprintf("🚫 %s replied %s and opted out of texts. careline will not text them until they text START.", name, word)
			}
		case store.KeywordOptIn:
			if !patient.OptedOutAt.IsZero() {
				if err = c.Store.SetOptedOut(ctx, patient.ID, false); err == nil {
					notice = fmt.Sprintf("✅ %s texted %s and can receive texts again.", name, word)
				}
			}
		case store.KeywordHelp:
			if patient.OptedOutAt.IsZero() && c.Config.Delivery.HelpReply != "" {
				err = cl.enqueue(ctx, &store.Outgoing{PatientID: patient.ID, Kind: store.KindHelp, Body: c.Config.Delivery.HelpReply})
				notice = fmt.Sprintf("ℹ️ %s asked for HELP; the clinic's help reply is on its way.", name)
			}
		}
		return err
	})
	if err != nil || notice == "" {
		return "", err
	}
	switch kw {
	case store.KeywordOptOut:
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted out of texts")
		c.audit(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optout", PatientID: patient.ID, Channel: string(store.ChannelSMS)})
	case store.KeywordOptIn:
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted back in to texts")
		c.audit(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optin", PatientID: patient.ID, Channel: string(store.ChannelSMS)})
	}
	return notice, nil
}

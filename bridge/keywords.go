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

// applyKeyword records an opt-out or opt-in, or queues the answer to HELP, for a message the
// patient texted, with its audit entry, in the caller's transaction. It returns the notice
// staff should see in the room, if any, and whether a text was queued (wake the sender after
// the commit). It acts once per message: a retry after a crash, or a replayed webhook long
// after the inbox forgot the message, finds the keyword already recorded and changes nothing.
func (cl *Client) applyKeyword(ctx context.Context, patient *store.Patient, messageID, body string) (notice string, queued bool, err error) {
	c := cl.connector
	kw := classifyKeyword(body)
	if kw == store.KeywordNone {
		return "", false, nil
	}
	first, err := c.Store.RecordKeyword(ctx, messageID, patient.ID, kw)
	if err != nil || !first {
		return "", false, err
	}
	word := strings.ToUpper(strings.TrimSpace(body))
	name := c.nameOf(patient)
	switch kw {
	case store.KeywordOptOut:
		if err = c.Store.SetOptedOut(ctx, patient.ID, true); err != nil {
			return "", false, err
		}
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted out of texts")
		// A STOP may come from whoever has the number now: links already sent stop working too.
		if _, err = c.endPortalAccess(ctx, patient.ID, patientActor(patient.ID), "optout"); err != nil {
			return "", false, err
		}
		if err = c.auditIn(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optout", PatientID: patient.ID, Channel: string(store.ChannelSMS)}); err != nil {
			return "", false, err
		}
		return fmt.Sprintf("🚫 %s replied %s and opted out of texts. careline will not text them until they text START.", name, word), false, nil
	case store.KeywordOptIn:
		if patient.OptedOutAt.IsZero() {
			return "", false, nil
		}
		if err = c.Store.SetOptedOut(ctx, patient.ID, false); err != nil {
			return "", false, err
		}
		zerolog.Ctx(ctx).Info().Str("patient_id", patient.ID).Msg("Patient opted back in to texts")
		if err = c.auditIn(ctx, audit.Entry{Actor: patientActor(patient.ID), Action: "optin", PatientID: patient.ID, Channel: string(store.ChannelSMS)}); err != nil {
			return "", false, err
		}
		return fmt.Sprintf("✅ %s texted %s and can receive texts again.", name, word), false, nil
	case store.KeywordHelp:
		if patient.OptedOutAt.IsZero() && c.Config.Delivery.HelpReply != "" {
			if err = cl.enqueue(ctx, &store.Outgoing{PatientID: patient.ID, Kind: store.KindHelp, Body: c.Config.Delivery.HelpReply}); err != nil {
				return "", false, err
			}
			return fmt.Sprintf("ℹ️ %s asked for HELP; the clinic's help reply is on its way.", name), true, nil
		}
	}
	return "", false, nil
}

package store

import (
	"strconv"

	"github.com/careline/careline/reseal"
)

// SealedColumns are the store's sealed columns and their sealing contexts, for
// `careline storage reseal`.
func SealedColumns() []reseal.Column {
	id := []string{"id"}
	byID := func(context func(string) string) func([]string) string {
		return func(v []string) string { return context(v[0]) }
	}
	// An attachment belongs to its message and, through it, to the message's patient.
	attachmentOwner := []string{"message_id", "(SELECT patient_id FROM careline_message WHERE careline_message.id = careline_attachment.message_id)"}
	return []reseal.Column{
		{Table: "careline_patient", Column: "phone_sealed", Key: id, Context: byID(phoneContext)},
		{Table: "careline_patient", Column: "dob_sealed", Key: id, Context: byID(dobContext)},
		{Table: "careline_patient", Column: "consent_how_sealed", Key: id, Context: byID(consentHowContext)},
		{Table: "careline_inbound", Column: "payload_sealed", Key: []string{"message_id"}, With: []string{"patient_id"}, Context: func(v []string) string {
			return inboundContext(v[1], v[0])
		}},
		{Table: "careline_message", Column: "body_sealed", Key: id, With: []string{"patient_id"}, Context: func(v []string) string {
			return bodyContext(v[1], v[0])
		}},
		{Table: "careline_attachment", Column: "name_sealed", Key: id, With: attachmentOwner, Context: func(v []string) string {
			return attachmentNameContext(v[2], v[1], v[0])
		}},
		{Table: "careline_attachment", Column: "data_sealed", Key: id, With: attachmentOwner, Context: func(v []string) string {
			return attachmentContext(v[2], v[1], v[0])
		}},
		{Table: "careline_outbox", Column: "body_sealed", Key: []string{"seq"}, With: []string{"patient_id", "message_id"}, Context: func(v []string) string {
			seq, _ := strconv.ParseInt(v[0], 10, 64)
			return outboxContext(v[1], v[2], seq)
		}},
	}
}

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
	return []reseal.Column{
		{Table: "careline_patient", Column: "phone_sealed", Key: id, Context: byID(phoneContext)},
		{Table: "careline_patient", Column: "dob_sealed", Key: id, Context: byID(dobContext)},
		{Table: "careline_patient", Column: "consent_how_sealed", Key: id, Context: byID(consentHowContext)},
		{Table: "careline_inbound", Column: "payload_sealed", Key: []string{"message_id"}, Context: byID(inboundContext)},
		{Table: "careline_message", Column: "body_sealed", Key: id, Context: byID(bodyContext)},
		{Table: "careline_attachment", Column: "name_sealed", Key: id, Context: byID(attachmentNameContext)},
		{Table: "careline_attachment", Column: "data_sealed", Key: id, Context: byID(attachmentContext)},
		{Table: "careline_outbox", Column: "body_sealed", Key: []string{"seq"}, Context: func(v []string) string {
			seq, _ := strconv.ParseInt(v[0], 10, 64)
			return outboxContext(seq)
		}},
	}
}

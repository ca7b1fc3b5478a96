package schedule

import "github.com/careline/careline/reseal"

// SealedColumns are the sealed scheduled-send columns, for `careline storage reseal`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{
		{Table: "careline_scheduled_send", Column: "payload_sealed", Key: []string{"id"}, With: []string{"patient_id"}, Context: func(v []string) string { return payloadContext(v[1], v[0]) }},
	}
}

package names

import "github.com/careline/careline/reseal"

// SealedColumns are the sealed name columns, for `careline storage reseal`.
func SealedColumns() []reseal.Column {
	key := []string{"patient_id"}
	return []reseal.Column{
		{Table: "careline_patient_name", Column: "first_sealed", Key: key, Context: func(v []string) string { return firstContext(v[0]) }},
		{Table: "careline_patient_name", Column: "last_sealed", Key: key, Context: func(v []string) string { return lastContext(v[0]) }},
	}
}

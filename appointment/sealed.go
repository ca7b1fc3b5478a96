package appointment

import "github.com/careline/careline/reseal"

// SealedColumns are the sealed appointment columns, for `careline storage reseal`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{
		{Table: "careline_appointment", Column: "resource_sealed", Key: []string{"id"}, With: []string{"patient_id"}, Context: func(v []string) string { return resourceContext(v[1], v[0]) }},
		{Table: "careline_patient_reference", Column: "patient_sealed", Key: []string{"reference"}, Context: func(v []string) string { return referenceContext(v[0]) }},
	}
}

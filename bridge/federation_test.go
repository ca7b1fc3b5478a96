package bridge

import "testing"

func TestPatientNameIsMasked(t *testing.T) {
	for template, masked := range map[string]bool{
		"Patient ···{last4}":         true,
		"Patient":                    true,
		"{last4}":                    true,
		"{first_name} ···{last4}":    false,
		"Patient {last_name}":        false,
		"{name}":                     false,
		"Patient ···{last4} {phone}": false,
	} {
		c := &Connector{}
		c.Config.Privacy.PatientName = template
		if got := c.patientNameIsMasked(); got != masked {
			t.Errorf("patientNameIsMasked(%q) = %v, want %v", template, got, masked)
		}
	}
}

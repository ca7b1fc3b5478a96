package fhir

import (
	"encoding/json"
	"testing"
)

// FuzzParseAppointment: any body either parses to a booking with a start and a patient, or is
// refused with a Problem that has a status, an issue code and words; never a panic.
func FuzzParseAppointment(f *testing.F) {
	f.Add([]byte(valid), "a1")
	f.Add([]byte(`{"resourceType":"Appointment","status":"booked","start":"2026-12-01T09:30:00Z","participant":[{"actor":{"reference":"Patient/1"},"status":"accepted"}]}`), "x")
	f.Add([]byte(`{"resourceType":"Appointment","contained":[{"resourceType":"Patient","id":"p","name":"oops"}]}`), "x")
	f.Add([]byte(`[]`), "x")
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		b, err := ParseAppointment(data, id)
		if err != nil {
			p, ok := err.(*Problem)
			if !ok || (p.Status != 400 && p.Status != 422) || p.Code == "" || p.Diagnostics == "" {
				t.Fatalf("refusal %#v is not a complete Problem", err)
			}
			if !json.Valid(p.OperationOutcome()) {
				t.Fatal("the OperationOutcome is not JSON")
			}
			return
		}
		if b.Start.IsZero() || (b.Patient == nil && b.PatientReference == "") || b.ID != id {
			t.Fatalf("accepted without a start or a patient: %+v", b)
		}
		if _, err := Render(data, id, b.Start, "accepted", []ReminderInfo{{At: b.Start, State: "scheduled"}}); err != nil {
			t.Fatalf("an accepted resource does not render: %v", err)
		}
	})
}

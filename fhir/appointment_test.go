package fhir

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const valid = `{
  "resourceType": "Appointment", "id": "a1", "status": "booked",
  "start": "2026-12-01T09:30:00-05:00", "end": "2026-12-01T10:00:00-05:00",
  "extension": [{"url": "http://ehr.example/x", "valueString": "kept"}],
  "contained": [
    {"resourceType": "Patient", "id": "p", "name": [{"use": "official", "family": "Rivera", "given": ["Ana", "M"]}],
     "telecom": [{"system": "phone", "use": "home", "value": "+12025550143"}, {"system": "phone", "use": "mobile", "value": "+1 415 555 0123"}]},
    {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lee", "given": ["Sam"], "prefix": ["Dr."]}]}
  ],
  "participant": [
    {"actor": {"reference": "#p"}, "status": "needs-action"},
    {"actor": {"reference": "#dr"}, "status": "accepted"},
    {"actor": {"reference": "Location/1", "display": "Main St Clinic"}, "status": "accepted"}
  ]
}`

func TestParseValidAppointment(t *testing.T) {
	b, err := ParseAppointment([]byte(valid), "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)
	if !b.Start.Equal(want) {
		t.Errorf("start %v, want %v (the zone must be honoured)", b.Start, want)
	}
	if b.Patient == nil || b.Patient.Mobile != "+1 415 555 0123" || b.Patient.FirstName != "Ana" || b.Patient.LastName != "Rivera" {
		t.Errorf("patient %+v", b.Patient)
	}
	if b.Provider != "Sam Lee" || b.Location != "Main St Clinic" || b.PatientStatus != "needs-action" {
		t.Errorf("provider %q location %q status %q", b.Provider, b.Location, b.PatientStatus)
	}
}

func TestParseReferencedPatient(t *testing.T) {
	body := `{"resourceType":"Appointment","status":"booked","start":"2026-12-01T09:30:00Z",
		"participant":[{"actor":{"reference":"Patient/123"},"status":"accepted"}]}`
	b, err := ParseAppointment([]byte(body), "x")
	if err != nil {
		t.Fatal(err)
	}
	if b.Patient != nil || b.PatientReference != "Patient/123" {
		t.Fatalf("%+v", b)
	}
}

func TestParseRefusals(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(valid, old, new, 1) }
	cases := []struct {
		name, body, id, expression string
		status                     int
	}{
		{"not JSON", "{", "a1", "Appointment", 400},
		{"wrong type", replace(`"resourceType": "Appointment"`, `"resourceType": "Patient"`), "a1", "Appointment.resourceType", 400},
		{"id differs", valid, "other", "Appointment.id", 400},
		{"no start", replace(`"start": "2026-12-01T09:30:00-05:00",`, ``), "a1", "Appointment.start", 400},
		{"start without zone", replace(`09:30:00-05:00`, `09:30:00`), "a1", "Appointment.start", 400},
		{"bad status", replace(`"status": "booked"`, `"status": "done"`), "a1", "Appointment.status", 400},
		{"status wrong type", replace(`"status": "booked"`, `"status": 3`), "a1", "Appointment", 400},
		{"no patient", replace(`{"actor": {"reference": "#p"}, "status": "needs-action"},`, ``), "a1", "Appointment.participant", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAppointment([]byte(c.body), c.id)
			p, ok := err.(*Problem)
			if !ok {
				t.Fatalf("err = %v, want a *Problem", err)
			}
			if p.Status != c.status || p.Expression != c.expression || p.Diagnostics == "" {
				t.Fatalf("got %d %q %q", p.Status, p.Expression, p.Diagnostics)
			}
			var oo struct {
				ResourceType string `json:"resourceType"`
				Issue        []struct {
					Severity, Code, Diagnostics string
					Expression                  []string
				} `json:"issue"`
			}
			if err := json.Unmarshal(p.OperationOutcome(), &oo); err != nil || oo.ResourceType != "OperationOutcome" ||
				len(oo.Issue) != 1 || oo.Issue[0].Severity != "error" || oo.Issue[0].Diagnostics != p.Diagnostics {
				t.Fatalf("OperationOutcome %s", p.OperationOutcome())
			}
		})
	}
	if Unprocessable("x", "y").Status != http.StatusUnprocessableEntity {
		t.Fatal("Unprocessable is not 422")
	}
}

func TestMobilePreference(t *testing.T) {
	got := mobile([]contactPoint{
		{System: "phone", Value: "+1 home"},
		{System: "sms", Value: "+1 sms-2", Rank: 2},
		{System: "sms", Value: "+1 sms-1", Rank: 1},
		{System: "sms", Value: "+1 old", Use: "old"},
		{System: "email", Value: "a@b"},
	})
	if got != "+1 sms-1" {
		t.Fatalf("mobile = %q", got)
	}
	if mobile([]contactPoint{{System: "email", Value: "a@b"}}) != "" {
		t.Fatal("an email address was taken as a mobile number")
	}
}

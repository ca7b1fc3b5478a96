package openapicheck

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

func load(t *testing.T) *Doc {
	data, err := os.ReadFile("../../api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ct(v string) http.Header { return http.Header{"Content-Type": {v}} }

// The validator must catch each way a response can depart from the description.
func TestCheckCatchesDepartures(t *testing.T) {
	d := load(t)
	ok := []struct {
		method, path string
		status       int
		header       http.Header
		body         string
	}{
		{"GET", "/api/v1/messages/msg_1", 200, ct("application/json"), `{"id":"msg_1","status":"read","mode":"secure"}`},
		{"POST", "/api/v1/messages", 202, ct("application/json; charset=utf-8"), `{"id":"m","room_id":"!r:x"}`},
		{"GET", "/fhir/r4/Appointment/a1", 410, ct("application/fhir+json"), `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"deleted"}]}`},
		{"DELETE", "/fhir/r4/Appointment/a1", 204, http.Header{}, ``},
		{"POST", "/api/v1/messages", 429, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"3"}}, `{"error":"slow down"}`},
	}
	for _, c := range ok {
		if _, err := d.Check(c.method, c.path, c.status, c.header, []byte(c.body)); err != nil {
			t.Errorf("%s %s %d: %v", c.method, c.path, c.status, err)
		}
	}
	bad := []struct {
		method, path string
		status       int
		header       http.Header
		body, want   string
	}{
		{"GET", "/api/v1/nothing", 200, ct("application/json"), `{}`, "not in the description"},
		{"GET", "/api/v1/messages/x", 418, ct("application/json"), `{}`, "not described"},
		{"GET", "/api/v1/messages/x", 200, ct("text/plain"), `{}`, "Content-Type"},
		{"GET", "/api/v1/messages/x", 200, ct("application/json"), `{"id":"x","status":"lost","mode":"secure"}`, "is not one of"},
		{"GET", "/api/v1/messages/x", 200, ct("application/json"), `{"id":"x","status":"read"}`, `"mode" missing`},
		{"GET", "/api/v1/messages/x", 200, ct("application/json"), `{"id":"x","status":"read","mode":"secure","body":"hi"}`, "not described"},
		{"GET", "/api/v1/broadcasts/x", 200, ct("application/json"), `{"id":"x","sent":1.5,"skipped":{},"failed":0,"done":true}`, "want integer"},
		{"GET", "/api/v1/broadcasts/x", 200, ct("application/json"), `{"id":"x","sent":1,"skipped":{"opted_out":"2"},"failed":0,"done":true}`, "want integer"},
		{"POST", "/api/v1/messages", 429, ct("application/json"), `{"error":"x"}`, "Retry-After"},
		{"DELETE", "/fhir/r4/Appointment/a1", 204, http.Header{}, `x`, "a body where none"},
		{"GET", "/fhir/r4/Appointment/a1", 200, ct("application/fhir+json"), `{"resourceType":"Appointment","status":"booked","participant":[]}`, "fewer than"},
		{"GET", "/fhir/r4/Appointment/a1", 200, ct("application/fhir+json"), `{"resourceType":"Appointment","status":"booked","start":"tomorrow","participant":[{"status":"accepted"}]}`, "date-time"},
	}
	for _, c := range bad {
		_, err := d.Check(c.method, c.path, c.status, c.header, []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s %d %s: got %v, want an error with %q", c.method, c.path, c.status, c.body, err, c.want)
		}
	}
}

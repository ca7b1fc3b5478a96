// Package fhir reads the HL7 FHIR R4 resources careline accepts from an EHR (Appointment, with
// its Patient, Practitioner and Location) and writes the OperationOutcome that explains a refusal.
package fhir

import (
	"encoding/json"
	"net/http"
)

// ContentType is FHIR's JSON media type.
const ContentType = "application/fhir+json"

// Problem is a refusal: the HTTP status and the one issue an OperationOutcome reports.
type Problem struct {
	Status      int    // 400 not a valid resource, 422 valid but careline cannot act on it, 404, 410
	Code        string // FHIR issue type: invalid, required, value, business-rule, not-found, deleted
	Diagnostics string // what is wrong, in words an integrator can act on
	Expression  string // FHIRPath of the element at fault, e.g. "Appointment.start"
}

func (p *Problem) Error() string { return p.Diagnostics }

func invalid(expression, diagnostics string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: "invalid", Diagnostics: diagnostics, Expression: expression}
}

func required(expression, diagnostics string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Code: "required", Diagnostics: diagnostics, Expression: expression}
}

// Unprocessable is a valid resource careline cannot act on (FHIR's business-rule issue).
func Unprocessable(expression, diagnostics string) *Problem {
	return &Problem{Status: http.StatusUnprocessableEntity, Code: "business-rule", Diagnostics: diagnostics, Expression: expression}
}

// OperationOutcome renders p as a FHIR R4 OperationOutcome.
func (p *Problem) OperationOutcome() []byte {
	issue := map[string]any{"severity": "error", "code": p.Code, "diagnostics": p.Diagnostics}
	if p.Expression != "" {
		issue["expression"] = []string{p.Expression}
	}
	data, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []any{issue}})
	return data
}

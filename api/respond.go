package api

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/careline/careline/fhir"
)

// maxBody bounds a request body: a message, a broadcast of many numbers, or an Appointment.
const maxBody = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": "what is wrong"}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

type fhirProblem struct {
	status            int
	code, diagnostics string
}

func writeOutcome(w http.ResponseWriter, p *fhirProblem) {
	writeFHIRProblem(w, &fhir.Problem{Status: p.status, Code: p.code, Diagnostics: p.diagnostics})
}

func writeFHIRProblem(w http.ResponseWriter, p *fhir.Problem) {
	writeFHIR(w, p.Status, p.OperationOutcome())
}

func writeFHIR(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", fhir.ContentType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody reads a request body of an accepted media type, or says what is wrong.
func readBody(r *http.Request, types ...string) ([]byte, int, string) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	accepted := false
	for _, t := range types {
		accepted = accepted || (err == nil && strings.EqualFold(mediaType, t))
	}
	if !accepted {
		return nil, http.StatusUnsupportedMediaType, "the body must be sent as " + strings.Join(types, " or ")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, http.StatusBadRequest, "the body could not be read"
	}
	if len(data) > maxBody {
		return nil, http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB"
	}
	return data, 0, ""
}

// decodeStrict decodes a JSON object, refusing unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errTrailing
	}
	return nil
}

type trailingError struct{}

func (trailingError) Error() string { return "the body has data after the JSON object" }

var errTrailing = trailingError{}

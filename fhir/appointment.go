package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Appointment statuses (R4 value set appointmentstatus).
var statuses = []string{"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
	"entered-in-error", "checked-in", "waitlist"}

// Cancelled reports whether status withdraws an appointment's reminders.
func Cancelled(status string) bool {
	return status == "cancelled" || status == "noshow" || status == "entered-in-error"
}

// idPattern is FHIR's id type: 1 to 64 of A-Z a-z 0-9 - .
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ValidID reports whether id is a FHIR logical id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

type reference struct {
	Reference string `json:"reference"`
	Display   string `json:"display"`
}

type participant struct {
	Actor  *reference `json:"actor"`
	Status string     `json:"status"`
}

type appointmentJSON struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	Start        *string           `json:"start"`
	Participant  []participant     `json:"participant"`
	Contained    []json.RawMessage `json:"contained"`
}

type humanName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

type contactPoint struct {
	System string `json:"system"`
	Value  string `json:"value"`
	Use    string `json:"use"`
	Rank   int    `json:"rank"`
}

type resourceJSON struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Name         json.RawMessage `json:"name"` // HumanName[] for Patient/Practitioner, string for Location
	Telecom      []contactPoint  `json:"telecom"`
}

// Patient is what careline needs of the appointment's patient.
type Patient struct {
	Mobile    string // as the EHR wrote it; "" when there is none
	FirstName string
	LastName  string
}

// Booking is an Appointment as careline acts on it.
type Booking struct {
	ID       string
	Status   string
	Start    time.Time // keeps the zone the EHR wrote; shown to patients in the clinic's zone
	Patient  *Patient  // nil when the Patient is referenced, not contained (see PatientReference)
	Provider string    // practitioner's name, for {provider}; "" if none
	Location string    // location's name, for {location}; "" if none
	// PatientReference is the Patient participant's reference unless it points into contained
	// ("Patient/123"): a later appointment may refer to a patient careline knows by it alone.
	PatientReference string
	// PatientStatus is the Patient participant's status as the EHR sent it.
	PatientStatus string
}

// ParseAppointment reads an Appointment for PUT /fhir/r4/Appointment/{id}. Fields careline does
// not use are accepted and kept by the caller as they were sent.
func ParseAppointment(data []byte, id string) (*Booking, error) {
	var a appointmentJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&a); err != nil {
		return nil, invalid("Appointment", "the body is not a JSON Appointment resource: "+jsonProblem(err))
	}
	if dec.More() {
		return nil, invalid("Appointment", "the body has more than one JSON value")
	}
	if a.ResourceType != "Appointment" {
		return nil, invalid("Appointment.resourceType", fmt.Sprintf("resourceType is %q, not \"Appointment\"", a.ResourceType))
	}
	if a.ID != "" && a.ID != id {
		return nil, invalid("Appointment.id", fmt.Sprintf("the resource's id %q differs from the id in the URL %q", a.ID, id))
	}
	if a.Status == "" {
		return nil, required("Appointment.status", "status is required (booked, cancelled, noshow, …)")
	}
	if !slices.Contains(statuses, a.Status) {
		return nil, invalid("Appointment.status", fmt.Sprintf("status %q is not an R4 appointment status (%s)", a.Status, strings.Join(statuses, ", ")))
	}
	if a.Start == nil || *a.Start == "" {
		return nil, required("Appointment.start", "start is required: careline times reminders from it")
	}
	start, err := parseInstant(*a.Start)
	if err != nil {
		return nil, invalid("Appointment.start", err.Error())
	}
	if len(a.Participant) == 0 {
		return nil, required("Appointment.participant", "participant is required and must include the Patient")
	}
	contained := map[string]resourceJSON{}
	for i, raw := range a.Contained {
		var r resourceJSON
		if err := json.Unmarshal(raw, &r); err != nil || r.ResourceType == "" {
			return nil, invalid(fmt.Sprintf("Appointment.contained[%d]", i), "a contained resource is not a FHIR resource with a resourceType")
		}
		contained[r.ID] = r
	}
	b := &Booking{ID: id, Status: a.Status, Start: start}
	for i, p := range a.Participant {
		where := fmt.Sprintf("Appointment.participant[%d]", i)
		if p.Status == "" {
			return nil, required(where+".status", "every participant needs a status (accepted, declined, tentative, needs-action)")
		}
		if p.Actor == nil {
			continue
		}
		kind, local, ok := target(p.Actor.Reference, contained)
		switch {
		case kind == "Patient":
			if b.Patient != nil || b.PatientReference != "" {
				return nil, invalid(where, "the Appointment has more than one Patient participant")
			}
			b.PatientStatus = p.Status
			if !strings.HasPrefix(p.Actor.Reference, "#") {
				b.PatientReference = p.Actor.Reference
			}
			if ok {
				b.Patient, err = readPatient(local, where)
				if err != nil {
					return nil, err
				}
			}
		case kind == "Practitioner" || kind == "PractitionerRole":
			if b.Provider == "" {
				b.Provider = displayName(p.Actor.Display, local, ok)
			}
		case kind == "Location":
			if b.Location == "" {
				b.Location = displayName(p.Actor.Display, local, ok)
			}
		}
	}
	if b.Patient == nil && b.PatientReference == "" {
		return nil, required("Appointment.participant", "no participant is a Patient (actor.reference \"#id\" of a contained Patient, or \"Patient/id\")")
	}
	return b, nil
}

// target resolves a reference to the resource type it names and, for a contained resource,
// the resource itself. "Patient/123" is also matched against a contained Patient with id 123.
func target(ref string, contained map[string]resourceJSON) (string, resourceJSON, bool) {
	if local, found := strings.CutPrefix(ref, "#"); found {
		r, ok := contained[local]
		return r.ResourceType, r, ok
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return "", resourceJSON{}, false
	}
	kind, id := parts[len(parts)-2], parts[len(parts)-1]
	if r, ok := contained[id]; ok && r.ResourceType == kind {
		return kind, r, true
	}
	return kind, resourceJSON{}, false
}

func readPatient(r resourceJSON, where string) (*Patient, error) {
	p := &Patient{Mobile: mobile(r.Telecom)}
	if len(r.Name) > 0 && string(r.Name) != "null" {
		var names []humanName
		if err := json.Unmarshal(r.Name, &names); err != nil {
			return nil, invalid(where, "the Patient's name is not a list of HumanName")
		}
		p.FirstName, p.LastName = pickName(names)
	}
	return p, nil
}

// mobile picks the number to text: an "sms" contact, else a phone marked mobile, else any
// current phone, lowest rank first.
func mobile(telecom []contactPoint) string {
	best, bestScore, bestRank := "", 0, 0
	for _, t := range telecom {
		score := 0
		switch {
		case strings.TrimSpace(t.Value) == "" || t.Use == "old":
		case t.System == "sms":
			score = 3
		case t.System == "phone" && t.Use == "mobile":
			score = 2
		case t.System == "phone":
			score = 1
		}
		rank := t.Rank
		if rank <= 0 {
			rank = 1 << 30 // unranked comes after ranked
		}
		if score > bestScore || (score == bestScore && score > 0 && rank < bestRank) {
			best, bestScore, bestRank = t.Value, score, rank
		}
	}
	return best
}

func pickName(names []humanName) (first, last string) {
	if len(names) == 0 {
		return "", ""
	}
	n := names[0]
	for _, candidate := range names {
		if candidate.Use == "usual" || candidate.Use == "official" {
			n = candidate
			break
		}
	}
	if len(n.Given) > 0 {
		first = n.Given[0]
	}
	last = n.Family
	if first == "" && last == "" && n.Text != "" {
		first, last, _ = strings.Cut(n.Text, " ")
	}
	return strings.TrimSpace(first), strings.TrimSpace(last)
}

// displayName is a practitioner's or location's name: the reference's display, else the
// contained resource's name.
func displayName(display string, r resourceJSON, ok bool) string {
	if display != "" || !ok || len(r.Name) == 0 {
		return strings.TrimSpace(display)
	}
	var s string
	if json.Unmarshal(r.Name, &s) == nil {
		return strings.TrimSpace(s)
	}
	var names []humanName
	if json.Unmarshal(r.Name, &names) == nil && len(names) > 0 {
		if names[0].Text != "" {
			return names[0].Text
		}
		if first, last := pickName(names); last != "" {
			return strings.TrimSpace(first + " " + last)
		}
	}
	return ""
}

// parseInstant reads a FHIR instant. A time without a zone is refused: reminders would go out
// at the wrong hour.
func parseInstant(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		return t, nil
	}
	if _, err2 := time.Parse("2006-01-02T15:04:05", strings.SplitN(s, ".", 2)[0]); err2 == nil {
		return time.Time{}, fmt.Errorf("start %q has no time zone: add Z or an offset such as -05:00", s)
	}
	return time.Time{}, fmt.Errorf("start %q is not a FHIR instant such as 2026-12-01T09:30:00-05:00", s)
}

func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("%s must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return "invalid JSON"
}

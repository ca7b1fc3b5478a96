package fhir

import (
	"encoding/json"
	"strings"
	"time"
)

// ReminderExtension is the URL of the extension that lists an appointment's reminders on GET.
const ReminderExtension = "https://github.com/careline/careline/fhir/StructureDefinition/reminder"

// ReminderInfo is one reminder as GET shows it.
type ReminderInfo struct {
	At    time.Time
	State string // scheduled, sent, withdrawn, skipped, not_sent
}

// Render returns the Appointment as careline holds it: the resource as the EHR sent it (fields
// careline does not use included), with its id, meta.lastUpdated, the Patient participant's
// status set to the patient's answer (when there is one) and careline's reminders as extensions.
func Render(resource []byte, id string, updated time.Time, answer string, reminders []ReminderInfo) ([]byte, error) {
	var r map[string]any
	if err := json.Unmarshal(resource, &r); err != nil {
		return nil, err
	}
	r["id"] = id
	meta, _ := r["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["lastUpdated"] = updated.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	r["meta"] = meta
	if answer != "" {
		setPatientStatus(r, answer)
	}
	var kept []any
	if old, ok := r["extension"].([]any); ok {
		for _, e := range old {
			if m, ok := e.(map[string]any); ok && m["url"] == ReminderExtension {
				continue
			}
			kept = append(kept, e)
		}
	}
	for _, rem := range reminders {
		kept = append(kept, map[string]any{
			"url": ReminderExtension,
			"extension": []any{
				map[string]any{"url": "at", "valueDateTime": rem.At.UTC().Format(time.RFC3339)},
				map[string]any{"url": "state", "valueCode": rem.State},
			},
		})
	}
	if len(kept) > 0 {
		r["extension"] = kept
	}
	return json.Marshal(r)
}

// setPatientStatus sets the status of the participant whose actor is the Patient.
func setPatientStatus(r map[string]any, status string) {
	kinds := map[string]string{}
	if contained, ok := r["contained"].([]any); ok {
		for _, c := range contained {
			if m, ok := c.(map[string]any); ok {
				id, _ := m["id"].(string)
				kind, _ := m["resourceType"].(string)
				kinds[id] = kind
			}
		}
	}
	participants, _ := r["participant"].([]any)
	for _, p := range participants {
		m, ok := p.(map[string]any)
		if !ok {
			continue
		}
		actor, _ := m["actor"].(map[string]any)
		ref, _ := actor["reference"].(string)
		local, isLocal := strings.CutPrefix(ref, "#")
		if (isLocal && kinds[local] == "Patient") || (!isLocal && referenceKind(ref) == "Patient") {
			m["status"] = status
			return
		}
	}
}

func referenceKind(ref string) string {
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
}

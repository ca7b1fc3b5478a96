package portal

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/locale"
)

// Appointment is an appointment whose reminder awaits the patient's answer.
type Appointment struct {
	ID       string
	When     string // in the clinic's time zone, for people: "Tue, Dec 1 at 9:30 AM"
	Provider string
	Location string
}

// AppointmentBackend is implemented by a Backend that sends appointment reminders; the thread
// page then shows the appointment awaiting an answer with Confirm and Cancel buttons.
type AppointmentBackend interface {
	AwaitingAppointment(ctx context.Context, patientID string) (*Appointment, error) // nil if none
	// AnswerAppointment records the answer; false when the appointment no longer awaits one.
	AnswerAppointment(ctx context.Context, patientID, appointmentID string, confirm bool) (bool, error)
}

type viewAppointment struct {
	Appointment
	Heading, When, With, At string
}

// appointmentCard is the appointment awaiting this patient's answer, or nil.
func (p *Portal) appointmentCard(ctx context.Context, patientID string, l *locale.Printer) *viewAppointment {
	ab, ok := p.backend.(AppointmentBackend)
	if !ok {
		return nil
	}
	a, err := ab.AwaitingAppointment(ctx, patientID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Str("patient_id", patientID).Msg("Failed to load the appointment awaiting an answer")
		return nil
	} else if a == nil {
		return nil
	}
	v := &viewAppointment{Appointment: *a, When: l.T("appointment.when", a.When)}
	if a.Provider != "" {
		v.With = l.T("appointment.with", a.Provider)
	}
	if a.Location != "" {
		v.At = l.T("appointment.at", a.Location)
	}
	return v
}

// answerAppointment: POST /appointment/answer with appointment=ID and answer=confirm|cancel.
func (p *Portal) answerAppointment(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", s.patientID).Logger()
	ab, ok := p.backend.(AppointmentBackend)
	answer := r.PostFormValue("answer")
	id := r.PostFormValue("appointment")
	if !ok || (answer != "confirm" && answer != "cancel") || id == "" || len(id) > 64 {
		p.renderSimple(w, r, http.StatusBadRequest, "forbidden")
		return
	}
	answered, err := ab.AnswerAppointment(ctx, s.patientID, id, answer == "confirm")
	if err != nil {
		log.Err(err).Msg("Failed to record the patient's answer to an appointment")
		p.renderError(w, r)
		return
	}
	result := "gone"
	if answered {
		result = map[bool]string{true: "confirmed", false: "cancelled"}[answer == "confirm"]
	}
	log.Info().Str("appointment", id).Str("result", result).Msg("Portal appointment answer")
	http.Redirect(w, r, "/thread?appointment="+result, http.StatusSeeOther)
}

// appointmentNotice is the thread page's notice after an answer.
func appointmentNotice(l *locale.Printer, result string) string {
	switch result {
	case "confirmed", "cancelled", "gone":
		return l.T("appointment." + result)
	}
	return ""
}

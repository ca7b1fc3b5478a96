package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/careline/careline/appointment"
	"github.com/careline/careline/fhir"
)

// rememberedPatient is what careline keeps of a Patient the EHR may later only refer to.
type rememberedPatient struct {
	Mobile    string `json:"mobile"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// appointmentPut: PUT /fhir/r4/Appointment/{id} creates (201) or updates (200).
func (s *Server) appointmentPut(w http.ResponseWriter, r *http.Request, c *call) {
	ctx := r.Context()
	id := r.PathValue("id")
	c.detail = "appointment " + id
	if !fhir.ValidID(id) {
		writeFHIRProblem(w, &fhir.Problem{Status: http.StatusBadRequest, Code: "invalid", Expression: "Appointment.id",
			Diagnostics: "the id in the URL is not a FHIR id (1 to 64 letters, digits, '-' or '.')"})
		return
	}
	data, status, problem := readBody(r, fhir.ContentType, "application/json")
	if status != 0 {
		writeOutcome(w, &fhirProblem{status: status, code: "invalid", diagnostics: problem})
		return
	}
	booking, err := fhir.ParseAppointment(data, id)
	if err != nil {
		writeFHIRProblem(w, asProblem(err))
		return
	}
	patient, perr := s.patientOf(r, booking)
	if perr != nil {
		writeFHIRProblem(w, perr)
		return
	}
	// Checked before the patient is recorded: a refused request changes nothing.
	existing, err := s.appointments.Get(ctx, id)
	if err != nil {
		s.fhirUnavailable(w, r, err)
		return
	}
	isNew := existing == nil || !existing.DeletedAt.IsZero()
	if isNew && !fhir.Cancelled(booking.Status) && !booking.Start.After(s.cfg.Now()) {
		writeFHIRProblem(w, fhir.Unprocessable("Appointment.start", fmt.Sprintf(
			"a new booking that already started (%s) gets no reminders; updates and cancellations of past appointments are accepted",
			booking.Start.Format("2006-01-02T15:04:05Z07:00"))))
		return
	}
	patientID, err := s.backend.PatientID(ctx, patient.Mobile, patient.FirstName, patient.LastName)
	var refusal *Refusal
	if errors.As(err, &refusal) {
		writeFHIRProblem(w, fhir.Unprocessable("Appointment.participant", "the Patient's mobile number cannot receive texts: "+refusal.Message))
		return
	} else if err != nil {
		s.fhirUnavailable(w, r, err)
		return
	}
	c.patientID = patientID
	a := &appointment.Appointment{ID: id, PatientID: patientID, Status: booking.Status, Start: booking.Start, Resource: data}
	created, err := s.appointments.Put(ctx, a, s.cfg.ReminderOffsets)
	if err != nil {
		s.fhirUnavailable(w, r, err)
		return
	}
	if booking.PatientReference != "" && booking.Patient != nil {
		remembered := rememberedPatient{Mobile: patient.Mobile, FirstName: patient.FirstName, LastName: patient.LastName}
		if err = s.appointments.RememberPatient(ctx, booking.PatientReference, remembered); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Could not remember the appointment's patient reference")
		}
	}
	s.backend.AppointmentChanged(ctx, c.token, a, created)
	status = http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/fhir/r4/Appointment/"+id)
	}
	s.writeAppointment(w, r, a, status)
}

// patientOf finds the appointment's patient: contained, or referenced and known from before.
func (s *Server) patientOf(r *http.Request, b *fhir.Booking) (*rememberedPatient, *fhir.Problem) {
	p := &rememberedPatient{}
	if b.Patient != nil {
		p.Mobile, p.FirstName, p.LastName = b.Patient.Mobile, b.Patient.FirstName, b.Patient.LastName
	} else {
		known, err := s.appointments.RecallPatient(r.Context(), b.PatientReference, p)
		if err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Could not look up a patient reference")
			return nil, &fhir.Problem{Status: http.StatusServiceUnavailable, Code: "transient", Diagnostics: "careline cannot read its database right now; try again"}
		}
		if !known {
			return nil, fhir.Unprocessable("Appointment.participant", fmt.Sprintf(
				"no mobile number: careline does not know %s; include the Patient (with telecom) as a contained resource", b.PatientReference))
		}
	}
	if p.Mobile == "" {
		return nil, fhir.Unprocessable("Appointment.participant", "no mobile number: the Patient has no telecom with system sms, or phone with use mobile")
	}
	return p, nil
}

// appointmentGet: GET /fhir/r4/Appointment/{id}.
func (s *Server) appointmentGet(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	c.detail = "appointment " + id
	a, err := s.appointments.Get(r.Context(), id)
	switch {
	case err != nil:
		s.fhirUnavailable(w, r, err)
	case a == nil:
		writeOutcome(w, &fhirProblem{status: http.StatusNotFound, code: "not-found", diagnostics: "there is no Appointment " + id})
	case !a.DeletedAt.IsZero():
		c.patientID = a.PatientID
		writeOutcome(w, &fhirProblem{status: http.StatusGone, code: "deleted", diagnostics: "Appointment " + id + " was deleted; its reminders were withdrawn"})
	default:
		c.patientID = a.PatientID
		s.writeAppointment(w, r, a, http.StatusOK)
	}
}

// appointmentDelete: DELETE /fhir/r4/Appointment/{id} cancels it and withdraws its reminders.
func (s *Server) appointmentDelete(w http.ResponseWriter, r *http.Request, c *call) {
	ctx := r.Context()
	id := r.PathValue("id")
	c.detail = "appointment " + id
	a, err := s.appointments.Get(ctx, id)
	if err != nil {
		s.fhirUnavailable(w, r, err)
		return
	} else if a == nil {
		writeOutcome(w, &fhirProblem{status: http.StatusNotFound, code: "not-found", diagnostics: "there is no Appointment " + id})
		return
	}
	c.patientID = a.PatientID
	if a.DeletedAt.IsZero() {
		if _, err = s.appointments.Delete(ctx, id); err != nil {
			s.fhirUnavailable(w, r, err)
			return
		}
		if a, err = s.appointments.Get(ctx, id); err == nil && a != nil {
			s.backend.AppointmentChanged(ctx, c.token, a, false)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) writeAppointment(w http.ResponseWriter, r *http.Request, a *appointment.Appointment, status int) {
	var reminders []fhir.ReminderInfo
	for _, rem := range a.Reminders {
		reminders = append(reminders, fhir.ReminderInfo{At: rem.DueAt, State: rem.State})
	}
	body, err := fhir.Render(a.Resource, a.ID, a.UpdatedAt, a.Answer, reminders)
	if err != nil {
		s.fhirUnavailable(w, r, err)
		return
	}
	writeFHIR(w, status, body)
}

func (s *Server) fhirUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	zerolog.Ctx(r.Context()).Err(err).Msg("FHIR request failed")
	writeOutcome(w, &fhirProblem{status: http.StatusServiceUnavailable, code: "transient", diagnostics: "careline could not complete the request; nothing was changed, try again"})
}

func asProblem(err error) *fhir.Problem {
	var p *fhir.Problem
	if errors.As(err, &p) {
		return p
	}
	return &fhir.Problem{Status: http.StatusBadRequest, Code: "invalid", Diagnostics: err.Error()}
}

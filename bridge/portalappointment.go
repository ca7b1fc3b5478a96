package bridge

import (
	"context"

	"github.com/careline/careline/appointment"
	"github.com/careline/careline/fhir"
	"github.com/careline/careline/portal"
)

var _ portal.AppointmentBackend = (*portalBackend)(nil)

// AwaitingAppointment is the appointment whose reminder awaits this patient's answer.
func (b *portalBackend) AwaitingAppointment(ctx context.Context, patientID string) (*portal.Appointment, error) {
	c := b.c
	if c.integration == nil {
		return nil, nil
	}
	a, err := c.integration.appointments.Awaiting(ctx, patientID)
	if err != nil || a == nil {
		return nil, err
	}
	out := &portal.Appointment{ID: a.ID, When: c.appointmentTime(a.Start)}
	if booking, err := fhir.ParseAppointment(a.Resource, a.ID); err == nil {
		out.Provider, out.Location = booking.Provider, booking.Location
	}
	return out, nil
}

// AnswerAppointment records the answer the patient gave with the portal's buttons: the same
// notice, participant status and webhook as a reply of 1 or 2 by SMS.
func (b *portalBackend) AnswerAppointment(ctx context.Context, patientID, appointmentID string, confirm bool) (bool, error) {
	c := b.c
	if c.integration == nil {
		return false, nil
	}
	a, err := c.integration.appointments.Get(ctx, appointmentID)
	if err != nil || a == nil || a.PatientID != patientID {
		return false, err
	}
	answer := appointment.Declined
	if confirm {
		answer = appointment.Accepted
	}
	return c.recordAnswer(ctx, a, answer, "portal"), nil
}

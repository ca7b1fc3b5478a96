package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/api"
	"github.com/careline/careline/appointment"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/fhir"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/token"
	"github.com/careline/careline/webhookout"
)

// PatientID finds or records the clinic's patient for an appointment's mobile number.
func (b *apiBackend) PatientID(ctx context.Context, number, firstName, lastName string) (string, error) {
	c := b.c
	cl := c.apiClient()
	if cl == nil {
		return "", errNoLogin
	}
	e164, err := phone.Normalize(number, c.Config.DefaultRegion)
	if err != nil {
		return "", api.Refuse(err.Error())
	}
	patientID := c.patientID(cl.login.ID, e164)
	if _, err = c.Store.GetOrCreatePatient(ctx, patientID, string(cl.login.ID), e164); err != nil {
		return "", err
	}
	return patientID, nil
}

// AppointmentChanged wakes the reminder loop and tells staff in the patient's room, if it
// exists, what changed.
func (b *apiBackend) AppointmentChanged(ctx context.Context, integration string, a *appointment.Appointment, created bool) {
	c := b.c
	c.integration.reminders.Wake()
	cl := c.apiClient()
	if cl == nil {
		return
	}
	portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, a.PatientID))
	if err != nil || portal == nil || portal.MXID == "" {
		return
	}
	when := c.appointmentTime(a.Start)
	var text string
	switch {
	case a.Cancelled():
		text = fmt.Sprintf("📅 Appointment %s on %s was cancelled by the integration %q; reminders not yet sent are withdrawn.", a.ID, when, integration)
	case created:
		text = fmt.Sprintf("📅 Appointment %s on %s was booked by the integration %q. Reminders: %s.", a.ID, when, integration, c.reminderPlan(a))
	default:
		text = fmt.Sprintf("📅 Appointment %s was updated by the integration %q: now %s. Reminders: %s.", a.ID, integration, when, c.reminderPlan(a))
	}
	c.sendNotice(ctx, portal, text, "")
}

// reminderPlan lists when the reminders go, in the clinic's time zone.
func (c *Connector) reminderPlan(a *appointment.Appointment) string {
	var parts []string
	for _, r := range a.Reminders {
		switch r.State {
		case appointment.Scheduled:
			parts = append(parts, c.appointmentTime(r.DueAt))
		case appointment.Sent:
			parts = append(parts, "sent "+c.appointmentTime(r.SentAt))
		}
	}
	if len(parts) == 0 {
		return "none (their times have passed)"
	}
	return strings.Join(parts, ", ")
}

// appointmentTime is a time for people, in the clinic's time zone: "Tue, Dec 1 at 9:30 AM".
func (c *Connector) appointmentTime(t time.Time) string {
	local := t.In(c.clinicLocation())
	return local.Format("Mon, Jan 2") + " at " + local.Format("3:04 PM")
}

// reminderValues are the template values of an appointment's reminder.
func (c *Connector) reminderValues(ctx context.Context, a *appointment.Appointment) (map[string]string, error) {
	booking, err := fhir.ParseAppointment(a.Resource, a.ID)
	if err != nil {
		return nil, err
	}
	local := a.Start.In(c.clinicLocation())
	values := map[string]string{
		"clinic":   c.Config.ClinicName,
		"date":     local.Format("Mon, Jan 2"),
		"time":     local.Format("3:04 PM"),
		"provider": booking.Provider,
		"location": booking.Location,
	}
	if booking.Patient != nil {
		values["first_name"], values["last_name"] = booking.Patient.FirstName, booking.Patient.LastName
	} else {
		var remembered struct {
			FirstName string `json:"first_name"`
			LastName  string `json:"last_name"`
		}
		if _, err := c.integration.appointments.RecallPatient(ctx, booking.PatientReference, &remembered); err != nil {
			return nil, err
		}
		values["first_name"], values["last_name"] = remembered.FirstName, remembered.LastName
	}
	return values, nil
}

// SendReminder sends one appointment reminder through the reminder template.
func (b *apiBackend) SendReminder(ctx context.Context, due *appointment.Due, mark func(context.Context, string) error) error {
	c := b.c
	a := due.Appointment
	cl := c.apiClient()
	if cl == nil {
		return errors.New("no clinic number is connected")
	}
	patient, err := c.Store.GetPatient(ctx, a.PatientID)
	if err != nil {
		return err
	} else if patient == nil {
		return fmt.Errorf("%w: the appointment's patient is not on file", appointment.ErrNotSendable)
	}
	values, err := c.reminderValues(ctx, a)
	if err != nil {
		return err
	}
	body, sensitive, err := c.renderTemplate(c.Config.Reminders.Template, values)
	var refusal *api.Refusal
	if errors.As(err, &refusal) {
		return fmt.Errorf("%w: %s", appointment.ErrNotSendable, refusal.Message)
	} else if err != nil {
		return err
	}
	messageID := "rem_" + token.New()[:22]
	_, err = cl.sendSystemMessage(ctx, patient, &systemMessage{
		ID: messageID, Body: body, Plain: !sensitive,
		Via:     fmt.Sprintf("an appointment reminder (%s before appointment %s)", formatOffset(due.Offset), a.ID),
		Actor:   "system",
		Action:  "reminder.sent",
		Detail:  fmt.Sprintf("appointment %s, reminder %s before, message %s", a.ID, formatOffset(due.Offset), messageID),
		OnSaved: func(ctx context.Context) error { return mark(ctx, messageID) },
	})
	if errors.Is(err, errOptedOut) {
		return fmt.Errorf("%w: %v", appointment.ErrNotSendable, err)
	}
	return err
}

// ReminderNotSent tells staff in the patient's room why a reminder did not go.
func (b *apiBackend) ReminderNotSent(ctx context.Context, due *appointment.Due, reason error) {
	c := b.c
	zerolog.Ctx(ctx).Warn().Str("appointment", due.Appointment.ID).Err(reason).Msg("Appointment reminder not sent")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "reminder.not_sent", PatientID: due.Appointment.PatientID,
		Detail: fmt.Sprintf("appointment %s, reminder %s before", due.Appointment.ID, formatOffset(due.Offset))})
	cl := c.apiClient()
	if cl == nil {
		return
	}
	portal, err := cl.patientRoom(ctx, due.Appointment.PatientID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not open the patient's room to say a reminder was not sent")
		return
	}
	if errors.Is(reason, errOptedOut) {
		return // sendSystemMessage already told staff
	}
	c.sendNotice(ctx, portal, fmt.Sprintf("⚠️ The reminder for appointment %s on %s was not sent: %s. Contact the patient another way, or fix the appointment in the EHR.",
		due.Appointment.ID, c.appointmentTime(due.Appointment.Start), strings.TrimPrefix(reason.Error(), appointment.ErrNotSendable.Error()+": ")), "")
}

// answerReminder handles an SMS that is exactly 1 or 2 from a patient with a reminder awaiting
// an answer. It reports whether the text was an answer; the text is bridged either way.
func (c *Connector) answerReminder(ctx context.Context, patientID, body, via string) bool {
	if c.integration == nil {
		return false
	}
	answer := ""
	switch strings.TrimSpace(body) {
	case "1":
		answer = appointment.Accepted
	case "2":
		answer = appointment.Declined
	default:
		return false
	}
	a, err := c.integration.appointments.Awaiting(ctx, patientID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not look for a reminder awaiting an answer")
		return false
	} else if a == nil {
		return false
	}
	return c.recordAnswer(ctx, a, answer, via)
}

// recordAnswer stores a patient's answer with its outgoing webhook, then tells staff.
func (c *Connector) recordAnswer(ctx context.Context, a *appointment.Appointment, answer, via string) bool {
	in := c.integration
	answered := false
	eventType := "appointment.confirmed"
	if answer == appointment.Declined {
		eventType = "appointment.declined"
	}
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		var err error
		if answered, err = in.appointments.Answer(ctx, a.ID, a.PatientID, answer, via); err != nil || !answered {
			return err
		}
		return in.webhooks.Add(ctx, webhookout.Event{Type: eventType, AppointmentID: a.ID, AnsweredVia: via})
	})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Str("appointment", a.ID).Msg("Could not record the patient's answer to a reminder")
		return false
	}
	if !answered {
		return false
	}
	in.webhooks.Wake() // the event is committed now
	c.audit(ctx, audit.Entry{Actor: patientActor(a.PatientID), Action: eventType, PatientID: a.PatientID, Channel: via,
		Detail: "appointment " + a.ID})
	zerolog.Ctx(ctx).Info().Str("appointment", a.ID).Str("answer", answer).Str("via", via).Msg("Patient answered an appointment reminder")
	if cl := c.apiClient(); cl != nil {
		if portal, err := cl.patientRoom(ctx, a.PatientID); err == nil {
			what, how := "✅ The patient confirmed", "replied 1 by SMS"
			if answer == appointment.Declined {
				what, how = "❌ The patient cancelled", "replied 2 by SMS"
			}
			if via == "portal" {
				how = "in the portal"
			}
			c.sendNotice(ctx, portal, fmt.Sprintf("%s appointment %s on %s (%s). The EHR is told by webhook; the appointment itself is not changed.",
				what, a.ID, c.appointmentTime(a.Start), how), "")
		}
	}
	return true
}

func formatOffset(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

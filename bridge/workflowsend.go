package bridge

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/config"
	"github.com/careline/careline/store"
	"github.com/careline/careline/template"
)

// workflowText is a text a workflow sends to a patient on behalf of the clinic: a template, a
// scheduled text, a broadcast. It goes the way a staff message goes: stored, sealed, through
// the outbox, by secure link unless it may go plain.
type workflowText struct {
	Body       string
	MarkPlain  bool   // non-sensitive (a template marked sensitive: false, or !plain)
	SenderName string // how the patient sees the sender: "Nurse Lee, Sunrise Clinic"
	RoomID     id.RoomID
	EventID    id.EventID // the room's copy, for delivery statuses
	MXSender   id.UserID
}

// queueToPatient stores and enqueues a workflow text. It only writes to the database, so it
// can run inside the transaction that records why it was sent (a scheduled send, a broadcast
// target); the caller wakes the sender after the commit. It returns the message and the mode.
func (cl *Client) queueToPatient(ctx context.Context, patient *store.Patient, wt workflowText) (*store.Message, string, error) {
	c := cl.connector
	mode := c.deliveryMode(patient, wt.MarkPlain, false)
	channel := store.ChannelSecure
	if mode == config.ModePlain {
		channel = store.ChannelSMS
	}
	m := &store.Message{
		ID: newMessageID(), PatientID: patient.ID, Channel: channel, SenderName: wt.SenderName, Body: wt.Body,
		RoomID: wt.RoomID, EventID: wt.EventID, MXSender: wt.MXSender, Status: store.StatusQueued,
	}
	text := wt.Body
	if mode == config.ModeSecure {
		link, err := c.Web.CreateLink(ctx, patient.ID)
		if err != nil {
			return nil, "", err
		}
		text = c.Config.SecureNotice(link)
	}
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := c.Store.SaveMessage(ctx, m); err != nil {
			return err
		}
		return cl.enqueue(ctx, &store.Outgoing{PatientID: patient.ID, MessageID: m.ID, Kind: store.KindMessage, Body: text, StatusCallback: true})
	})
	return m, mode, err
}

// queueAutomatic enqueues a generic text careline sends by itself (after-hours reply,
// missed-call text): plain SMS, no message record, nothing a patient wrote.
func (cl *Client) queueAutomatic(ctx context.Context, patientID, text string) error {
	return cl.enqueue(ctx, &store.Outgoing{PatientID: patientID, Kind: kindAutomatic, Body: text})
}

// kindAutomatic marks an outbox text careline sent on its own.
const kindAutomatic store.OutboxKind = "automatic"

// templateValues are the values careline fills for a patient: {clinic} always, {first_name}
// and {last_name} when a name is recorded; given values add to (and may supply) those.
func (c *Connector) templateValues(ctx context.Context, patientID string, given map[string]string) (map[string]string, error) {
	values := map[string]string{}
	n, err := c.wf.names.Get(ctx, patientID)
	if err != nil {
		return nil, err
	}
	if n != nil {
		values["first_name"], values["last_name"] = n.First, n.Last
	}
	maps.Copy(values, given)
	values["clinic"] = c.Config.ClinicName
	return values, nil
}

// missingInWords says what to do about each missing value.
func missingInWords(err *template.MissingError) string {
	var parts []string
	for _, key := range err.Keys {
		switch key {
		case "first_name", "last_name":
			parts = append(parts, fmt.Sprintf("%s (no name is recorded for this patient: `name FIRST [LAST]`, or add %s=…)", key, key))
		default:
			parts = append(parts, fmt.Sprintf("%s (add %s=… to the command; quote values with spaces)", key, key))
		}
	}
	return fmt.Sprintf("Nothing was sent: template %s needs %s.", err.Template, strings.Join(parts, " and "))
}

// modeInWords describes how a text travels, for staff.
func modeInWords(mode, body string) string {
	if mode == config.ModePlain {
		return "as plain SMS (" + template.Cost(body).String() + ")"
	}
	return "by secure link"
}

package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
)

// systemMessage is a message careline sends to a patient on behalf of an integration or a
// reminder rather than a staff member: staff see it in the room as a notice naming who sent it.
type systemMessage struct {
	ID      string // the message id (chosen by the caller, so retries find it)
	Body    string
	Plain   bool   // may go as plain SMS (consent recorded, or a template marked non-sensitive)
	Via     string // shown to staff: `the integration "ehr"`, `an appointment reminder`
	Actor   string // audit actor: "api:ehr", "system"
	Action  string // audit action
	Detail  string // audit detail (ids only)
	OnSaved func(ctx context.Context) error
}

// errOptedOut: the patient replied STOP; nothing was sent.
var errOptedOut = errors.New("the patient replied STOP and has opted out of texts; nothing was sent")

// patientRoom opens (or finds) a patient's room, as start-chat does, and sets it up.
func (cl *Client) patientRoom(ctx context.Context, patientID string) (*bridgev2.Portal, error) {
	portal, err := cl.connector.Bridge.GetPortalByKey(ctx, portalKey(cl.login.ID, patientID))
	if err != nil {
		return nil, err
	}
	if err = cl.ensureRoom(ctx, portal); err != nil {
		return nil, err
	}
	return portal, nil
}

// sendSystemMessage posts the message in the patient's room (creating it if needed), stores it
// and queues its text in one transaction. To an opted-out patient it records the message as
// refused, tells staff, and returns errOptedOut.
func (cl *Client) sendSystemMessage(ctx context.Context, patient *store.Patient, m *systemMessage) (id.RoomID, error) {
	c := cl.connector
	portal, err := cl.patientRoom(ctx, patient.ID)
	if err != nil {
		return "", fmt.Errorf("opening the patient's room: %w", err)
	}
	channel, how := store.ChannelSecure, "secure link"
	if m.Plain {
		channel, how = store.ChannelSMS, "plain SMS"
	}
	if !patient.OptedOutAt.IsZero() {
		c.sendNotice(ctx, portal, fmt.Sprintf("⚠️ %s tried to text %s, but the patient replied STOP and has opted out; nothing was sent.",
			capitalize(m.Via), c.patientName(ctx, patient.ID)), "")
		saveErr := c.Store.SaveMessage(ctx, &store.Message{ID: m.ID, PatientID: patient.ID, Channel: channel, SenderName: c.Config.ClinicName,
			RoomID: portal.MXID, MXSender: c.Bridge.Bot.GetMXID(), Status: statusRefused})
		return portal.MXID, errors.Join(errOptedOut, saveErr)
	}
	// Staff see the content in the (encrypted) room, and who sent it; bridge bot notices are
	// not sent on to the patient.
	content := &event.MessageEventContent{MsgType: event.MsgNotice,
		Body: fmt.Sprintf("📨 From %s, to the patient by %s:\n%s", m.Via, how, m.Body)}
	resp, err := c.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil)
	if err != nil {
		return "", fmt.Errorf("posting the message in the patient's room: %w", err)
	}
	text := c.Config.ClinicName + ": " + m.Body
	if !m.Plain {
		link, err := c.Web.CreateLink(ctx, patient.ID)
		if err != nil {
			return "", err
		}
		text = c.Config.SecureNotice(link)
	}
	msg := &store.Message{ID: m.ID, PatientID: patient.ID, Channel: channel, SenderName: c.Config.ClinicName, Body: m.Body,
		RoomID: portal.MXID, EventID: resp.EventID, MXSender: c.Bridge.Bot.GetMXID(), Status: "queued"}
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := c.Store.SaveMessage(ctx, msg); err != nil {
			return err
		}
		if err := cl.enqueue(ctx, &store.Outgoing{PatientID: patient.ID, MessageID: m.ID, Kind: store.KindMessage, Body: text, StatusCallback: true}); err != nil {
			return err
		}
		if m.OnSaved != nil {
			return m.OnSaved(ctx)
		}
		return nil
	})
	if err != nil {
		c.sendNotice(ctx, portal, "⚠️ The message above could not be queued and was not sent.", resp.EventID)
		return "", err
	}
	c.audit(ctx, audit.Entry{Actor: m.Actor, Action: m.Action, PatientID: patient.ID, Channel: string(channel), Detail: m.Detail})
	zerolog.Ctx(ctx).Info().Str("message_id", m.ID).Str("mode", map[bool]string{true: config.ModePlain, false: config.ModeSecure}[m.Plain]).
		Str("patient", phone.Mask(patient.Phone)).Str("via", m.Actor).Msg("System message queued for the patient")
	return portal.MXID, nil
}

// statusRefused marks a message that was not sent because the patient opted out.
const statusRefused = "refused"

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	if r[0] >= 'a' && r[0] <= 'z' {
		r[0] -= 'a' - 'A'
	}
	return string(r)
}

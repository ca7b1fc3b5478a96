package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
)

// plainMarker at the start of a staff message marks it non-sensitive: it may go as plain SMS
// even without the patient's consent (e.g. "!plain The clinic is closed on Monday.").
const plainMarker = "!plain "

// maxStaffFileBytes bounds a file staff send to a patient.
const maxStaffFileBytes = 10 << 20

// refuse is a message status that tells the sender, in words, why nothing was sent.
func refuse(reason string) error {
	return bridgev2.MessageStatus{
		InternalError: errors.New(reason),
		Status:        event.MessageStatusFail,
		ErrorReason:   event.MessageStatusUnsupported,
		Message:       reason,
		IsCertain:     true,
		SendNotice:    true,
	}
}

// stillStarting tells staff that what they did in a room arrived while careline was still
// starting and was not done (waitTablesReady).
func stillStarting(err error) error {
	return bridgev2.MessageStatus{
		InternalError: err,
		Status:        event.MessageStatusRetriable,
		ErrorReason:   event.MessageStatusGenericError,
		Message:       err.Error(),
		IsCertain:     true,
		SendNotice:    true,
	}
}

// HandleMatrixMessage sends a staff message to the patient: by default as a secure link whose
// SMS carries no content, as plain SMS only with recorded consent or a non-sensitive marker.
func (cl *Client) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	c := cl.connector
	// bridgev2 hands on Matrix events before it starts careline (a message sent during a
	// restart); storing it needs careline's tables, the portal and the team inbox.
	if err := c.waitTablesReady(ctx); err != nil {
		return nil, stillStarting(err)
	}
	if kind := staffOnlyKind(msg.Content); kind != "" {
		return c.keepStaffOnly(ctx, msg, kind), nil
	}
	patient, err := c.Store.GetPatient(ctx, string(msg.Portal.ID))
	if err != nil {
		return nil, err
	} else if patient == nil {
		return nil, refuse("this room has no patient on file")
	}
	if !patient.OptedOutAt.IsZero() {
		return nil, refuse("the patient replied STOP and has opted out of texts; nothing was sent. Call the patient, or ask them to text START")
	}
	// Any sender's texts reach the room, but careline texts back only numbers that can
	// receive a text (the reason names the last four digits only).
	if _, err := phone.Normalize(patient.Phone, ""); err != nil {
		return nil, refuse(fmt.Sprintf("careline cannot text this patient back: %v. Nothing was sent; call the patient", err))
	}
	body, markedPlain := strings.CutPrefix(msg.Content.Body, plainMarker)
	markedPlain = c.honourStaffPlain(ctx, msg, patient, markedPlain)
	attachments, err := cl.downloadStaffFile(ctx, msg)
	if err != nil {
		return nil, err
	}
	if len(attachments) > 0 {
		body = ""
		if msg.Content.FileName != "" && msg.Content.FileName != msg.Content.Body {
			body = msg.Content.Body // the caption
		}
	}
	mode := c.deliveryMode(patient, markedPlain, len(attachments) > 0)
	channel := store.ChannelSecure
	if mode == config.ModePlain {
		channel = store.ChannelSMS
	}
	m := &store.Message{
		ID:          newMessageID(),
		PatientID:   patient.ID,
		Channel:     channel,
		SenderName:  c.staffName(ctx, msg),
		Body:        body,
		RoomID:      msg.Portal.MXID,
		EventID:     msg.Event.ID,
		MXSender:    msg.Event.Sender,
		Status:      store.StatusQueued,
		Attachments: attachments,
	}
	text := m.SenderName + ": " + body
	if mode == config.ModeSecure {
		link, err := c.Web.CreateLink(ctx, patient.ID)
		if err != nil {
			return nil, err
		}
		text = c.Config.SecureNotice(link)
	}
	// The message and its text are stored together; the outbox sends the text, retries it
	// through Twilio outages and tells the sender if it cannot be delivered.
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := c.Store.SaveMessage(ctx, m); err != nil {
			return err
		}
		return cl.enqueue(ctx, &store.Outgoing{
			PatientID: patient.ID, MessageID: m.ID, Kind: store.KindMessage, Body: text, StatusCallback: true,
		})
	})
	if err != nil {
		return nil, err
	}
	cl.wakeSender() // after the commit, or the sender may look before the text is there
	c.audit(ctx, audit.Entry{Actor: msg.Event.Sender.String(), Action: "message.sent", PatientID: patient.ID, Channel: string(channel),
		Detail: fmt.Sprintf("message %s, %d attachments", m.ID, len(attachments))})
	zerolog.Ctx(ctx).Info().Str("message_id", m.ID).Str("mode", mode).Str("patient", phone.Mask(patient.Phone)).
		Msg("Staff message queued for the patient")
	c.announceMode(ctx, msg, mode, patient)
	c.staffReplied(ctx, msg.Portal, msg.Event.Sender)
	return &bridgev2.MatrixMessageResponse{
		DB: &database.Message{ID: networkid.MessageID(m.ID), Timestamp: time.Now()},
	}, nil
}

// deliveryMode decides how a staff message travels. Files always go by secure link.
func (c *Connector) deliveryMode(patient *store.Patient, markedPlain, hasFile bool) string {
	switch {
	case hasFile:
		return config.ModeSecure
	case markedPlain:
		return config.ModePlain
	case patient.Consent != nil && c.Config.Delivery.DefaultMode == config.ModePlain:
		return config.ModePlain
	}
	return config.ModeSecure
}

// announceMode tells staff how their message travels, under the message itself, whenever
// the room's delivery mode differs from the one last announced (not on every message).
func (c *Connector) announceMode(ctx context.Context, msg *bridgev2.MatrixMessage, mode string, patient *store.Patient) {
	meta := msg.Portal.Metadata.(*PortalMetadata)
	if meta.AnnouncedMode == mode {
		return
	}
	meta.AnnouncedMode = mode
	if err := msg.Portal.Save(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not save the announced delivery mode")
	}
	text := fmt.Sprintf("🔒 Going to %s as a secure link: the text message carries no content; the patient reads it in the portal after a one-time code. Messages here go this way until this notice changes.",
		c.patientName(ctx, patient.ID))
	if mode == config.ModePlain {
		why := "marked non-sensitive with !plain"
		if patient.Consent != nil {
			why = fmt.Sprintf("consent recorded by %s on %s", patient.Consent.By, patient.Consent.At.Format(time.DateOnly))
		}
		text = fmt.Sprintf("✉️ Going to %s as plain SMS (%s).", c.patientName(ctx, patient.ID), why)
	}
	c.sendNotice(ctx, msg.Portal, text, msg.Event.ID)
}

// sendNotice posts a notice from the bridge bot in a patient's room, as a reply when replyTo is set.
func (c *Connector) sendNotice(ctx context.Context, portal *bridgev2.Portal, text string, replyTo id.EventID) {
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if replyTo != "" {
		content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(replyTo)
	}
	var err error
	// A notice posted right after the room was created can meet the bot's Megolm session while
	// it is still being shared ("no group session created"); nothing was sent, so try again.
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		if _, err = c.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); err == nil {
			return
		}
	}
	zerolog.Ctx(ctx).Err(err).Stringer("room_id", portal.MXID).Msg("Could not post a notice in the patient's room")
}

// staffName is how the patient sees the sender: "Dr. Lee, Sunrise Clinic", or for a partner
// clinic's staff "Dr. Ortiz, Valley Cardiology" (clinicOf).
func (c *Connector) staffName(ctx context.Context, msg *bridgev2.MatrixMessage) string {
	name := ""
	if msg.OrigSender != nil {
		name = msg.OrigSender.DisambiguatedName
	} else if member, err := c.Bridge.Matrix.GetMemberInfo(ctx, msg.Portal.MXID, msg.Event.Sender); err == nil && member != nil {
		name = member.Displayname
	}
	if name == "" {
		name = msg.Event.Sender.Localpart()
	}
	return name + ", " + c.clinicOf(msg.Event.Sender)
}

// downloadStaffFile fetches (and decrypts) a file staff sent, to keep for the portal.
func (cl *Client) downloadStaffFile(ctx context.Context, msg *bridgev2.MatrixMessage) ([]*store.Attachment, error) {
	switch msg.Content.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
	default:
		return nil, nil
	}
	if msg.Content.Info != nil && msg.Content.Info.Size > maxStaffFileBytes {
		return nil, refuse(fmt.Sprintf("the file is larger than %d MB", maxStaffFileBytes>>20))
	}
	uri := msg.Content.URL
	if msg.Content.File != nil {
		uri = msg.Content.File.URL
	}
	data, err := cl.connector.Bridge.Bot.DownloadMedia(ctx, uri, msg.Content.File)
	if err != nil {
		return nil, fmt.Errorf("could not download the file from the homeserver: %w", err)
	}
	if len(data) > maxStaffFileBytes {
		return nil, refuse(fmt.Sprintf("the file is larger than %d MB", maxStaffFileBytes>>20))
	}
	name := msg.Content.FileName
	if name == "" {
		name = msg.Content.Body
	}
	contentType := ""
	if msg.Content.Info != nil {
		contentType = msg.Content.Info.MimeType
	}
	return []*store.Attachment{{ID: newMessageID(), FileName: name, ContentType: contentType, Size: int64(len(data)), Data: data}}, nil
}

// HandleMatrixMessageRemove withdraws a redacted staff message from the portal.
func (cl *Client) HandleMatrixMessageRemove(ctx context.Context, msg *bridgev2.MatrixMessageRemove) error {
	if msg.TargetMessage == nil || isStaffOnlyMessage(msg.TargetMessage.ID) {
		return nil
	}
	if err := cl.connector.waitTablesReady(ctx); err != nil {
		return stillStarting(err)
	}
	// One transaction: the audit entry exists exactly when the withdrawal does.
	return cl.connector.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := cl.connector.Store.Withdraw(ctx, string(msg.TargetMessage.ID)); err != nil {
			return err
		}
		return cl.connector.auditIn(ctx, audit.Entry{Actor: msg.Event.Sender.String(), Action: "message.redacted",
			PatientID: string(msg.Portal.ID), Detail: "message " + string(msg.TargetMessage.ID)})
	})
}

// HandleMatrixReadReceipt: staff reading a patient's message is not reported to the patient.
func (cl *Client) HandleMatrixReadReceipt(ctx context.Context, msg *bridgev2.MatrixReadReceipt) error {
	return nil
}

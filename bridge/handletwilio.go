package bridge

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
	"github.com/careline/careline/token"
)

// deliverInbound brings one stored SMS/MMS into the patient's room, exactly once: bridgev2
// drops a MessageSid it already bridged, and the inbox keeps the message until this succeeds.
func (c *Connector) deliverInbound(ctx context.Context, in *store.Inbound) {
	log := zerolog.Ctx(ctx).With().Str("message_sid", in.MessageSID).Str("patient_id", in.PatientID).Logger()
	ctx = log.WithContext(ctx)
	err := c.bridgeInbound(ctx, in)
	if err == nil {
		err = c.Store.MarkInboundBridged(ctx, in.MessageSID)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Int("attempt", in.Attempts+1).Msg("Incoming SMS not in its room yet; will retry")
		if markErr := c.Store.MarkInboundFailed(ctx, in.MessageSID, err.Error()); markErr != nil {
			log.Err(markErr).Msg("Could not record the failed attempt")
		}
		return
	}
	log.Debug().Msg("Incoming SMS bridged")
}

func (c *Connector) bridgeInbound(ctx context.Context, in *store.Inbound) error {
	client := c.clientForLogin(networkid.UserLoginID(in.LoginID))
	if client == nil {
		return errors.New("the clinic login this message arrived through is not connected")
	}
	from, err := phone.Normalize(in.Params.Get("From"), "")
	if err != nil {
		return err
	}
	if err = c.Store.EnsurePatient(ctx, in.PatientID, in.LoginID, from); err != nil {
		return err
	}
	patient, err := c.Store.GetPatient(ctx, in.PatientID)
	if err != nil {
		return err
	}
	attachments, mediaURLs, err := client.fetchMedia(ctx, in)
	if err != nil {
		return err
	}
	msg := &store.Message{
		ID:          in.MessageSID,
		PatientID:   in.PatientID,
		FromPatient: true,
		Channel:     store.ChannelSMS,
		Body:        in.Params.Get("Body"),
		TwilioSID:   in.MessageSID,
		Status:      "received",
		Attachments: attachments,
	}
	if err = c.Store.SaveMessage(ctx, msg); err != nil {
		return err
	}
	if in.WasSending {
		// An earlier attempt may have put the message in the room just before a crash.
		found, err := c.alreadyInRoom(ctx, client, msg.PatientID, msg.ID)
		if err != nil {
			return err
		}
		if found {
			zerolog.Ctx(ctx).Info().Msg("Message was already in its room before a restart; not sending it again")
			return nil
		}
	}
	if err = c.Store.MarkInboundSending(ctx, in.MessageSID); err != nil {
		return err
	}
	if err = c.queuePatientMessage(ctx, client, msg, attachments); err != nil {
		return err
	}
	// Keywords act once the message is in the room. A retry after a crash repeats the
	// opt-out or opt-in harmlessly; it may send a HELP reply twice.
	notice, err := client.applyKeyword(ctx, patient, msg.Body)
	if err != nil {
		return err
	}
	if notice != "" {
		if portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(client.login.ID, msg.PatientID)); err == nil && portal.MXID != "" {
			c.sendNotice(ctx, portal, notice, "")
		}
	}
	// A reply of exactly 1 or 2 answers the newest appointment reminder awaiting one; an
	// answer gets no after-hours reply (SPEC: appointment replies).
	if !c.answerReminder(ctx, msg.PatientID, msg.Body, store.ChannelSMS) {
		// Audited after the workflows it starts (auto-reply), so the trail orders them.
		c.afterPatientText(ctx, client, msg.PatientID, msg.Body)
	}
	c.audit(ctx, audit.Entry{Actor: patientActor(msg.PatientID), Action: "message.received", PatientID: msg.PatientID,
		Channel: store.ChannelSMS, TwilioSID: msg.TwilioSID, Detail: fmt.Sprintf("%d attachments", len(attachments))})
	for _, u := range mediaURLs {
		// Twilio keeps media until deleted; careline has its own sealed copy now.
		if err := client.twilio.DeleteMedia(in.MessageSID, u); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not delete media from Twilio; it stays in the Twilio console")
		}
	}
	return nil
}

// queuePatientMessage puts a message from the patient (by SMS or from the portal) into the
// room as the patient's ghost, creating and setting up the room first.
func (c *Connector) queuePatientMessage(ctx context.Context, client *Client, msg *store.Message, attachments []*store.Attachment) error {
	portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(client.login.ID, msg.PatientID))
	if err != nil {
		return err
	}
	if err = client.ensureRoom(ctx, portal); err != nil {
		return err
	}
	result := c.Bridge.QueueRemoteEvent(client.login, &simplevent.Message[*store.Message]{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventMessage,
			PortalKey:    portal.PortalKey,
			CreatePortal: true,
			Sender:       bridgev2.EventSender{Sender: networkid.UserID(msg.PatientID)},
			Timestamp:    msg.CreatedAt,
			LogContext: func(lc zerolog.Context) zerolog.Context {
				return lc.Str("message_id", msg.ID).Str("channel", msg.Channel)
			},
		},
		Data: msg,
		ID:   networkid.MessageID(msg.ID),
		ConvertMessageFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *store.Message) (*bridgev2.ConvertedMessage, error) {
			return convertPatientMessage(ctx, portal, intent, msg, attachments)
		},
	})
	if !result.Success && !result.Ignored {
		if result.Error != nil {
			return result.Error
		}
		return errors.New("the homeserver did not accept the message")
	}
	return nil
}

func convertPatientMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *store.Message, attachments []*store.Attachment) (*bridgev2.ConvertedMessage, error) {
	var parts []*bridgev2.ConvertedMessagePart
	if strings.TrimSpace(msg.Body) != "" || len(attachments) == 0 {
		body := msg.Body
		if msg.Channel == store.ChannelPortal {
			body = "💬 " + body
		}
		parts = append(parts, &bridgev2.ConvertedMessagePart{
			ID:      "",
			Type:    event.EventMessage,
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: body},
			Extra:   map[string]any{messageIDField: msg.ID},
		})
	}
	for i, a := range attachments {
		mxc, file, err := intent.UploadMedia(ctx, portal.MXID, a.Data, a.FileName, a.ContentType)
		if err != nil {
			return nil, fmt.Errorf("uploading attachment %d: %w", i+1, err)
		}
		content := &event.MessageEventContent{
			MsgType: msgTypeFor(a.ContentType),
			Body:    a.FileName,
			Info:    &event.FileInfo{MimeType: a.ContentType, Size: len(a.Data)},
		}
		if file != nil {
			content.File = file
		} else {
			content.URL = mxc
		}
		parts = append(parts, &bridgev2.ConvertedMessagePart{
			ID:      networkid.PartID("media" + strconv.Itoa(i)),
			Type:    event.EventMessage,
			Content: content,
			Extra:   map[string]any{messageIDField: msg.ID},
		})
	}
	return &bridgev2.ConvertedMessage{Parts: parts}, nil
}

func msgTypeFor(contentType string) event.MessageType {
	switch {
	case strings.HasPrefix(contentType, "image/"):
		return event.MsgImage
	case strings.HasPrefix(contentType, "video/"):
		return event.MsgVideo
	case strings.HasPrefix(contentType, "audio/"):
		return event.MsgAudio
	}
	return event.MsgFile
}

// fetchMedia downloads an MMS's attachments with the account's credentials.
func (cl *Client) fetchMedia(ctx context.Context, in *store.Inbound) ([]*store.Attachment, []string, error) {
	var attachments []*store.Attachment
	var urls []string
	for _, ref := range mediaRefs(in.Params) {
		contentType, data, err := cl.twilio.FetchMedia(ctx, ref.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("attachment %d: %w", ref.Index+1, err)
		}
		if contentType == "" {
			contentType = ref.ContentType
		}
		attachments = append(attachments, &store.Attachment{
			ID:          in.MessageSID + "-" + strconv.Itoa(ref.Index),
			FileName:    fileNameFor(ref.Index, contentType),
			ContentType: contentType,
			Size:        int64(len(data)),
			Data:        data,
		})
		urls = append(urls, ref.URL)
	}
	return attachments, urls, nil
}

func fileNameFor(i int, contentType string) string {
	ext := ".bin"
	if exts, _ := mime.ExtensionsByType(contentType); len(exts) > 0 {
		ext = exts[len(exts)-1]
	}
	return "attachment-" + strconv.Itoa(i+1) + ext
}

// newMessageID is the id of a message careline originates (staff or portal), unguessable so
// it can appear in portal pages.
func newMessageID() string { return "m" + token.New()[:22] }

package bridge

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
	"github.com/careline/careline/token"
	"github.com/careline/careline/twilioapi"
)

// deliverInbound brings one stored patient message into its room, exactly once: bridgev2
// drops a message id it already bridged, and the inbox keeps the message until this succeeds
// or the retry period ends, when staff are told.
func (c *Connector) deliverInbound(ctx context.Context, item *inboxItem) {
	in := item.in
	log := zerolog.Ctx(ctx).With().Str("message_id", in.MessageID).Str("patient_id", in.PatientID).
		Str("channel", string(in.Channel)).Logger()
	ctx = log.WithContext(ctx)
	err := c.bridgeInbound(ctx, item)
	if err == nil {
		log.Debug().Msg("Incoming message bridged")
		return
	}
	if ctx.Err() != nil {
		return // stopping: the message stays stored for the next start
	}
	if c.holdIfFlooded(ctx, in, err) {
		return
	}
	attempt := in.Attempts + 1
	var permanent *permanentError
	if errors.As(err, &permanent) || time.Since(in.ReceivedAt) >= c.Config.Twilio.GiveUpAfter {
		c.giveUpInbound(ctx, item, err)
		return
	}
	delay := inboxBackoff(attempt)
	log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).Msg("Incoming message not in its room yet; will retry")
	if markErr := c.Store.RetryInbound(ctx, in.MessageID, time.Now().Add(delay), err.Error()); markErr != nil {
		log.Err(markErr).Msg("Could not record the failed attempt")
	}
}

// permanentError is a failure no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// giveUpInbound records that a message will not reach its room and tells staff, in the room
// if there is one, else in the management room of whoever connected the number.
func (c *Connector) giveUpInbound(ctx context.Context, item *inboxItem, cause error) {
	in := item.in
	log := zerolog.Ctx(ctx)
	log.Error().Err(cause).Int("attempts", in.Attempts+1).Msg("Gave up bringing an incoming message into its room")
	if err := c.Store.GiveUpInbound(ctx, in.MessageID, cause.Error()); err != nil {
		log.Err(err).Msg("Could not record giving up an incoming message")
		return
	}
	c.audit(ctx, audit.Entry{Actor: "system", Action: "message.undeliverable", PatientID: in.PatientID,
		Channel: string(in.Channel), TwilioSID: smsSID(in), Detail: cause.Error()})
	notice := fmt.Sprintf("⚠️ A message %s sent by %s at %s could not be put in this room (%v). careline stopped trying; ask the patient to send it again or call them.",
		c.patientName(ctx, in.PatientID), channelWords(in.Channel), in.ReceivedAt.UTC().Format("2006-01-02 15:04 MST"), cause)
	client := item.client
	if client == nil {
		client = c.clientForLogin(ctx, networkid.UserLoginID(in.LoginID))
	}
	if client == nil {
		return
	}
	if portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(client.login.ID, in.PatientID)); err == nil && portal != nil && portal.MXID != "" {
		c.sendNotice(ctx, portal, notice, "")
		return
	}
	if user := client.login.User; user != nil && user.ManagementRoom != "" {
		if _, err := c.Bridge.Bot.SendMessage(ctx, user.ManagementRoom, event.EventMessage,
			&event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: notice}}, nil); err != nil {
			log.Err(err).Msg("Could not tell staff about an undeliverable message")
		}
	}
}

func channelWords(ch store.Channel) string {
	if ch == store.ChannelPortal {
		return "in the portal"
	}
	return "by text"
}

func smsSID(in *store.Inbound) string {
	if in.Channel == store.ChannelSMS {
		return in.MessageID
	}
	return ""
}

// bridgeInbound puts the message in the room, then runs what follows it: keywords, the audit
// entry, deleting media at Twilio. Each of those is idempotent and runs on a retry too, even
// when the message turns out to be in the room already.
func (c *Connector) bridgeInbound(ctx context.Context, item *inboxItem) error {
	in := item.in
	client := item.client
	if client == nil {
		if client = c.clientForLogin(ctx, networkid.UserLoginID(in.LoginID)); client == nil {
			return errors.New("the clinic login this message arrived through is not connected")
		}
	}
	patient := item.patient
	if patient == nil {
		var err error
		if patient, err = c.Store.GetPatient(ctx, in.PatientID); err != nil {
			return err
		} else if patient == nil {
			return &permanentError{errors.New("the patient's record was deleted")}
		}
	}
	if err := c.admitNewPatient(ctx, client, in); err != nil {
		return err
	}
	var (
		msg         *store.Message
		attachments []*store.Attachment
		fetched     []store.MediaRef
		err         error
	)
	switch in.Channel {
	case store.ChannelSMS:
		var missing []int
		attachments, fetched, missing, err = client.fetchMedia(ctx, in)
		if err != nil {
			return err
		}
		msg = &store.Message{
			ID: in.MessageID, PatientID: in.PatientID, FromPatient: true, Channel: store.ChannelSMS,
			Body: in.Body + missingMediaNote(missing), TwilioSID: in.MessageID, Status: store.StatusPending,
			CreatedAt: in.ReceivedAt, Attachments: attachments,
		}
	case store.ChannelPortal:
		if msg, err = c.Store.GetMessage(ctx, in.MessageID); err != nil {
			return err
		} else if msg == nil {
			return &permanentError{errors.New("the portal message was deleted")}
		}
		if attachments, err = c.Store.MessageAttachments(ctx, msg.ID); err != nil {
			return err
		}
	default:
		return &permanentError{fmt.Errorf("unknown channel %q", in.Channel)}
	}
	portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(client.login.ID, msg.PatientID))
	if err != nil {
		return err
	}
	inRoom := false
	if in.WasSending {
		// An earlier attempt may have put the message in the room just before a crash.
		if inRoom, err = c.alreadyInRoom(ctx, client, portal, msg.ID); err != nil {
			return err
		}
	}
	if inRoom {
		zerolog.Ctx(ctx).Info().Msg("Message was already in its room before a restart; not sending it again")
	} else {
		// One commit: the message (an SMS is first recorded here) and the mark that it is
		// being handed to bridgev2, which a restart must check before sending again.
		err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
			if in.Channel == store.ChannelSMS {
				if err := c.Store.SaveMessage(ctx, msg); err != nil {
					return err
				}
			}
			return c.Store.MarkInboundSending(ctx, in.MessageID)
		})
		if err != nil {
			return err
		}
		if err = c.queuePatientMessage(ctx, client, portal, msg, attachments); err != nil {
			return err
		}
	}
	return c.finishInbound(ctx, client, patient, portal, in, msg, len(attachments), fetched)
}

// finishInbound runs what follows a patient's message into its room: deleting its media at
// Twilio, the workflows it starts, its keyword and audit entry, and closing the inbox row. It
// runs on every attempt, also when a restart found the message in the room already, and each
// step acts once however often it runs.
func (c *Connector) finishInbound(ctx context.Context, client *Client, patient *store.Patient, portal *bridgev2.Portal,
	in *store.Inbound, msg *store.Message, attachments int, fetched []store.MediaRef) error {
	// Twilio keeps media until deleted; careline has its own sealed copy now. Deleted before
	// the inbox row is closed: a retry finds them gone (404) and does not wait for them.
	for _, ref := range fetched {
		if err := client.twilio.DeleteMedia(in.MessageID, ref.URL); err != nil && !mediaGone(err) {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not delete media from Twilio; it stays in the Twilio console")
		}
	}
	// A reply of exactly 1 or 2 answers the newest appointment reminder awaiting one; an
	// answer gets no after-hours reply (SPEC: appointment replies). Keywords start neither.
	// Both act at most once however often this runs (throttled, or answered already).
	if in.Channel == store.ChannelSMS && !c.answerReminder(ctx, msg.PatientID, in.Body, string(store.ChannelSMS)) {
		// Audited before message.received, so the trail orders them.
		c.afterPatientText(ctx, client, msg.PatientID, in.Body)
	}
	if in.Channel == store.ChannelPortal {
		c.patientWrote(ctx, client, msg.PatientID) // a portal post is never a keyword nor an appointment answer
	}
	// One commit for what follows the message into the room: its keyword, its audit entry
	// and closing the inbox row. Each runs on a retry too, even when the message turned out
	// to be in the room already, and acts only once.
	var notice string
	var queued bool
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		notice, queued = "", false
		if in.Channel == store.ChannelSMS {
			var err error
			if notice, queued, err = client.applyKeyword(ctx, patient, msg.ID, in.Body); err != nil {
				return err
			}
		}
		err := c.auditIn(ctx, audit.Entry{Actor: patientActor(msg.PatientID), Action: "message.received", PatientID: msg.PatientID,
			Channel: string(msg.Channel), TwilioSID: msg.TwilioSID, Detail: fmt.Sprintf("%d attachments", attachments)})
		if err != nil {
			return err
		}
		return c.Store.MarkInboundBridged(ctx, in.MessageID)
	})
	if err != nil {
		return err
	}
	if queued {
		client.wakeSender()
	}
	if notice != "" && portal.MXID != "" {
		c.sendNotice(ctx, portal, notice, "")
	}
	return nil
}

// missingMediaNote tells staff, in the message itself, about attachments Twilio no longer had.
func missingMediaNote(missing []int) string {
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("\n[%d attachment(s) of this message were deleted at Twilio before careline could fetch them]", len(missing))
}

// mediaGone reports a media URL Twilio answers 404 or 410 for: deleted, never coming back.
func mediaGone(err error) bool {
	var twErr *twilioapi.Error
	return errors.As(err, &twErr) && (twErr.Status == http.StatusNotFound || twErr.Status == http.StatusGone || twErr.Code == 20404)
}

// queuePatientMessage puts a message from the patient (by SMS or from the portal) into the
// room as the patient's ghost, creating and setting up the room first.
func (c *Connector) queuePatientMessage(ctx context.Context, client *Client, portal *bridgev2.Portal, msg *store.Message, attachments []*store.Attachment) error {
	if err := client.ensureRoom(ctx, portal); err != nil {
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
				return lc.Str("message_id", msg.ID).Str("channel", string(msg.Channel))
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

// fetchMedia downloads an MMS's attachments with the account's credentials. Media Twilio no
// longer has (deleted already, e.g. by an earlier attempt) are listed as missing rather than
// retried forever; any other failure is returned, to retry.
func (cl *Client) fetchMedia(ctx context.Context, in *store.Inbound) (attachments []*store.Attachment, fetched []store.MediaRef, missing []int, err error) {
	for _, ref := range in.Media {
		contentType, data, err := cl.twilio.FetchMedia(ctx, ref.URL)
		if mediaGone(err) {
			missing = append(missing, ref.Index)
			continue
		} else if err != nil {
			return nil, nil, nil, fmt.Errorf("attachment %d: %w", ref.Index+1, err)
		}
		if contentType == "" {
			contentType = ref.ContentType
		}
		attachments = append(attachments, &store.Attachment{
			ID:          in.MessageID + "-" + strconv.Itoa(ref.Index),
			FileName:    fileNameFor(ref.Index, contentType),
			ContentType: contentType,
			Size:        int64(len(data)),
			Data:        data,
		})
		fetched = append(fetched, ref)
	}
	return attachments, fetched, missing, nil
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

package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

// applyStatus records a Twilio delivery status and tells staff. Statuses that arrive late or
// twice never move a message backwards (delivered stays delivered when "sent" comes after).
func (cl *Client) applyStatus(ctx context.Context, twilioSID, status string, errorCode int) error {
	c := cl.connector
	m, changed, err := c.Store.UpdateStatus(ctx, twilioSID, status, errorCode)
	if err != nil {
		return err
	}
	if m == nil {
		return cl.holdStatus(ctx, twilioSID, status, errorCode)
	}
	if !changed || m.RoomID == "" || m.EventID == "" {
		// Not a staff message (e.g. a verification code), or nothing new.
		return nil
	}
	// bridgev2 sends statuses in the background; the webhook's request context ends too soon.
	ctx = zerolog.Ctx(ctx).WithContext(c.Bridge.BackgroundCtx)
	zerolog.Ctx(ctx).Info().Str("message_id", m.ID).Str("twilio_sid", twilioSID).Str("status", status).
		Int("error_code", errorCode).Msg("Delivery status")
	c.audit(ctx, audit.Entry{Actor: "twilio", Action: "delivery.status", PatientID: m.PatientID, Channel: m.Channel,
		TwilioSID: twilioSID, Detail: fmt.Sprintf("%s %d", status, errorCode)})
	evt := &bridgev2.MessageStatusEventInfo{
		RoomID:        m.RoomID,
		SourceEventID: m.EventID,
		Sender:        m.MXSender,
		EventType:     event.EventMessage,
	}
	switch status {
	case "delivered", "read":
		ghost, err := c.Bridge.GetGhostByID(ctx, networkid.UserID(m.PatientID))
		var deliveredTo []id.UserID
		if err == nil && ghost != nil {
			deliveredTo = []id.UserID{ghost.Intent.GetMXID()}
		}
		c.Bridge.Matrix.SendMessageStatus(ctx, &bridgev2.MessageStatus{
			Status: event.MessageStatusSuccess, DeliveredTo: deliveredTo, IsCertain: true,
		}, evt)
	case "failed", "undelivered":
		c.reportMessageFailed(ctx, m.ID, errorCode)
		if errorCode == 21610 {
			if err := c.Store.SetOptedOut(ctx, m.PatientID, true); err != nil {
				return err
			}
		}
		failure := deliveryFailure(m, errorCode)
		c.Bridge.Matrix.SendMessageStatus(ctx, &bridgev2.MessageStatus{
			Status:      event.MessageStatusFail,
			ErrorReason: event.MessageStatusNetworkError,
			Message:     failure,
			IsCertain:   true,
		}, evt)
		if portal, err := c.Bridge.GetPortalByMXID(ctx, m.RoomID); err == nil && portal != nil {
			c.sendNotice(ctx, portal, "⚠️ "+failure+". Call the patient or check the number.", m.EventID)
		}
	}
	return nil
}

// holdStatus keeps a status whose text careline has not recorded yet: Twilio may post it
// before its answer to the send call arrives. The sender applies it once the SID is recorded;
// looking again after holding closes the gap where the SID was recorded in between.
func (cl *Client) holdStatus(ctx context.Context, twilioSID, status string, errorCode int) error {
	c := cl.connector
	held, err := c.Store.HoldStatus(ctx, twilioSID, status, errorCode)
	if err != nil || !held {
		return err
	}
	if m, err := c.Store.GetMessageBySID(ctx, twilioSID); err != nil || m == nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Str("twilio_sid", twilioSID).Msg("Status arrived while its text was being recorded")
	return cl.applyEarlyStatuses(ctx, twilioSID)
}

// applyEarlyStatuses applies statuses held for a text whose SID was just recorded.
func (cl *Client) applyEarlyStatuses(ctx context.Context, twilioSID string) error {
	held, err := cl.connector.Store.TakeEarlyStatuses(ctx, twilioSID)
	if err != nil {
		return err
	}
	for _, st := range held {
		if err := cl.applyStatus(ctx, st.TwilioSID, st.Status, st.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

func deliveryFailure(m *store.Message, code int) string {
	what := "the text message"
	if m.Channel == store.ChannelSecure {
		what = "the text with the secure link"
	}
	if code == 0 {
		return fmt.Sprintf("Not delivered: %s could not be delivered to the patient's phone", what)
	}
	return fmt.Sprintf("Not delivered: %s did not reach the patient because %s (Twilio error %d)", what, twilioapi.Describe(code), code)
}

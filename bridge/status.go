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
)

// applyStatus records a Twilio delivery status for the outbox text seq of this login and
// tells staff. Statuses that arrive late or twice never move a message backwards (delivered
// stays delivered when "sent" comes after). A status that arrives before careline recorded
// Twilio's answer to the send applies all the same: the URL names the text, not the SID.
func (cl *Client) applyStatus(ctx context.Context, seq int64, update statusUpdate) error {
	c := cl.connector
	m, changed, err := c.Store.UpdateStatus(ctx, string(cl.login.ID), seq, update.SID, update.Status, update.ErrorCode)
	if err != nil {
		return err
	}
	if m == nil || !changed || m.RoomID == "" || m.EventID == "" {
		// Not a staff message (e.g. a verification code), or nothing new.
		return nil
	}
	// bridgev2 sends statuses in the background; the webhook's request context ends too soon.
	ctx = zerolog.Ctx(ctx).WithContext(c.Bridge.BackgroundCtx)
	zerolog.Ctx(ctx).Info().Str("message_id", m.ID).Str("twilio_sid", update.SID).Str("status", string(update.Status)).
		Int("error_code", update.ErrorCode).Msg("Delivery status")
	c.audit(ctx, audit.Entry{Actor: "twilio", Action: "delivery.status", PatientID: m.PatientID, Channel: string(m.Channel),
		TwilioSID: update.SID, Detail: fmt.Sprintf("%s %d", update.Status, update.ErrorCode)})
	switch {
	case update.Status == store.StatusDelivered || update.Status == store.StatusRead:
		ghost, err := c.Bridge.GetGhostByID(ctx, networkid.UserID(m.PatientID))
		var deliveredTo []id.UserID
		if err == nil && ghost != nil {
			deliveredTo = []id.UserID{ghost.Intent.GetMXID()}
		}
		c.Bridge.Matrix.SendMessageStatus(ctx, &bridgev2.MessageStatus{
			Status: event.MessageStatusSuccess, DeliveredTo: deliveredTo, IsCertain: true,
		}, statusEventInfo(m))
	case update.Status.Failed():
		c.reportMessageFailed(ctx, m.ID, update.ErrorCode)
		if update.ErrorCode == codeOptedOut {
			if err := c.Store.SetOptedOut(ctx, m.PatientID, true); err != nil {
				return err
			}
		}
		c.tellStaffNotDelivered(ctx, m, deliveryFailure(m.Channel, update.ErrorCode, ""))
	}
	return nil
}

func statusEventInfo(m *store.Message) *bridgev2.MessageStatusEventInfo {
	return &bridgev2.MessageStatusEventInfo{RoomID: m.RoomID, SourceEventID: m.EventID, Sender: m.MXSender, EventType: event.EventMessage}
}

// tellStaffNotDelivered is the one way staff learn a text did not reach the patient, whether
// Twilio refused it, gave up on it later, or careline gave up retrying: a failed message
// status on their message (bridgev2's checkpoint), and a notice replying to it.
func (c *Connector) tellStaffNotDelivered(ctx context.Context, m *store.Message, failure string) {
	if m.RoomID == "" || m.EventID == "" {
		return
	}
	st := bridgev2.WrapErrorInStatus(errNotDelivered).WithStatus(event.MessageStatusFail).
		WithErrorReason(event.MessageStatusNetworkError).WithMessage(failure).WithIsCertain(true)
	c.Bridge.Matrix.SendMessageStatus(ctx, &st, statusEventInfo(m))
	if portal, err := c.Bridge.GetPortalByMXID(ctx, m.RoomID); err == nil && portal != nil {
		c.sendNotice(ctx, portal, "⚠️ "+failure+". Call the patient or check the number.", m.EventID)
	}
}

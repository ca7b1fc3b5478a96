package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/careline/careline/api"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
	"github.com/careline/careline/webhookout"
)

var errNoLogin = &api.Refusal{Status: http.StatusServiceUnavailable,
	Message: "no clinic Twilio number is connected to careline; an admin must log in first (login twilio)"}

// SendMessage sends an API message: secure unless plain was asked for and is allowed.
func (b *apiBackend) SendMessage(ctx context.Context, integration, messageID string, req *api.MessageRequest) (*api.Sent, error) {
	c := b.c
	cl := c.apiClient()
	if cl == nil {
		return nil, errNoLogin
	}
	if m, err := c.Store.GetMessage(ctx, messageID); err != nil {
		return nil, err
	} else if m != nil {
		// A retry of a request that got this far before: nothing is sent again.
		return &api.Sent{RoomID: string(m.RoomID), PatientID: m.PatientID}, nil
	}
	number, err := phone.Normalize(req.To, c.Config.DefaultRegion)
	if err != nil {
		return nil, api.Refuse(fmt.Sprintf(`"to": %v`, err))
	}
	patientID := c.patientID(cl.login.ID, number)
	patient, err := c.Store.GetPatient(ctx, patientID)
	if err != nil {
		return nil, err
	}
	body, sensitive := req.Body, true
	if req.Template != "" {
		if body, sensitive, err = c.renderForPatient(ctx, patientID, req.Template, req.Params); err != nil {
			return nil, err
		}
	}
	plain := req.Mode == "plain"
	if plain && sensitive && (patient == nil || patient.Consent == nil) {
		return nil, api.Refuse(`"mode": "plain" needs the patient's recorded consent to plain texting (staff record it with !careline consent), or a template marked sensitive: false; send it as "secure" instead`)
	}
	if patient == nil {
		if patient, err = c.Store.GetOrCreatePatient(ctx, patientID, string(cl.login.ID), number); err != nil {
			return nil, err
		}
	}
	roomID, err := cl.sendSystemMessage(ctx, patient, &systemMessage{
		ID: messageID, Body: body, Plain: plain,
		Via:   fmt.Sprintf("the integration %q", integration),
		Actor: "api:" + integration, Action: "message.sent", Detail: "message " + messageID + " via the API",
	})
	if errors.Is(err, errOptedOut) {
		return &api.Sent{RoomID: string(roomID), PatientID: patientID}, nil
	} else if err != nil {
		return nil, err
	}
	c.replied(ctx, patientID, roomID.String(), "api:"+integration)
	return &api.Sent{RoomID: string(roomID), PatientID: patientID}, nil
}

// Message reports a message's status as staff see it.
func (b *apiBackend) Message(ctx context.Context, messageID string) (*api.MessageStatus, error) {
	m, err := b.c.Store.GetMessage(ctx, messageID)
	if err != nil || m == nil {
		return nil, err
	}
	out := &api.MessageStatus{ID: m.ID, Mode: "secure", PatientID: m.PatientID}
	if m.Channel == store.ChannelSMS {
		out.Mode = "plain"
	}
	switch {
	case m.Status == statusRefused:
		out.Status, out.Error = "refused", errOptedOut.Error()
	case m.Status == "failed" || m.Status == "undelivered" || m.Status == "canceled":
		out.Status = "failed"
		out.Error = deliveryFailure(m.Channel, m.ErrorCode, "")
		if m.ErrorCode != 0 {
			out.Error = fmt.Sprintf("%s (Twilio error %d)", twilioapi.Describe(m.ErrorCode), m.ErrorCode)
		}
	case !m.ReadAt.IsZero():
		out.Status = "read"
	case m.Status == "delivered" || m.Status == "read":
		out.Status = "delivered"
	case m.Status == "sent":
		out.Status = "sent"
	default:
		out.Status = "queued"
	}
	return out, nil
}

// reportMessageFailed tells the integration, by webhook, that a message it sent through the
// API was not delivered (the id says so: API messages are "msg_…"). No content, only why.
func (c *Connector) reportMessageFailed(ctx context.Context, messageID string, errorCode int) {
	if c.integration == nil || !strings.HasPrefix(messageID, "msg_") {
		return
	}
	reason := "the text could not be delivered to the patient's phone"
	if errorCode != 0 {
		reason = fmt.Sprintf("%s (Twilio error %d)", twilioapi.Describe(errorCode), errorCode)
	}
	err := c.integration.webhooks.Add(ctx, webhookout.Event{Type: "message.failed", MessageID: messageID, Error: reason})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Str("message_id", messageID).Msg("Could not queue the message.failed webhook")
	}
}

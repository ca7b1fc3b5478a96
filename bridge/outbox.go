package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

const (
	// A code that cannot go out within this long is useless to the waiting patient.
	codeGiveUpAfter = 2 * time.Minute
	maxBackoff      = 5 * time.Minute
	// idlePoll bounds how long the sender sleeps without a wake-up, as a safety net.
	idlePoll = 5 * time.Second
)

// sender drains one login's outbox: in order per patient, codes first, at most
// messages_per_second, retrying temporary failures with backoff until give_up_after.
type sender struct {
	cl     *Client
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	next   time.Time // earliest time the rate limit allows the next send
	// unsettled is set when texts may be left "sending" with no recorded outcome: at start
	// (a crash) and when recording Twilio's answer failed. Only then is reconcile needed.
	unsettled bool
}

func (cl *Client) startSender() {
	log := cl.login.Log.With().Str("component", "outbox").Logger()
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	s := &sender{cl: cl, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), unsettled: true}
	cl.sender = s
	go s.run(ctx)
}

// stopSender lets the text being sent finish; the rest waits in the database.
func (cl *Client) stopSender() {
	if cl.sender != nil {
		cl.sender.cancel()
		<-cl.sender.done
		cl.sender = nil
	}
}

// wakeSender tells the sender there is something new to send.
func (cl *Client) wakeSender() {
	if s := cl.sender; s != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	log := zerolog.Ctx(ctx)
	for ctx.Err() == nil {
		if s.unsettled {
			if err := s.reconcile(ctx); err != nil {
				log.Warn().Err(err).Msg("Could not check with Twilio what happened to texts interrupted by a restart; will retry")
				s.sleep(ctx, idlePoll)
				continue
			}
			s.unsettled = false
		}
		o, err := s.cl.connector.Store.NextDue(ctx, string(s.cl.login.ID))
		if err != nil {
			if ctx.Err() == nil {
				log.Err(err).Msg("Could not read the outbox; will retry")
			}
			s.sleep(ctx, time.Second)
			continue
		}
		if o == nil {
			s.sleep(ctx, s.untilNextDue(ctx))
			continue
		}
		if wait := time.Until(s.next); wait > 0 {
			if !s.sleepUninterrupted(ctx, wait) {
				return
			}
		}
		s.next = time.Now().Add(time.Duration(float64(time.Second) / s.cl.connector.Config.Twilio.MessagesPerSecond))
		s.send(ctx, o)
	}
}

func (s *sender) untilNextDue(ctx context.Context) time.Duration {
	at, err := s.cl.connector.Store.NextWake(ctx, string(s.cl.login.ID))
	if err != nil || at.IsZero() {
		return idlePoll
	}
	return min(max(time.Until(at), 10*time.Millisecond), idlePoll)
}

// sleep waits for d, a wake-up or the end.
func (s *sender) sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-s.wake:
	case <-timer.C:
	}
}

// sleepUninterrupted waits for d unless careline stops; wake-ups do not shorten a rate-limit wait.
func (s *sender) sleepUninterrupted(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// reconcile settles texts that were being handed to Twilio when careline stopped: if Twilio
// has the text, it is recorded as sent; only if Twilio does not is it sent again.
func (s *sender) reconcile(ctx context.Context) error {
	c := s.cl.connector
	interrupted, err := c.Store.Sending(ctx, string(s.cl.login.ID))
	if err != nil || len(interrupted) == 0 {
		return err
	}
	for _, o := range interrupted {
		patient, err := c.Store.GetPatient(ctx, o.PatientID)
		if err != nil {
			return err
		} else if patient == nil {
			if err = c.Store.MarkOutboxFailed(ctx, o, 0, "no such patient"); err != nil {
				return err
			}
			continue
		}
		found, err := s.cl.twilio.FindSent(s.outgoing(o, patient), o.CreatedAt)
		if err != nil {
			return err
		}
		if found != nil {
			zerolog.Ctx(ctx).Info().Int64("outbox_seq", o.Seq).Str("twilio_sid", found.SID).Msg("Text interrupted by a restart had reached Twilio; not sending it again")
			if err = c.Store.MarkOutboxSent(ctx, o, found.SID, found.Status); err == nil {
				s.applyEarlyStatuses(ctx, found.SID)
			}
		} else {
			zerolog.Ctx(ctx).Info().Int64("outbox_seq", o.Seq).Msg("Text interrupted by a restart never reached Twilio; sending it again")
			err = c.Store.Retry(ctx, o.Seq, time.Now(), "interrupted by a restart")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *sender) outgoing(o *store.Outgoing, patient *store.Patient) twilioapi.Outgoing {
	out := twilioapi.Outgoing{
		From:                s.cl.meta.PhoneNumber,
		MessagingServiceSID: s.cl.meta.MessagingServiceSID,
		To:                  patient.Phone,
		Body:                o.Body,
	}
	if o.StatusCallback {
		out.StatusCallback = s.cl.connector.statusWebhookURL()
	}
	return out
}

func (s *sender) send(ctx context.Context, o *store.Outgoing) {
	c := s.cl.connector
	log := zerolog.Ctx(ctx).With().Int64("outbox_seq", o.Seq).Str("kind", o.Kind).Str("message_id", o.MessageID).Logger()
	ctx = log.WithContext(ctx)
	patient, err := c.Store.GetPatient(ctx, o.PatientID)
	if err != nil {
		log.Err(err).Msg("Could not read the patient for a text; will retry")
		_ = c.Store.Retry(ctx, o.Seq, time.Now().Add(time.Second), "database error")
		return
	}
	if patient == nil || !patient.OptedOutAt.IsZero() {
		s.fail(ctx, o, 21610, "the patient replied STOP and has opted out of texts")
		return
	}
	if err = c.Store.MarkSending(ctx, o.Seq); err != nil {
		log.Err(err).Msg("Could not mark a text as sending; will retry")
		return
	}
	// A stop between here and recording the outcome is settled by reconcile on restart.
	sent, err := s.cl.twilio.Send(s.outgoing(o, patient))
	if err == nil {
		if err = c.Store.MarkOutboxSent(context.WithoutCancel(ctx), o, sent.SID, sent.Status); err != nil {
			log.Err(err).Str("twilio_sid", sent.SID).Msg("Twilio accepted a text but careline could not record it; it will be reconciled")
			s.unsettled = true
		} else {
			log.Debug().Str("twilio_sid", sent.SID).Str("patient", phone.Mask(patient.Phone)).Msg("Text accepted by Twilio")
			s.applyEarlyStatuses(ctx, sent.SID)
		}
		return
	}
	var twErr *twilioapi.Error
	temporary := !errors.As(err, &twErr) || twErr.Temporary()
	giveUp := o.GiveUpAt
	if temporary && time.Now().Before(giveUp) {
		delay := backoff(o.Attempts + 1)
		log.Warn().Err(err).Int("attempt", o.Attempts+1).Dur("retry_in", delay).Msg("Twilio did not take a text; will retry")
		if err := c.Store.Retry(context.WithoutCancel(ctx), o.Seq, time.Now().Add(delay), err.Error()); err != nil {
			log.Err(err).Msg("Could not schedule the retry")
			s.unsettled = true
		}
		return
	}
	code := 0
	if twErr != nil {
		code = twErr.Code
	}
	reason := err.Error()
	if temporary {
		reason = fmt.Sprintf("Twilio did not accept it for %s (%v)", o.GiveUpAt.Sub(o.CreatedAt).Round(time.Minute), err)
	}
	s.fail(ctx, o, code, reason)
}

// applyEarlyStatuses applies delivery statuses Twilio posted before the SID was recorded.
// A failure here loses only the notification, not the text; it is logged for the admin.
func (s *sender) applyEarlyStatuses(ctx context.Context, twilioSID string) {
	if err := s.cl.applyEarlyStatuses(context.WithoutCancel(ctx), twilioSID); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("twilio_sid", twilioSID).Msg("Could not apply a delivery status that arrived early")
	}
}

// fail records a text that will not be sent and tells the staff member who wrote it.
func (s *sender) fail(ctx context.Context, o *store.Outgoing, code int, reason string) {
	c := s.cl.connector
	ctx = context.WithoutCancel(ctx)
	zerolog.Ctx(ctx).Warn().Int("error_code", code).Str("reason", reason).Msg("Text not delivered")
	if err := c.Store.MarkOutboxFailed(ctx, o, code, reason); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record a failed text")
		s.unsettled = true
	}
	c.audit(ctx, audit.Entry{Actor: "system", Action: "delivery.failed", PatientID: o.PatientID,
		Detail: fmt.Sprintf("%s %s, error %d", o.Kind, o.MessageID, code)})
	c.reportMessageFailed(ctx, o.MessageID, code)
	if code == 21610 {
		if err := c.Store.SetOptedOut(ctx, o.PatientID, true); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Could not record the opt-out")
		}
	}
	if o.MessageID == "" {
		return
	}
	m, err := c.Store.GetMessage(ctx, o.MessageID)
	if err != nil || m == nil || m.RoomID == "" {
		return
	}
	c.Bridge.Matrix.SendMessageStatus(ctx, &bridgev2.MessageStatus{
		Status: event.MessageStatusFail, ErrorReason: event.MessageStatusNetworkError, Message: "not delivered: " + reason, IsCertain: true,
	}, &bridgev2.MessageStatusEventInfo{RoomID: m.RoomID, SourceEventID: m.EventID, Sender: m.MXSender, EventType: event.EventMessage})
	if portal, err := c.Bridge.GetPortalByMXID(ctx, m.RoomID); err == nil && portal != nil {
		c.sendNotice(ctx, portal, "⚠️ Not delivered: "+reason+".", m.EventID)
	}
}

// backoff is exponential from 1 s, capped at 5 min, with jitter so retries after an outage
// do not arrive at Twilio all at once.
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 10 {
		d = min(time.Second<<(attempt-1), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// enqueue puts a text in the login's outbox and wakes its sender.
func (cl *Client) enqueue(ctx context.Context, o *store.Outgoing) error {
	o.LoginID = string(cl.login.ID)
	giveUp := cl.connector.Config.Twilio.GiveUpAfter
	if o.Kind == store.KindCode {
		giveUp = codeGiveUpAfter
	}
	o.GiveUpAt = time.Now().Add(giveUp)
	if err := cl.connector.Store.Enqueue(ctx, o); err != nil {
		return err
	}
	cl.wakeSender()
	return nil
}

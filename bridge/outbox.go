package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

const (
	// A code that cannot go out within this long is useless to the waiting patient.
	codeGiveUpAfter = 2 * time.Minute
	maxBackoff      = 5 * time.Minute
	// idlePoll bounds how long the sender sleeps without a wake-up, as a safety net.
	idlePoll = 5 * time.Second
	// claimBatch is how many due texts the sender claims per database round trip.
	claimBatch = 32
)

// sender drains one login's outbox: in order per patient, codes and other texts sharing the
// rate fairly, at most messages_per_second, retrying temporary failures with backoff until
// give_up_after.
type sender struct {
	cl     *Client
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	next   time.Time // earliest time the rate limit allows the next send
	// unsettled is set when texts may be left "sending" with no recorded outcome: at start
	// (a crash) and when recording Twilio's answer failed. Only then is reconcile needed.
	unsettled bool
	// codesFirst alternates between claims, so codes and staff texts share the rate fairly.
	codesFirst bool
}

// startSender starts the login's sender unless it runs already.
func (cl *Client) startSender() {
	cl.senderLock.Lock()
	defer cl.senderLock.Unlock()
	if cl.sender != nil {
		return
	}
	log := cl.login.Log.With().Str("component", "outbox").Logger()
	ctx, cancel := context.WithCancel(log.WithContext(cl.connector.backgroundCtx()))
	s := &sender{cl: cl, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), unsettled: true}
	cl.sender = s
	go s.run(ctx)
}

// stopSender lets the texts being sent finish; the rest waits in the database.
func (cl *Client) stopSender() {
	cl.senderLock.Lock()
	s := cl.sender
	cl.sender = nil
	cl.senderLock.Unlock()
	if s != nil {
		s.cancel()
		<-s.done
	}
}

// wakeSender tells the sender there is something new to send. Call it after the
// transaction that queued the text committed, or the sender may not see the text yet.
func (cl *Client) wakeSender() {
	cl.senderLock.Lock()
	s := cl.sender
	cl.senderLock.Unlock()
	if s != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	log := zerolog.Ctx(ctx)
	// The outcomes of the batch just sent, recorded in the transaction that claims the next.
	var outcomes []store.Outcome
	defer func() { s.record(ctx, outcomes) }()
	for ctx.Err() == nil {
		if s.unsettled {
			if err := s.reconcile(ctx); err != nil {
				log.Warn().Err(err).Msg("Could not check with Twilio what happened to texts interrupted by a restart; will retry")
				s.sleep(ctx, idlePoll)
				continue
			}
			s.unsettled = false
		}
		s.codesFirst = !s.codesFirst
		texts, err := s.cl.connector.Store.RecordAndClaim(ctx, outcomes, string(s.cl.login.ID), s.batchSize(), s.codesFirst)
		if err != nil {
			if ctx.Err() == nil {
				log.Err(err).Msg("Could not read the outbox; will retry")
			}
			// The outcomes went with the failed claim: record them alone.
			s.record(ctx, outcomes)
			outcomes = nil
			s.sleep(ctx, time.Second)
			continue
		}
		s.recorded(ctx, outcomes)
		outcomes = nil
		if len(texts) == 0 {
			s.sleep(ctx, s.untilNextDue(ctx))
			continue
		}
		outcomes = s.sendAll(ctx, texts)
	}
}

// batchSize claims no more texts than the rate limit lets go out in about a second, so a
// claimed text does not sit "sending" for long.
func (s *sender) batchSize() int {
	return max(1, min(claimBatch, int(s.cl.connector.Config.Twilio.MessagesPerSecond)))
}

// sendConcurrency is how many claimed texts are handed to Twilio at once: they belong to
// different patients (ClaimDue never claims two of one patient), so order is kept.
const sendConcurrency = 4

// sendAll hands claimed texts to Twilio within the rate limit and says what to record.
func (s *sender) sendAll(ctx context.Context, texts []*store.Outgoing) []store.Outcome {
	outcomes := make([]store.Outcome, len(texts))
	interval := time.Duration(float64(time.Second) / s.cl.connector.Config.Twilio.MessagesPerSecond)
	slots := make(chan struct{}, sendConcurrency)
	var wg sync.WaitGroup
	for i, o := range texts {
		if wait := time.Until(s.next); wait > 0 {
			// Wake-ups do not shorten a rate-limit wait; a stop ends it, and the texts not
			// yet handed to Twilio go back to the queue.
			if !s.sleepUninterrupted(ctx, wait) {
				for j := i; j < len(texts); j++ {
					outcomes[j] = store.Outcome{Text: texts[j], RetryAt: time.Now(), Error: "careline stopped"}
				}
				break
			}
		}
		s.next = time.Now().Add(interval)
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			outcomes[i] = s.send(ctx, o)
		}()
	}
	wg.Wait()
	return outcomes
}

// record records outcomes in a transaction of their own: when careline stops, or the claim they
// were to be recorded with failed.
func (s *sender) record(ctx context.Context, outcomes []store.Outcome) {
	if len(outcomes) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.cl.connector.Store.RecordOutcomes(ctx, outcomes); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record what Twilio answered; the texts will be reconciled")
		s.unsettled = true
		return
	}
	s.recorded(ctx, outcomes)
}

// recorded tells staff about the texts that failed, once their outcome is committed.
func (s *sender) recorded(ctx context.Context, outcomes []store.Outcome) {
	ctx = context.WithoutCancel(ctx)
	for _, oc := range outcomes {
		s.cl.connector.countOutcome(oc)
		switch {
		case oc.SID != "":
			zerolog.Ctx(ctx).Debug().Int64("outbox_seq", oc.Text.Seq).Str("twilio_sid", oc.SID).Msg("Text accepted by Twilio")
		case oc.Failed:
			s.cl.connector.textFailed(ctx, oc.Text, oc.ErrorCode, oc.Error)
		}
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
			if err = c.Store.MarkOutboxFailed(ctx, o, 0, "the patient's record was deleted"); err != nil {
				return err
			}
			continue
		}
		o.To = patient.Phone
		found, err := s.cl.twilio.FindSent(s.outgoing(o), o.CreatedAt)
		if err != nil {
			return err
		}
		if found != nil {
			zerolog.Ctx(ctx).Info().Int64("outbox_seq", o.Seq).Str("twilio_sid", found.SID).Msg("Text interrupted by a restart had reached Twilio; not sending it again")
			err = c.Store.MarkOutboxSent(ctx, o, found.SID, store.MessageStatus(found.Status))
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

// unreadableText is what staff read when a queued text cannot be decrypted.
const unreadableText = "careline could not decrypt this text, so it was not sent: a storage key is missing " +
	"from the configuration or the record was changed outside careline. Ask the admin to check " +
	"network.storage.old_keys (a rotated key still needed), then send the message again"

func (s *sender) outgoing(o *store.Outgoing) twilioapi.Outgoing {
	out := twilioapi.Outgoing{
		From:                s.cl.meta.PhoneNumber,
		MessagingServiceSID: s.cl.meta.MessagingServiceSID,
		To:                  o.To,
		Body:                o.Body,
	}
	if o.StatusCallback {
		out.StatusCallback = s.cl.connector.statusWebhookURL(s.cl.login.ID, o.Seq)
	}
	return out
}

// send hands one claimed text to Twilio and says what to record.
func (s *sender) send(ctx context.Context, o *store.Outgoing) store.Outcome {
	switch {
	case o.Unreadable != nil:
		zerolog.Ctx(ctx).Err(o.Unreadable).Int64("outbox_seq", o.Seq).Msg("Outbox text does not open; failing it without sending")
		return store.Outcome{Text: o, Failed: true, Error: unreadableText}
	case o.PatientGone:
		return store.Outcome{Text: o, Failed: true, Error: "the patient's record was deleted"}
	case o.PatientOptedOut:
		return store.Outcome{Text: o, Failed: true, ErrorCode: twilioapi.CodeOptedOut, Error: twilioapi.Describe(twilioapi.CodeOptedOut)}
	}
	sent, err := s.cl.twilio.Send(s.outgoing(o))
	if err == nil {
		return store.Outcome{Text: o, SID: sent.SID, Status: store.MessageStatus(sent.Status)}
	}
	log := zerolog.Ctx(ctx).With().Int64("outbox_seq", o.Seq).Str("kind", string(o.Kind)).Logger()
	temporary, code := classifySendError(err)
	if temporary && time.Now().Before(o.GiveUpAt) {
		delay := backoff(o.Attempts)
		log.Warn().Err(err).Int("attempt", o.Attempts).Dur("retry_in", delay).Msg("Twilio did not take a text; will retry")
		s.cl.connector.Metrics.OutboxRetry()
		return store.Outcome{Text: o, RetryAt: time.Now().Add(delay), Error: err.Error()}
	}
	reason := err.Error()
	if temporary {
		s.cl.connector.Metrics.OutboxGiveUp()
		reason = fmt.Sprintf("Twilio did not accept it for %s (%v)", o.GiveUpAt.Sub(o.CreatedAt).Round(time.Minute), err)
	}
	return store.Outcome{Text: o, Failed: true, ErrorCode: code, Error: reason}
}

// classifySendError says whether a failed send may succeed later, and Twilio's error code.
func classifySendError(err error) (temporary bool, code int) {
	var twErr *twilioapi.Error
	if !errors.As(err, &twErr) {
		return true, 0 // not even an answer: Twilio may be back soon
	}
	return twErr.Temporary(), twErr.Code
}

// textFailed tells the staff member who wrote a text that it will not be sent, and records
// an opt-out Twilio reported.
func (c *Connector) textFailed(ctx context.Context, o *store.Outgoing, code int, reason string) {
	zerolog.Ctx(ctx).Warn().Int64("outbox_seq", o.Seq).Int("error_code", code).Str("reason", reason).Msg("Text not delivered")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "delivery.failed", PatientID: o.PatientID,
		Detail: fmt.Sprintf("%s %s, error %d", o.Kind, o.MessageID, code)})
	c.reportMessageFailed(ctx, o.MessageID, code)
	if code == twilioapi.CodeOptedOut {
		if err := c.Store.SetOptedOut(ctx, o.PatientID, true); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Could not record the opt-out")
		}
	}
	if o.MessageID == "" {
		return
	}
	m, err := c.Store.GetMessage(ctx, o.MessageID)
	if err != nil || m == nil {
		return
	}
	c.tellStaffNotDelivered(ctx, m, deliveryFailure(m.Channel, code, reason))
}

// backoff is exponential from 1 s, capped at 5 min, with jitter so retries after an outage
// do not arrive at Twilio all at once.
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 10 {
		d = min(time.Second<<max(attempt-1, 0), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// enqueue puts a text in the login's outbox. It does not wake the sender: callers do, with
// wakeSender, once the transaction the text was written in has committed.
func (cl *Client) enqueue(ctx context.Context, o *store.Outgoing) error {
	o.LoginID = string(cl.login.ID)
	giveUp := cl.connector.Config.Twilio.GiveUpAfter
	if o.Kind == store.KindCode {
		giveUp = codeGiveUpAfter
	}
	o.GiveUpAt = time.Now().Add(giveUp)
	return cl.connector.Store.Enqueue(ctx, o)
}

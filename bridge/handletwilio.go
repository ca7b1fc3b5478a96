package bridge

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/metrics"
	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
	"github.com/careline/careline/token"
	"github.com/careline/careline/twilioapi"
)

// inboundJob is one patient message on its way through the inbox: what the worker learned
// about it, carried on to the steps after the room.
type inboundJob struct {
	*inboxItem
	log         zerolog.Logger
	msg         *store.Message
	attachments []*store.Attachment
	fetched     []store.MediaRef // MMS media fetched from Twilio, deleted there once in the room
	portal      *bridgev2.Portal
	inRoom      bool // found in the room already: an earlier attempt got it there before a restart
	// awaitsReply: the patient wrote something staff should answer (not a keyword, not an
	// appointment answer); the finisher records it in the team inbox.
	awaitsReply bool
}

func inboundLog(ctx context.Context, in *store.Inbound) zerolog.Logger {
	return zerolog.Ctx(ctx).With().Str("message_id", in.MessageID).Str("patient_id", in.PatientID).
		Str("channel", string(in.Channel)).Logger()
}

// deliverInbound brings stored patient messages of one inbox shard into their rooms, in
// order, exactly once: bridgev2 drops a message id it already bridged, a restart checks the
// room for messages marked as being sent, and the inbox keeps each message until it is in its
// room or the retry period ends, when staff are told. The batch shares its commits: one
// before the messages go to bridgev2 (none when all of them were recorded and marked with
// their webhook or portal post, see inboxItem.fresh), and (in the inbox's finisher) one after.
func (c *Connector) deliverInbound(ctx context.Context, items []*inboxItem) {
	jobs := make([]*inboundJob, 0, len(items))
	for _, item := range items {
		job, err := c.prepareInbound(ctx, item)
		if errors.Is(err, errInboundDone) || errors.Is(err, errWaitsBehind) {
			c.inbox.done(item)
			continue
		} else if err != nil {
			c.inboundFailed(inboundLog(ctx, item.in).WithContext(ctx), item, err)
			continue
		}
		jobs = append(jobs, job)
	}
	for _, job := range c.markSending(ctx, jobs) {
		jobCtx := job.log.WithContext(ctx)
		if !job.inRoom && c.inbox.behind(job.in) { // an earlier message of the patient failed in this batch
			if !job.fresh {
				c.inbox.attemptAnswered(job.in)
			}
			c.inbox.done(job.inboxItem)
			continue
		}
		if !job.inRoom {
			job.fresh = false // from here on a request may reach the homeserver
			c.inbox.handing(job.in)
			if err := c.queuePatientMessage(jobCtx, job.client, job.portal, job.msg, job.attachments); err != nil {
				if noSendInFlight(err) {
					c.inbox.attemptAnswered(job.in)
				}
				c.inboundFailed(jobCtx, job.inboxItem, err)
				continue
			}
			job.log.Debug().Msg("Incoming message bridged")
		}
		job.settled()
		job.reachedRoom = true
		c.inbox.settledFor(job.in)
		c.countInbound(job.in, metrics.ResultOK)
		c.afterRoom(jobCtx, job)
		c.inbox.finish(job)
	}
}

// errInboundDone: the sweep listed a message that another attempt finished meanwhile.
var errInboundDone = errors.New("the message was finished meanwhile")

// errWaitsBehind: an earlier message of the same patient waits for a retry; this one waits
// for it, stays due, and the sweep offers it again.
var errWaitsBehind = errors.New("an earlier message of the patient waits for a retry")

// inboundFailed schedules another attempt of a message that did not reach its room, or gives
// up on it.
func (c *Connector) inboundFailed(ctx context.Context, item *inboxItem, err error) {
	defer c.inbox.done(item)
	if ctx.Err() != nil {
		return // stopping: the message stays stored for the next start
	}
	in := item.in
	log := zerolog.Ctx(ctx)
	if c.holdIfFlooded(ctx, in, err) {
		return
	}
	attempt := in.Attempts + 1
	var permanent *permanentError
	if errors.As(err, &permanent) || time.Since(c.retryingSince(ctx, in)) >= c.Config.Twilio.GiveUpAfter {
		c.giveUpInbound(ctx, item, err)
		return
	}
	if !item.reachedRoom {
		c.inbox.retryLater(in)
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
	item.fresh = false // no next attempt
	log := zerolog.Ctx(ctx)
	log.Error().Err(cause).Int("attempts", in.Attempts+1).Msg("Gave up bringing an incoming message into its room")
	c.inbox.settledFor(in) // the patient's later messages no longer wait for it
	if err := c.Store.GiveUpInbound(ctx, in.MessageID, cause.Error()); err != nil {
		log.Err(err).Msg("Could not record giving up an incoming message")
		return
	}
	c.countInbound(in, metrics.ResultFailed)
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

// prepareInbound gathers what a message needs on its way into the room: its login's client,
// its patient, the message itself (an SMS's media fetched from Twilio) and its room; for a
// message marked "sending" that is not fresh (after a restart, or an attempt that handed it
// to bridgev2) it checks whether an earlier attempt got the message there already.
func (c *Connector) prepareInbound(ctx context.Context, item *inboxItem) (*inboundJob, error) {
	if c.inbox.behind(item.in) {
		return nil, errWaitsBehind
	}
	if item.swept {
		fresh, err := c.Store.GetInbound(ctx, item.in.MessageID)
		if err != nil {
			return nil, err
		} else if fresh == nil || fresh.State != store.InboundPending {
			c.inbox.settledFor(item.in)
			return nil, errInboundDone
		}
		item.in = fresh
		item.fresh = c.inbox.wasUnattempted(fresh)
	}
	in := item.in
	job := &inboundJob{inboxItem: item, log: inboundLog(ctx, in)}
	ctx = job.log.WithContext(ctx)
	if job.client == nil {
		if job.client = c.clientForLogin(ctx, networkid.UserLoginID(in.LoginID)); job.client == nil {
			return nil, errors.New("the clinic login this message arrived through is not connected")
		}
	}
	if job.patient == nil {
		patient, err := c.Store.GetPatient(ctx, in.PatientID)
		if err != nil {
			return nil, err
		} else if patient == nil {
			return nil, &permanentError{errors.New("the patient's record was deleted")}
		}
		job.patient = patient
	}
	if err := c.admitNewPatient(ctx, job.client, in); err != nil {
		c.keywordWhileHeld(ctx, job, err)
		return nil, err
	}
	var err error
	switch in.Channel {
	case store.ChannelSMS:
		var missing []int
		if job.attachments, job.fetched, missing, err = job.client.fetchMedia(ctx, in); err != nil {
			return nil, err
		}
		job.msg = in.SMSMessage(missingMediaNote(missing), job.attachments)
	case store.ChannelPortal:
		if job.msg, err = c.Store.GetMessage(ctx, in.MessageID); err != nil {
			return nil, err
		} else if job.msg == nil {
			return nil, &permanentError{errors.New("the portal message was deleted")}
		}
		if job.attachments, err = c.Store.MessageAttachments(ctx, job.msg.ID); err != nil {
			return nil, err
		}
	default:
		return nil, &permanentError{fmt.Errorf("unknown channel %q", in.Channel)}
	}
	if job.portal, err = c.Bridge.GetPortalByKey(ctx, portalKey(job.client.login.ID, job.msg.PatientID)); err != nil {
		return nil, err
	}
	if !in.SendingAt.IsZero() && !job.fresh {
		// An earlier attempt may have put the message in the room just before a crash. The
		// homeserver may still be working on that attempt's request: let it settle first,
		// or the room would not show the event yet and the message would go twice. Not
		// needed when that attempt, in this process, got an answer to every request.
		if wait := time.Until(c.inbox.settleUntil(in)); wait > 0 {
			job.log.Info().Dur("wait", wait).Msg("Letting an interrupted send settle before checking the room")
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if job.inRoom, err = c.alreadyInRoom(ctx, job.client, job.portal, job.msg, job.attachments); err != nil {
			return nil, err
		}
		if job.inRoom {
			job.log.Info().Msg("Message was already in its room before a restart; not sending it again")
		}
	}
	return job, nil
}

// markSending records, in one commit for the batch, each SMS's message and the mark that the
// messages are being handed to bridgev2, which a restart must check before sending again. It
// returns the jobs that may go on. Only an MMS's first attempt needs it: an SMS without media
// and a portal post were recorded and marked with their webhook or post, a retry was marked
// by its first attempt (when it was sent, which decides how long to let a send settle, is
// kept in memory: inbox.settleUntil), and a message found in its room goes no further.
func (c *Connector) markSending(ctx context.Context, jobs []*inboundJob) []*inboundJob {
	needsMark := func(job *inboundJob) bool { return !job.inRoom && job.in.SendingAt.IsZero() }
	mark := func(jobs []*inboundJob) error {
		// Waited for on disk, unlike the finisher's: a lost "sending" mark would send a
		// message again without looking in its room (without it measured no faster).
		err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
			var ids []string
			for _, job := range jobs {
				if job.in.Channel == store.ChannelSMS {
					if err := c.Store.SaveMessage(ctx, job.msg); err != nil {
						return err
					}
				}
				ids = append(ids, job.in.MessageID)
			}
			return c.Store.MarkInboundSending(ctx, ids...)
		})
		if err != nil {
			return fmt.Errorf("recording incoming messages as sending: %w", err)
		}
		return nil
	}
	var unmarked []*inboundJob
	for _, job := range jobs {
		if needsMark(job) {
			unmarked = append(unmarked, job)
		}
	}
	if len(unmarked) == 0 || mark(unmarked) == nil {
		return jobs
	}
	// One message's failure must not hold back the others: each on its own.
	kept := jobs[:0]
	for _, job := range jobs {
		if needsMark(job) {
			if err := mark([]*inboundJob{job}); err != nil {
				c.inboundFailed(job.log.WithContext(ctx), job.inboxItem, err)
				continue
			}
		}
		kept = append(kept, job)
	}
	return kept
}

// afterRoom runs what follows a patient's message into its room outside the inbox's commit:
// deleting its media at Twilio and the workflows it starts. It runs on every attempt, also
// when a restart found the message in the room already, and each step acts once however
// often it runs.
func (c *Connector) afterRoom(ctx context.Context, job *inboundJob) {
	in, client := job.in, job.client
	// Twilio keeps media until deleted; careline has its own sealed copy now. Deleted before
	// the inbox row is closed: a retry finds them gone (404) and does not wait for them.
	for _, ref := range job.fetched {
		if err := client.twilio.DeleteMedia(in.MessageID, ref.URL); err != nil && !mediaGone(err) {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not delete media from Twilio; it stays in the Twilio console")
		}
	}
	// A reply of exactly 1 or 2 answers the newest appointment reminder awaiting one; an
	// answer gets no after-hours reply (SPEC: appointment replies). Keywords start neither.
	// Both act at most once however often this runs (throttled, or answered already).
	if in.Channel == store.ChannelSMS && !c.answerReminder(ctx, job.msg.PatientID, in.Body, string(store.ChannelSMS)) {
		// Before the finisher's message.received, so the trail orders them.
		job.awaitsReply = c.afterPatientText(ctx, client, job.msg.PatientID, in.Body)
	}
	if in.Channel == store.ChannelPortal {
		job.awaitsReply = true // a portal post is never a keyword nor an appointment answer
	}
}

// finishAll closes the inbox rows of messages now in their rooms, in one commit for all of
// them; if that fails, each on its own, so one message's failure holds back no other.
func (c *Connector) finishAll(ctx context.Context, jobs []*inboundJob) {
	err := c.finishInbound(ctx, jobs...)
	if err != nil && len(jobs) > 1 {
		for _, job := range jobs {
			if err := c.finishInbound(ctx, job); err != nil {
				c.inboundFailed(job.log.WithContext(ctx), job.inboxItem, err)
			}
		}
		return
	}
	if err != nil {
		c.inboundFailed(jobs[0].log.WithContext(ctx), jobs[0].inboxItem, err)
	}
}

// finishInbound records, in ONE commit for all the jobs, what follows each message into its
// room: its keyword (STOP/START/HELP), the team inbox's wait for a reply, its audit entry (the
// audit chain's head taken once for the batch) and closing its inbox row. Each runs on a retry
// too, even when the message turned out to be in the room already, and acts only once. What
// goes to Matrix (notices, spaces) follows the commit.
func (c *Connector) finishInbound(ctx context.Context, jobs ...*inboundJob) error {
	notices := make([]string, len(jobs))
	queued := make([]bool, len(jobs))
	var wrote []teaminbox.Wrote
	var remind map[string]bool
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		// Not waited for on disk: lost only in a crash of PostgreSQL itself, and then redone
		// by the inbox (the rows are still "sending"; the next start finds the messages in
		// their rooms and finishes them). A keyword's reply is claimed by the outbox in a
		// synchronous commit before it goes to Twilio, which flushes this one with it.
		if err := c.Store.CommitWithoutDiskWait(ctx); err != nil {
			return err
		}
		// First: the conversations' rows are locked before the audit chain's head.
		var err error
		if wrote, remind, err = c.recordAwaitingReply(ctx, jobs); err != nil {
			return err
		}
		reopened := map[string]bool{}
		for _, w := range wrote {
			reopened[w.Conv.PatientID] = w.Reopened
		}
		var entries []audit.Entry
		ids := make([]string, len(jobs))
		for i, job := range jobs {
			in, msg := job.in, job.msg
			notices[i], queued[i], ids[i] = "", false, in.MessageID
			if in.Channel == store.ChannelSMS && classifyKeyword(in.Body) != store.KeywordNone {
				// A keyword writes its own entry (optout, optin): the ones before it go first.
				if err := c.auditAllIn(ctx, entries); err != nil {
					return err
				}
				entries = entries[:0]
				var err error
				if notices[i], queued[i], err = job.client.applyKeyword(job.log.WithContext(ctx), job.patient, msg.ID, in.Body); err != nil {
					return err
				}
			}
			if job.awaitsReply && reopened[msg.PatientID] {
				reopened[msg.PatientID] = false
				entries = append(entries, audit.Entry{Actor: patientActor(msg.PatientID), Action: "conversation.reopened", PatientID: msg.PatientID,
					Detail: "reopened by a new message from the patient"})
			}
			entries = append(entries, audit.Entry{Actor: patientActor(msg.PatientID), Action: "message.received", PatientID: msg.PatientID,
				Channel: string(msg.Channel), TwilioSID: msg.TwilioSID, Detail: strconv.Itoa(len(job.attachments)) + " attachments"})
		}
		if err := c.auditAllIn(ctx, entries); err != nil {
			return err
		}
		return c.Store.MarkInboundBridged(ctx, ids...)
	})
	if err != nil {
		return err
	}
	for i, job := range jobs {
		if queued[i] {
			job.client.wakeSender()
		}
		if notices[i] != "" && job.portal.MXID != "" {
			c.sendNotice(job.log.WithContext(ctx), job.portal, notices[i], "")
		}
	}
	c.afterAwaitingReply(ctx, jobs, wrote, remind)
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
// room as the patient's ghost, creating and setting up the room first. It is an upsert: when
// an earlier attempt got some of its parts in (a part failed, or careline crashed between
// parts), bridgev2 sends only the parts it has no record of.
func (c *Connector) queuePatientMessage(ctx context.Context, client *Client, portal *bridgev2.Portal, msg *store.Message, attachments []*store.Attachment) error {
	if err := client.ensureRoom(ctx, portal); err != nil {
		return &nothingSentError{err}
	}
	var have map[networkid.PartID]bool
	var convertErr error
	result := c.Bridge.QueueRemoteEvent(client.login, &simplevent.Message[*store.Message]{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventMessageUpsert,
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
		HandleExistingFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, existing []*database.Message, msg *store.Message) (bridgev2.UpsertResult, error) {
			have = partSet(existing)
			return bridgev2.UpsertResult{ContinueMessageHandling: len(missingParts(messageParts(msg, attachments), have)) > 0}, nil
		},
		ConvertMessageFunc: func(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *store.Message) (*bridgev2.ConvertedMessage, error) {
			converted, err := convertPatientMessage(ctx, portal, intent, msg, attachments, have)
			if err != nil {
				// Not bridgev2's error notice: it would go out as the patient's ghost at the
				// message's timestamp on every attempt, where the crash check (alreadyInRoom)
				// would take it for a part. careline retries, and tells staff if it gives up.
				convertErr = err
				return nil, fmt.Errorf("%w: %w", bridgev2.ErrIgnoringRemoteEvent, err)
			}
			return converted, nil
		},
	})
	if convertErr != nil {
		return &nothingSentError{convertErr}
	}
	if !result.Success && !result.Ignored {
		if result.Error != nil {
			return result.Error
		}
		return errors.New("the homeserver did not accept the message")
	}
	return nil
}

// nothingSentError: an attempt failed before any part of the message went to the homeserver.
type nothingSentError struct{ err error }

func (e *nothingSentError) Error() string { return e.err.Error() }
func (e *nothingSentError) Unwrap() error { return e.err }

// noSendInFlight reports whether a failed attempt left no request to the homeserver in
// flight: none was made, the homeserver refused each with a 4xx, or it could not be reached
// (bridgev2 joins the errors of the parts it could not send). A timeout, a broken connection
// or a 5xx may leave the event still being stored (Dendrite answers 500 when its roomserver
// does not confirm in time, and may store the event after).
func noSendInFlight(err error) bool {
	var nothingSent *nothingSentError
	if errors.As(err, &nothingSent) {
		return true
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, part := range joined.Unwrap() {
			if !noSendInFlight(part) {
				return false
			}
		}
		return len(joined.Unwrap()) > 0
	}
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.Response != nil {
		return httpErr.Response.StatusCode < http.StatusInternalServerError
	}
	var netErr *net.OpError
	return errors.As(err, &netErr) && netErr.Op == "dial"
}

// convertPatientMessage makes the parts of a patient's message (messageParts) except those in
// skip, which are in the room already.
func convertPatientMessage(ctx context.Context, portal *bridgev2.Portal, intent bridgev2.MatrixAPI, msg *store.Message, attachments []*store.Attachment, skip map[networkid.PartID]bool) (*bridgev2.ConvertedMessage, error) {
	var parts []*bridgev2.ConvertedMessagePart
	if hasTextPart(msg, attachments) && !skip[textPartID] {
		body := msg.Body
		if msg.Channel == store.ChannelPortal {
			body = "💬 " + body
		}
		parts = append(parts, &bridgev2.ConvertedMessagePart{
			ID:      textPartID,
			Type:    event.EventMessage,
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: body},
			Extra:   map[string]any{messageIDField: msg.ID, partIDField: string(textPartID)},
		})
	}
	for i, a := range attachments {
		partID := mediaPartID(i)
		if skip[partID] {
			continue
		}
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
			ID:      partID,
			Type:    event.EventMessage,
			Content: content,
			Extra:   map[string]any{messageIDField: msg.ID, partIDField: string(partID)},
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

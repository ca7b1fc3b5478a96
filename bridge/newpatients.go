package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/floodgate"
	"github.com/careline/careline/store"
)

// newPatientWindow is the window of network.inbound.max_new_patients_per_hour.
const newPatientWindow = time.Hour

// startNewPatientLimit opens the record of new rooms and releases texts held before a restart,
// so a limit the admin raised applies to them at once.
func (c *Connector) startNewPatientLimit(ctx context.Context) error {
	c.newRooms = floodgate.New(c.Bridge.DB.Database, c.Bridge.Log.With().Str("db_section", "careline_floodgate").Logger())
	if err := c.newRooms.Upgrade(ctx); err != nil {
		return err
	}
	released, err := c.Store.ReleaseHeldInbound(ctx)
	if released > 0 {
		zerolog.Ctx(ctx).Info().Int64("count", released).Msg("First texts from unknown numbers held before the restart are tried again")
	}
	return err
}

// heldError says a first text from an unknown number waits for a place under
// network.inbound.max_new_patients_per_hour: it stays stored and is tried again at until.
type heldError struct{ until time.Time }

func (e *heldError) Error() string {
	return "waiting for a place under network.inbound.max_new_patients_per_hour until " + e.until.UTC().Format(time.RFC3339)
}

// admitNewPatient lets an SMS that would open a new patient room (and ping the care team)
// through only while the clinic number has places left this hour. Rooms staff open
// (start-chat, the API, broadcasts, reminders) do not pass here and are never limited.
func (c *Connector) admitNewPatient(ctx context.Context, client *Client, in *store.Inbound) error {
	if in.Channel != store.ChannelSMS {
		return nil // a portal reply comes from a patient staff already wrote to
	}
	if portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(client.login.ID, in.PatientID)); err != nil {
		return err
	} else if portal != nil && portal.MXID != "" {
		return nil
	}
	limit := c.Config.Inbound.MaxNewPatientsPerHour
	now := time.Now()
	ok, retryAt, err := c.newRooms.Admit(ctx, in.LoginID, in.PatientID, limit, newPatientWindow, now)
	if err != nil || ok {
		return err
	}
	c.alertNewPatientFlood(ctx, client, limit, retryAt, now)
	return &heldError{until: retryAt}
}

// keywordWhileHeld applies STOP, START or HELP in a held first text at once: an opt-out must
// not wait for a place under the limit. applyKeyword acts once per message, so when the text
// reaches its room later nothing is applied twice.
func (c *Connector) keywordWhileHeld(ctx context.Context, job *inboundJob, err error) {
	var held *heldError
	if !errors.As(err, &held) || job.in.Channel != store.ChannelSMS || classifyKeyword(job.in.Body) == store.KeywordNone {
		return
	}
	var queued bool
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) (err error) {
		_, queued, err = job.client.applyKeyword(ctx, job.patient, job.in.MessageID, job.in.Body)
		return err
	})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not apply the keyword of a held first text; it is applied when the text is let through")
		return
	}
	zerolog.Ctx(ctx).Info().Msg("Keyword of a held first text applied at once")
	if queued {
		job.client.wakeSender()
	}
}

// holdIfFlooded keeps a held text stored until its place frees up, without counting an
// attempt: it is not failing, only waiting. It reports whether err was such a hold.
func (c *Connector) holdIfFlooded(ctx context.Context, in *store.Inbound, err error) bool {
	var held *heldError
	if !errors.As(err, &held) {
		return false
	}
	zerolog.Ctx(ctx).Info().Time("until", held.until).Msg("First text from an unknown number held: new patient rooms per hour used up")
	if err := c.Store.HoldInbound(ctx, in.MessageID, held.until, held.Error()); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record holding an incoming message; the sweep will try it again")
	}
	return true
}

// retryingSince is when a message's retry period (network.twilio.give_up_after) started: when
// it arrived, or, for a first text held by the limit, when it was let through, so the wait
// for a place does not use up the time it has to reach its room.
func (c *Connector) retryingSince(ctx context.Context, in *store.Inbound) time.Time {
	if in.Channel != store.ChannelSMS || c.newRooms == nil {
		return in.ReceivedAt
	}
	admitted, err := c.newRooms.AdmittedAt(ctx, in.LoginID, in.PatientID)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not read when a new patient was let through; counting from the message's arrival")
	}
	if admitted.After(in.ReceivedAt) {
		return admitted
	}
	return in.ReceivedAt
}

// alertNewPatientFlood tells the admin who connected the number, once per window, that texts
// from new numbers are waiting and what to do about it.
func (c *Connector) alertNewPatientFlood(ctx context.Context, client *Client, limit int, retryAt, now time.Time) {
	if first, err := c.wf.throttle.Take(ctx, "newpatients-alert:"+string(client.login.ID), now, newPatientWindow); err != nil || !first {
		return
	}
	zerolog.Ctx(ctx).Warn().Str("login_id", string(client.login.ID)).Int("limit", limit).
		Msg("New patient rooms per hour used up for this clinic number; first texts from further unknown numbers wait")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "inbound.new_patients_limited", Detail: fmt.Sprintf("limit=%d per hour", limit)})
	c.tellAdmin(ctx, client, fmt.Sprintf("⚠️ More than %d numbers careline did not know texted this clinic number in the last hour "+
		"(the limit of network.inbound.max_new_patients_per_hour). No text is lost: texts from further new numbers are kept "+
		"and each opens its room (and invites the care team) as the limit allows, the next at %s UTC. "+
		"If these are genuine patients (say, after a mailing), raise the limit in the config and restart careline; "+
		"if not, someone may be flooding the number: check its message logs in the Twilio console.",
		limit, retryAt.UTC().Format("15:04")))
}

// tellAdmin posts a notice in the management room of whoever connected the number.
func (c *Connector) tellAdmin(ctx context.Context, client *Client, notice string) {
	room, err := client.login.User.GetManagementRoom(ctx)
	if err == nil {
		_, err = c.Bridge.Bot.SendMessage(ctx, room, event.EventMessage, &event.Content{
			Parsed: &event.MessageEventContent{MsgType: event.MsgNotice, Body: notice},
		}, nil)
	}
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not post a notice to the admin's management room")
	}
}

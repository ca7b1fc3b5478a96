package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
	"github.com/careline/careline/template"
)

// afterPatientText runs the workflow an incoming SMS starts once it is in the room, the
// after-hours auto-reply, and reports whether the text awaits a reply from staff: the
// finisher then records it in the team inbox and reminds staff of scheduled sends still
// pending (finishInbound). Keywords (STOP, HELP, START…) start none of these.
func (c *Connector) afterPatientText(ctx context.Context, cl *Client, patientID, body string) bool {
	if classifyKeyword(body) != store.KeywordNone {
		return false
	}
	if err := c.autoReplyAfterHours(ctx, cl, patientID, time.Now()); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not send the after-hours auto-reply")
	}
	return true
}

// autoReplyAfterHours sends the generic after-hours reply when the clinic is closed, at most
// once per patient per auto_reply_every, never to an opted-out patient, and tells the room.
func (c *Connector) autoReplyAfterHours(ctx context.Context, cl *Client, patientID string, now time.Time) error {
	hours, oh := c.Config.Hours(), c.Config.OfficeHours
	if hours == nil || oh.AutoReply == "" || hours.Open(now) {
		return nil
	}
	text, err := template.Fill("office_hours.auto_reply", oh.AutoReply, map[string]string{"clinic": c.Config.ClinicName})
	if err != nil {
		return err
	}
	sent := false
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		// Read inside the transaction: a STOP handled just before must win.
		p, err := c.Store.GetPatient(ctx, patientID)
		if err != nil || p == nil || !p.OptedOutAt.IsZero() {
			return err
		}
		if sent, err = c.wf.throttle.Take(ctx, "autoreply:"+patientID, now, oh.AutoReplyEvery); err != nil || !sent {
			return err
		}
		return cl.queueAutomatic(ctx, patientID, text)
	})
	if err != nil || !sent {
		return err
	}
	cl.wakeSender()
	c.audit(ctx, audit.Entry{Actor: "system", Action: "autoreply.sent", PatientID: patientID, Detail: "after hours"})
	if portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, patientID)); err == nil && portal != nil && portal.MXID != "" {
		c.sendNotice(ctx, portal, fmt.Sprintf("🌙 The clinic is closed (office hours, %s), so the after-hours auto-reply went to the patient as plain SMS. The next one goes no sooner than %s from now.",
			c.Config.Location(), oh.AutoReplyEvery), "")
	}
	return nil
}

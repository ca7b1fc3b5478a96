package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/schedule"
	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
)

// withTeamInbox gives the fixture the team inbox and the scheduled sends, on its database,
// with the team inbox's clock at *now.
func (f *inboundFixture) withTeamInbox(t *testing.T, db *dbutil.Database, now *time.Time) {
	t.Helper()
	ctx := context.Background()
	f.c.team.store = teaminbox.New(db, zerolog.Nop())
	f.c.team.now = func() time.Time { return *now }
	f.c.wf.schedule = schedule.New(db, dbtest.Keyring(t), zerolog.Nop())
	for _, upgrade := range []func(context.Context) error{f.c.team.store.Upgrade, f.c.wf.schedule.Upgrade} {
		if err := upgrade(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// finishBatch runs what follows messages into their room, as the inbox does: each message's
// steps in its worker, then the finisher's one commit for all of them.
func (f *inboundFixture) finishBatch(t *testing.T, room *bridgev2.Portal, bodies ...string) []*inboundJob {
	t.Helper()
	ctx := context.Background()
	var jobs []*inboundJob
	for _, body := range bodies {
		in, patient := f.receive(t, body)
		msg := &store.Message{ID: in.MessageID, PatientID: "p1", FromPatient: true, Channel: store.ChannelSMS, Body: in.Body,
			TwilioSID: in.MessageID, Status: store.StatusPending}
		if err := f.store.SaveMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		job := f.job(patient, room, in, msg)
		f.c.afterRoom(ctx, job)
		jobs = append(jobs, job)
	}
	if err := f.c.finishInbound(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestFinisherRecordsTheWait: the finisher's commit records in the team inbox that the
// patient awaits a reply, from the first unanswered text on; a keyword awaits none.
func TestFinisherRecordsTheWait(t *testing.T) {
	dbtest.ForEach(t, "finisher", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		f := newInboundFixtureOn(t, db)
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		now := t0
		f.withTeamInbox(t, db, &now)
		room := &bridgev2.Portal{Portal: &database.Portal{PortalKey: portalKey("L", "p1"), MXID: "!room:x"}}
		conv := func() *teaminbox.Conversation {
			t.Helper()
			c, err := f.c.team.store.Get(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}

		f.finishBatch(t, room, "is the new dose 20 or 40?", "and when do I take it")
		if c := conv(); !c.Waiting() || !c.WaitingSince.Equal(t0) || c.RoomID != "!room:x" {
			t.Fatalf("after the first texts: %+v, want waiting since %v in !room:x", c, t0)
		}
		now = t0.Add(time.Hour)
		f.finishBatch(t, room, "sorry, wrong number")
		if c := conv(); !c.WaitingSince.Equal(t0) || !c.LastPatientAt.Equal(now) {
			t.Fatalf("after another text: %+v, want waiting since %v, last at %v", c, t0, now)
		}
		if got := auditActions(t, f.c.Audit); got["message.received"] != 3 {
			t.Fatalf("audit entries %v, want 3 message.received", got)
		}
		// Keywords await no reply (their notices need a homeserver: not finished here).
		for _, body := range []string{"STOP", "HELP", "start"} {
			in, patient := f.receive(t, body)
			job := f.job(patient, room, in, &store.Message{ID: in.MessageID, PatientID: "p1", Channel: store.ChannelSMS, Body: body})
			if f.c.afterRoom(ctx, job); job.awaitsReply {
				t.Errorf("%s awaits a reply", body)
			}
		}
	})
}

// TestFinisherLooksForScheduledSendsOnce: which texting patients have scheduled sends staff
// were not reminded of is one read for the batch, in the finisher's transaction; a portal post
// reminds of none.
func TestFinisherLooksForScheduledSendsOnce(t *testing.T) {
	dbtest.ForEach(t, "finisher_remind", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		f := newInboundFixtureOn(t, db)
		now := time.Now()
		f.withTeamInbox(t, db, &now)
		if err := f.c.wf.schedule.Add(ctx, &schedule.Send{LoginID: "L", PatientID: "p1", Due: now.Add(time.Hour), CreatedBy: "@nurse:x",
			Payload: schedule.Payload{Text: "your results are in"}}); err != nil {
			t.Fatal(err)
		}
		room := func(patientID string) *bridgev2.Portal {
			return &bridgev2.Portal{Portal: &database.Portal{PortalKey: portalKey("L", patientID), MXID: id.RoomID("!" + patientID + ":x")}}
		}
		job := func(patientID string, channel store.Channel) *inboundJob {
			return &inboundJob{inboxItem: &inboxItem{in: &store.Inbound{MessageID: "m-" + patientID, PatientID: patientID, Channel: channel}, client: f.client},
				msg: &store.Message{ID: "m-" + patientID, PatientID: patientID, Channel: channel}, portal: room(patientID), awaitsReply: true, log: zerolog.Nop()}
		}
		look := func(jobs ...*inboundJob) (wrote []teaminbox.Wrote, remind map[string]bool) {
			t.Helper()
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				var err error
				wrote, remind, err = f.c.recordAwaitingReply(ctx, jobs)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return wrote, remind
		}
		if wrote, remind := look(job("p1", store.ChannelPortal), job("p2", store.ChannelSMS)); len(remind) != 0 || len(wrote) != 2 {
			t.Fatalf("a portal post looked for scheduled sends: remind %v, wrote %d", remind, len(wrote))
		}
		if _, remind := look(job("p1", store.ChannelSMS), job("p2", store.ChannelSMS)); !remind["p1"] || remind["p2"] || len(remind) != 1 {
			t.Fatalf("remind %v, want p1 only", remind)
		}
		if _, err := f.c.wf.schedule.MarkReminded(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if _, remind := look(job("p1", store.ChannelSMS)); len(remind) != 0 {
			t.Fatalf("remind %v once staff were reminded", remind)
		}
	})
}

package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"go.mau.fi/util/dbutil"
)

// TestConcurrentSavesShareCommits: webhooks arriving while a commit is under way are written
// together, each stored exactly once (a MessageSid sent twice at once is new once), each
// answered only after the commit that holds it, and one message that cannot be stored does
// not fail the others.
func TestConcurrentSavesShareCommits(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		exec := func(q string) {
			t.Helper()
			if _, err := s.DB.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		// A message that cannot be stored, to fail the commit it is part of.
		if s.DB.Dialect == dbutil.Postgres {
			exec(`CREATE FUNCTION refuse_bad() RETURNS trigger AS $$ BEGIN
				IF NEW.message_id = 'SMbad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`)
			exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON careline_inbound FOR EACH ROW EXECUTE FUNCTION refuse_bad()`)
		} else {
			exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON careline_inbound WHEN NEW.message_id = 'SMbad'
				BEGIN SELECT RAISE(ABORT, 'refused'); END`)
		}
		_, _ = s.GetOrCreatePatient(ctx, "pa", "L", "+14155550001")

		// Hold the table so the first saves wait inside their commits while the others queue.
		hold, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.DB.Dialect == dbutil.Postgres {
			_, err = hold.ExecContext(ctx, `LOCK TABLE careline_inbound IN EXCLUSIVE MODE`)
		} else {
			_, err = hold.ExecContext(ctx, `UPDATE careline_patient SET created_at=created_at WHERE id='pa'`)
		}
		if err != nil {
			t.Fatal(err)
		}

		type sent struct {
			sid, patient, from string
		}
		var msgs []sent
		for i := range 6 {
			// pa is known, pb and pc are new; SMdup is sent twice at once.
			patient := []string{"pa", "pb", "pc"}[i%3]
			msgs = append(msgs, sent{fmt.Sprintf("SM%d", i), patient, "+1415555000" + fmt.Sprint(1+i%3)})
		}
		msgs = append(msgs, sent{"SMdup", "pa", "+14155550001"}, sent{"SMdup", "pa", "+14155550001"}, sent{"SMbad", "pb", "+14155550002"})

		type result struct {
			sid     string
			isNew   bool
			err     error
			visible bool // the row was readable by another connection when the save returned
		}
		results := make(chan result, len(msgs))
		var wg sync.WaitGroup
		for _, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := &Inbound{MessageID: m.sid, LoginID: "L", PatientID: m.patient, Channel: ChannelSMS, From: m.from, Body: "hello " + m.sid}
				patient, isNew, err := s.SaveInbound(ctx, in)
				r := result{sid: m.sid, isNew: isNew, err: err}
				if err == nil {
					got, gerr := s.GetInbound(ctx, m.sid)
					r.visible = gerr == nil && got != nil && got.Body == "hello "+m.sid && patient != nil && patient.ID == m.patient
				}
				results <- r
			}()
		}
		// Wait until all but the writers are queued behind their commits; none may have returned.
		for {
			s.inboundGroup.mu.Lock()
			queued := len(s.inboundGroup.queue)
			s.inboundGroup.mu.Unlock()
			if queued == len(msgs)-s.inboundWriters() {
				break
			}
			select {
			case r := <-results:
				t.Fatalf("%s answered while its commit was held: %+v", r.sid, r)
			default:
			}
			runtime.Gosched()
		}
		if err = hold.Commit(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(results)

		newCount := map[string]int{}
		for r := range results {
			switch {
			case r.sid == "SMbad":
				if r.err == nil {
					t.Error("the refused message was reported stored")
				}
			case r.err != nil:
				t.Errorf("%s failed with the refused message: %v", r.sid, r.err)
			case !r.visible:
				t.Errorf("%s answered before its commit was visible", r.sid)
			}
			if r.isNew {
				newCount[r.sid]++
			}
		}
		for _, m := range msgs {
			if want := map[bool]int{true: 0, false: 1}[m.sid == "SMbad"]; newCount[m.sid] != want {
				t.Errorf("%s reported new %d times, want %d", m.sid, newCount[m.sid], want)
			}
		}
		var rows, patients int
		_ = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_inbound`).Scan(&rows)
		_ = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_patient`).Scan(&patients)
		if rows != 7 || patients != 3 {
			t.Errorf("stored %d messages of %d patients, want 7 of 3", rows, patients)
		}
		// Each text's record and "sending" mark went in with it; none for the one refused.
		var records, marked int
		_ = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_message WHERE from_patient`).Scan(&records)
		_ = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_inbound WHERE sending_at IS NOT NULL`).Scan(&marked)
		if records != 7 || marked != 7 {
			t.Errorf("%d message records and %d sending marks, want 7 of each", records, marked)
		}

		// Alone, a retried MessageSid is acknowledged without being new.
		in := &Inbound{MessageID: "SM0", LoginID: "L", PatientID: "pa", Channel: ChannelSMS, From: "+14155550001", Body: "again"}
		if _, isNew, err := s.SaveInbound(ctx, in); err != nil || isNew {
			t.Fatalf("retried MessageSid: new %v, %v", isNew, err)
		}
		if got, _ := s.GetInbound(ctx, "SM0"); got.Body != "hello SM0" {
			t.Fatalf("a retry overwrote the stored message")
		}
	})
}

// TestSMSStoredWithItsRecordAndMark: an SMS without media is committed by its webhook together
// with its message record and its "sending" mark, so the inbox has nothing to commit before
// bridgev2; an MMS (its media fetched later) and a retried MessageSid are left to the inbox.
func TestSMSStoredWithItsRecordAndMark(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var (
			sms    *Inbound
			stored *Inbound
			msg    *Message
			err    error
		)
		// The patient's first text (a new patient) and a later one (a known patient: on
		// PostgreSQL the one-statement write) are recorded alike.
		for _, text := range []struct{ sid, body string }{{"SMnew", "my knee hurts"}, {"SMtext", "still hurts"}} {
			sms = &Inbound{MessageID: text.sid, LoginID: "L", PatientID: "p1", Channel: ChannelSMS, From: "+14155550101", Body: text.body}
			if _, isNew, err := s.SaveInbound(ctx, sms); err != nil || !isNew {
				t.Fatal(text.sid, isNew, err)
			}
			if sms.SendingAt.IsZero() || !sms.SendingAt.Equal(sms.ReceivedAt) {
				t.Errorf("%s: the webhook's message is marked sending at %v, want its arrival %v", text.sid, sms.SendingAt, sms.ReceivedAt)
			}
			stored, err = s.GetInbound(ctx, text.sid)
			if err != nil || stored.SendingAt.UnixMilli() != sms.ReceivedAt.UnixMilli() || stored.State != InboundPending ||
				stored.Body != text.body || stored.From != "+14155550101" {
				t.Fatalf("%s: stored row: %+v, %v; want pending, marked sending at arrival", text.sid, stored, err)
			}
			msg, err = s.GetMessage(ctx, text.sid)
			if err != nil || msg == nil {
				t.Fatalf("%s: no message record after the webhook's commit: %v", text.sid, err)
			}
			if msg.Body != text.body || !msg.FromPatient || msg.Channel != ChannelSMS || msg.TwilioSID != text.sid || msg.PatientID != "p1" ||
				msg.Status != StatusPending || msg.CreatedAt.UnixMilli() != sms.ReceivedAt.UnixMilli() || msg.SenderName != "" ||
				msg.RoomID != "" || msg.EventID != "" || msg.MXSender != "" {
				t.Errorf("%s: message record %+v", text.sid, msg)
			}
		}

		retried := *sms
		retried.Body = "changed"
		if _, isNew, err := s.SaveInbound(ctx, &retried); err != nil || isNew {
			t.Fatal(isNew, err)
		}
		if !retried.SendingAt.IsZero() {
			t.Error("a retried MessageSid is reported as marked by this call")
		}
		if msg, _ = s.GetMessage(ctx, "SMtext"); msg.Body != "still hurts" {
			t.Errorf("a retried MessageSid rewrote the record: %q", msg.Body)
		}

		mms := &Inbound{MessageID: "SMphoto", LoginID: "L", PatientID: "p1", Channel: ChannelSMS, From: "+14155550101", Body: "see",
			Media: []MediaRef{{URL: "https://api.twilio.com/media/1", ContentType: "image/jpeg"}}}
		if _, isNew, err := s.SaveInbound(ctx, mms); err != nil || !isNew {
			t.Fatal(isNew, err)
		}
		if stored, err = s.GetInbound(ctx, "SMphoto"); err != nil || !mms.SendingAt.IsZero() || !stored.SendingAt.IsZero() {
			t.Fatalf("an MMS is marked sending before its media were fetched: %v / %+v, %v", mms.SendingAt, stored, err)
		}
		if msg, err = s.GetMessage(ctx, "SMphoto"); err != nil || msg != nil {
			t.Fatalf("an MMS is recorded before its media were fetched: %+v, %v", msg, err)
		}

		portal, err := s.SavePortalInbound(ctx, &Message{ID: "mportal", PatientID: "p1", FromPatient: true, Channel: ChannelPortal, Body: "hi"}, "L")
		if err != nil {
			t.Fatal(err)
		}
		if stored, err = s.GetInbound(ctx, "mportal"); err != nil || portal.SendingAt.IsZero() || stored.SendingAt.UnixMilli() != portal.SendingAt.UnixMilli() {
			t.Fatalf("a portal post is not marked sending with its commit: %+v, %v", stored, err)
		}
	})
}

package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbtest"
)

// A database writer without the storage key moves one patient's sealed message, file or
// waiting text to another patient, with SQL only: careline refuses to open it there (it would
// otherwise show in the other patient's portal thread, or be texted to their number), and says
// which record failed.
func TestSealedValuesAreBoundToTheirOwner(t *testing.T) {
	dbtest.ForEach(t, "careline_owner", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct{ id, number, body string }{{"p1", "+14155550101", "your HIV test is negative"}, {"p2", "+14155550102", "see you tuesday"}} {
			if _, err := s.GetOrCreatePatient(ctx, p.id, "L", p.number); err != nil {
				t.Fatal(err)
			}
			err := s.SaveMessage(ctx, &Message{ID: "m-" + p.id, PatientID: p.id, Channel: ChannelSecure, Body: p.body, Status: StatusQueued,
				Attachments: []*Attachment{{ID: "a-" + p.id, FileName: p.id + " results.pdf", ContentType: "application/pdf", Data: []byte("%PDF " + p.body)}}})
			if err != nil {
				t.Fatal(err)
			}
			if err = s.Enqueue(ctx, &Outgoing{LoginID: "L", PatientID: p.id, Kind: KindMessage, Body: "Clinic: " + p.body, GiveUpAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		exec := func(query string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, query, args...); err != nil {
				t.Fatal(err)
			}
		}
		refused := func(what string, err error, names ...string) {
			t.Helper()
			if !errors.Is(err, atrest.ErrCorrupt) {
				t.Fatalf("%s moved to another patient: opened (err %v)", what, err)
			}
			for _, name := range names {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("the error does not name %s: %v", name, err)
				}
			}
		}

		// p1's message, with its file, moved into p2's thread.
		exec(`UPDATE careline_message SET patient_id='p2' WHERE id='m-p1'`)
		_, err := s.Thread(ctx, "p2")
		refused("a message", err, "m-p1", "p2")
		_, err = s.GetMessage(ctx, "m-p1")
		refused("a message", err)
		_, err = s.GetAttachment(ctx, "p2", "a-p1")
		refused("an attachment", err, "a-p1")
		exec(`UPDATE careline_message SET patient_id='p1' WHERE id='m-p1'`)

		// p1's file hung under p2's message.
		exec(`UPDATE careline_attachment SET message_id='m-p2' WHERE id='a-p1'`)
		_, err = s.MessageAttachments(ctx, "m-p2")
		refused("an attachment", err, "a-p1", "m-p2")
		exec(`UPDATE careline_attachment SET message_id='m-p1' WHERE id='a-p1'`)

		// p1's waiting text re-addressed to p2 (whose number it would be sent to).
		// It fails on its own (no error for the batch), and p2's own text goes after it.
		exec(`UPDATE careline_outbox SET patient_id='p2' WHERE patient_id='p1'`)
		claimed, err := s.ClaimDue(ctx, "L", 10, true)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claiming with one unreadable text: %d claimed, %v", len(claimed), err)
		}
		refused("a waiting text", claimed[0].Unreadable, "patient p2")
		if err = s.RecordOutcomes(ctx, []Outcome{{Text: claimed[0], Failed: true, Error: "unreadable"}}); err != nil {
			t.Fatal(err)
		}
		if claimed, err = s.ClaimDue(ctx, "L", 10, true); err != nil || len(claimed) != 1 || claimed[0].Unreadable != nil || claimed[0].Body != "Clinic: see you tuesday" {
			t.Fatalf("after the unreadable text failed, p2's own text: %d claimed, %v", len(claimed), err)
		}
		exec(`UPDATE careline_outbox SET patient_id='p1' WHERE seq=(SELECT MIN(seq) FROM careline_outbox)`)
		exec(`UPDATE careline_outbox SET state='pending'`)

		// A message waiting in the inbox, re-pointed at p2 (it would be bridged into p2's room).
		in := &Inbound{MessageID: "SMp1", LoginID: "L", PatientID: "p1", Channel: ChannelSMS, From: "+14155550101", Body: "I feel worse"}
		if _, _, err = s.SaveInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetInbound(ctx, "SMp1"); err != nil || got.Body != "I feel worse" {
			t.Fatalf("the incoming message in its own row: %v", err)
		}
		exec(`UPDATE careline_inbound SET patient_id='p2' WHERE message_id='SMp1'`)
		_, err = s.GetInbound(ctx, "SMp1")
		refused("a waiting incoming message", err, "SMp1", "p2")

		// Put back, everything opens again (the text's own record, written with it, too).
		thread, err := s.Thread(ctx, "p1")
		if err != nil || len(thread) != 2 || thread[0].Body != "your HIV test is negative" || thread[0].Attachments[0].FileName != "p1 results.pdf" ||
			thread[1].Body != "I feel worse" {
			t.Fatalf("p1's own thread: %v", err)
		}
		if due, err := s.ClaimDue(ctx, "L", 10, true); err != nil || len(due) != 2 || due[0].To != "+14155550101" || due[0].Body != "Clinic: your HIV test is negative" {
			t.Fatalf("the outbox after the texts were put back: %v", err)
		}
	})
}

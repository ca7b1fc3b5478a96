package store

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/pgtest"
)

// forEachDB runs fn against a fresh SQLite file and a fresh PostgreSQL database.
func forEachDB(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "s.db")+"?_txlock=immediate", "sqlite3-fk-wal")
		if err != nil {
			t.Fatal(err)
		}
		fn(t, newTestStore(t, db))
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := dbutil.NewWithDialect(pgtest.NewDatabase(t, "careline_store"), pgtest.Driver)
		if err != nil {
			t.Fatal(err)
		}
		fn(t, newTestStore(t, db))
	})
}

func newTestStore(t *testing.T, db *dbutil.Database) *Store {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	kr, err := atrest.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{9}, atrest.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	s := New(db, kr, zerolog.Nop())
	if err = s.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPatientSealedAtRest(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.GetOrCreatePatient(ctx, "p1", "login", "+14155550123"); err != nil {
			t.Fatal(err)
		}
		var sealed []byte
		var last4 string
		if err := s.DB.QueryRow(ctx, `SELECT phone_sealed, phone_last4 FROM careline_patient WHERE id='p1'`).Scan(&sealed, &last4); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte("4155550123")) || last4 != "0123" {
			t.Fatalf("phone stored readable: %q / %q", sealed, last4)
		}
		p, err := s.GetPatient(ctx, "p1")
		if err != nil || p.Phone != "+14155550123" {
			t.Fatalf("GetPatient = %+v, %v", p, err)
		}
	})
}

// sentText queues a staff message's text for login L and records Twilio's SID for it.
func sentText(t *testing.T, s *Store, login, messageID, sid string) *Outgoing {
	t.Helper()
	ctx := context.Background()
	if err := s.SaveMessage(ctx, &Message{ID: messageID, PatientID: "p1", Channel: ChannelSecure, Body: "x", Status: StatusQueued}); err != nil {
		t.Fatal(err)
	}
	o := &Outgoing{LoginID: login, PatientID: "p1", MessageID: messageID, Kind: KindMessage, Body: "notice", StatusCallback: true,
		GiveUpAt: time.Now().Add(time.Hour)}
	if err := s.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if sid != "" {
		if err := s.MarkOutboxSent(ctx, o, sid, StatusQueued); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func TestStatusNeverMovesBackwards(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		o := sentText(t, s, "L", "m1", "SM1")
		for _, step := range []struct {
			status  MessageStatus
			changed bool
			want    MessageStatus
		}{
			{StatusDelivered, true, StatusDelivered}, {StatusSent, false, StatusDelivered}, {StatusQueued, false, StatusDelivered},
			{StatusRead, true, StatusRead}, {StatusDelivered, false, StatusRead},
		} {
			m, changed, err := s.UpdateStatus(ctx, "L", o.Seq, "SM1", step.status, 0)
			if err != nil || changed != step.changed || m.Status != step.want {
				t.Fatalf("after %s: status %q changed %v, %v; want %q changed %v", step.status, m.Status, changed, err, step.want, step.changed)
			}
		}
		if m, _, err := s.UpdateStatus(ctx, "L", o.Seq+100, "SMunknown", StatusDelivered, 0); err != nil || m != nil {
			t.Fatalf("unknown outbox entry: %+v %v", m, err)
		}
	})
}

// TestStatusMatchedByLoginAndOutbox: a status callback changes only the text its URL names,
// of the login its URL names, carrying the SID Twilio gave that text (issue 10, finding 13:
// matched by SID alone, one account's callback could change another login's message).
func TestStatusMatchedByLoginAndOutbox(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		mine := sentText(t, s, "L", "m1", "SM1")
		theirs := sentText(t, s, "OTHER", "m2", "SM2")
		for name, try := range map[string]struct {
			login string
			seq   int64
			sid   string
		}{
			"another login's text":      {"L", theirs.Seq, "SM2"},
			"from another login":        {"OTHER", mine.Seq, "SM1"},
			"another SID for this text": {"L", mine.Seq, "SM2"},
		} {
			if m, changed, err := s.UpdateStatus(ctx, try.login, try.seq, try.sid, StatusFailed, 30003); err != nil || changed || m != nil {
				t.Errorf("%s: changed %v (%+v), %v", name, changed, m, err)
			}
		}
		for _, id := range []string{"m1", "m2"} {
			if m, _ := s.GetMessage(ctx, id); m.Status != StatusQueued {
				t.Errorf("%s is %s, want untouched", id, m.Status)
			}
		}
	})
}

// TestStatusBeforeSIDIsRecorded: Twilio may call back before careline recorded its answer to
// the send; the callback names the text, so it applies, and recording the SID afterwards
// does not move the message back.
func TestStatusBeforeSIDIsRecorded(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		o := sentText(t, s, "L", "m1", "")
		if m, changed, err := s.UpdateStatus(ctx, "L", o.Seq, "SMearly", StatusDelivered, 0); err != nil || !changed || m.Status != StatusDelivered {
			t.Fatalf("early status: %+v %v %v", m, changed, err)
		}
		if err := s.MarkOutboxSent(ctx, o, "SMearly", StatusQueued); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.GetMessage(ctx, "m1"); m.Status != StatusDelivered || m.TwilioSID != "SMearly" {
			t.Fatalf("after the SID was recorded: %+v", m)
		}
	})
}

func TestOutboxOrderAndPriority(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "a", "L", "+14155550001")
		_, _ = s.GetOrCreatePatient(ctx, "b", "L", "+14155550002")
		enqueue := func(patient string, kind OutboxKind, body string) *Outgoing {
			o := &Outgoing{LoginID: "L", PatientID: patient, Kind: kind, Body: body, GiveUpAt: time.Now().Add(time.Hour)}
			if err := s.Enqueue(ctx, o); err != nil {
				t.Fatal(err)
			}
			return o
		}
		a1 := enqueue("a", KindMessage, "a1")
		a2 := enqueue("a", KindMessage, "a2")
		b1 := enqueue("b", KindMessage, "b1")
		code := enqueue("a", KindCode, "code")
		claim := func(limit int) []string {
			t.Helper()
			texts, err := s.ClaimDue(ctx, "L", limit, true)
			if err != nil {
				t.Fatal(err)
			}
			var bodies []string
			for _, o := range texts {
				if o.To == "" || o.State != OutboxSending {
					t.Fatalf("claimed %+v without its number or state", o)
				}
				bodies = append(bodies, o.Body)
			}
			return bodies
		}
		// Codes first, then one text per patient, oldest first: a2 waits for a1.
		if got := claim(10); !slices.Equal(got, []string{"code", "a1", "b1"}) {
			t.Fatalf("first claim = %q", got)
		}
		if got := claim(10); len(got) != 0 {
			t.Fatalf("claimed again while sending: %q", got)
		}
		err := s.RecordOutcomes(ctx, []Outcome{
			{Text: code, SID: "SMc", Status: StatusQueued},
			{Text: a1, RetryAt: time.Now().Add(time.Hour), Error: "429"},
			{Text: b1, SID: "SMb", Status: StatusQueued},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := claim(10); len(got) != 0 {
			t.Fatalf("a2 overtook a1 while a1 waits: %q", got)
		}
		_ = s.Retry(ctx, a1.Seq, time.Now().Add(-time.Second), "429")
		texts, _ := s.ClaimDue(ctx, "L", 10, true)
		if len(texts) != 1 || texts[0].Seq != a1.Seq || texts[0].Attempts != 2 {
			t.Fatalf("after the wait, claimed %+v, want a1 on its second attempt", texts)
		}
		_ = s.RecordOutcomes(ctx, []Outcome{{Text: a1, SID: "SMa", Status: StatusQueued}})
		if got := claim(1); !slices.Equal(got, []string{"a2"}) {
			t.Fatalf("last = %q, want a2", got)
		}
		var sealed []byte
		_ = s.DB.QueryRow(ctx, `SELECT body_sealed FROM careline_outbox WHERE seq=$1`, a2.Seq).Scan(&sealed)
		if bytes.Contains(sealed, []byte("a2")) || len(sealed) == 0 {
			t.Fatal("outbox body not sealed")
		}
	})
}

func TestRetentionPurgesOnlyWhatIsDue(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p", "L", "+14155550001")
		old := time.Now().Add(-40 * 24 * time.Hour)
		save := func(id string, at time.Time) {
			err := s.SaveMessage(ctx, &Message{ID: id, PatientID: "p", Channel: ChannelSMS, Body: "body " + id, Status: StatusReceived,
				CreatedAt: at, Attachments: []*Attachment{{ID: id + "-a", FileName: "x.png", ContentType: "image/png", Data: []byte("png")}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		save("old", old)
		save("new", time.Now())
		purged, err := s.PurgeBefore(ctx, time.Now().Add(-30*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if purged.Messages != 1 || purged.Attachments != 1 {
			t.Fatalf("purged %+v, want 1 message and 1 attachment", purged)
		}
		thread, err := s.Thread(ctx, "p")
		if err != nil || len(thread) != 2 {
			t.Fatalf("thread: %v %d", err, len(thread))
		}
		if !thread[0].Expired || thread[0].Body != "" || len(thread[0].Attachments) != 0 {
			t.Fatalf("old message not erased: %+v", thread[0])
		}
		if thread[1].Expired || thread[1].Body != "body new" || len(thread[1].Attachments) != 1 {
			t.Fatalf("new message touched: %+v", thread[1])
		}
	})
}

// TestKeywordActedOnOnce: a keyword message is recorded once and kept past the retention
// purge, so a replayed STOP or START (issue 10, finding 13) is recognised.
func TestKeywordActedOnOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		in := &Inbound{MessageID: "SMstop", LoginID: "L", PatientID: "p1", Channel: ChannelSMS, From: "+14155550123", Body: "STOP"}
		if _, isNew, err := s.SaveInbound(ctx, in); err != nil || !isNew {
			t.Fatal(isNew, err)
		}
		if first, err := s.RecordKeyword(ctx, "SMstop", "p1", KeywordOptOut); err != nil || !first {
			t.Fatal(first, err)
		}
		_ = s.MarkInboundBridged(ctx, "SMstop")
		if p, err := s.PurgeBefore(ctx, time.Now().Add(time.Minute)); err != nil || p.Inbound != 1 {
			t.Fatalf("purge = %+v, %v", p, err)
		}
		if _, isNew, err := s.SaveInbound(ctx, in); err != nil || !isNew {
			t.Fatalf("after the purge the replay is new to the inbox: %v %v", isNew, err)
		}
		if first, err := s.RecordKeyword(ctx, "SMstop", "p1", KeywordOptOut); err != nil || first {
			t.Fatalf("replayed keyword acted on again: %v %v", first, err)
		}
	})
}

// TestConsentHowSealed: staff type names into the consent's "how"; it is sealed at rest.
func TestConsentHowSealed(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		how := "verbal, daughter Mary Smith present"
		if err := s.SetConsent(ctx, "p1", &Consent{At: time.Now(), By: "@dr:clinic", How: how}); err != nil {
			t.Fatal(err)
		}
		var sealed []byte
		if err := s.DB.QueryRow(ctx, `SELECT consent_how_sealed FROM careline_patient WHERE id='p1'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, []byte("Mary")) {
			t.Fatalf("consent how stored readable: %q", sealed)
		}
		if p, err := s.GetPatient(ctx, "p1"); err != nil || p.Consent == nil || p.Consent.How != how {
			t.Fatalf("GetPatient = %+v, %v", p, err)
		}
	})
}

// TestInboxGivesUpAndTellsThePortal: a message that cannot reach its room is retried with a
// schedule, then given up; a portal message then shows as failed to the patient.
func TestInboxGivesUpAndTellsThePortal(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		m := &Message{ID: "mportal", PatientID: "p1", FromPatient: true, Channel: ChannelPortal, Body: "my knee hurts"}
		if _, err := s.SavePortalInbound(ctx, m, "L"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetMessage(ctx, "mportal"); got.Status != StatusPending {
			t.Fatalf("portal message saved as %s, want pending", got.Status)
		}
		if due, err := s.DueInbound(ctx, 10); err != nil || len(due) != 1 || due[0].Channel != ChannelPortal {
			t.Fatalf("due = %+v, %v", due, err)
		}
		if err := s.RetryInbound(ctx, "mportal", time.Now().Add(time.Hour), "homeserver down"); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueInbound(ctx, 10); len(due) != 0 {
			t.Fatalf("retried before its time: %+v", due)
		}
		if err := s.GiveUpInbound(ctx, "mportal", "homeserver down"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetMessage(ctx, "mportal"); got.Status != StatusFailed {
			t.Fatalf("given-up message is %s, want failed", got.Status)
		}
		if in, _ := s.GetInbound(ctx, "mportal"); in.State != InboundFailed || in.Attempts != 2 {
			t.Fatalf("inbox row %+v", in)
		}
	})
}

func TestAttachmentNameSealedAtRest(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		err := s.SaveMessage(ctx, &Message{ID: "m1", PatientID: "p1", FromPatient: true, Channel: ChannelPortal, Body: "x",
			Attachments: []*Attachment{{ID: "a1", FileName: "MRI knee Jane Doe.pdf", ContentType: "application/pdf", Data: []byte("%PDF-")}}})
		if err != nil {
			t.Fatal(err)
		}
		var readable int
		if err = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_attachment WHERE name_sealed IS NULL`).Scan(&readable); err != nil || readable != 0 {
			t.Fatalf("%d attachment names stored readable (%v)", readable, err)
		}
		thread, err := s.Thread(ctx, "p1")
		if err != nil || len(thread) != 1 || len(thread[0].Attachments) != 1 {
			t.Fatalf("Thread = %+v, %v", thread, err)
		}
		for _, a := range thread[0].Attachments {
			if want := "MRI knee Jane Doe.pdf"; a.FileName != want {
				t.Errorf("attachment %s named %q, want %q", a.ID, a.FileName, want)
			}
		}
		if a, err := s.GetAttachment(ctx, "p1", "a1"); err != nil || a.FileName != "MRI knee Jane Doe.pdf" {
			t.Fatalf("GetAttachment = %+v, %v", a, err)
		}
	})
}

// Two texts careline sent cannot carry one Twilio SID, although the SID index now leaves out
// inbound messages (whose SID is their id, unique as the primary key).
func TestSentTextsKeepUniqueSIDs(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.GetOrCreatePatient(ctx, "p1", "login", "+14155550123"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"m1", "m2"} {
			if err := s.SaveMessage(ctx, &Message{ID: id, PatientID: "p1", Channel: ChannelSMS, Body: "x", Status: StatusQueued}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetSent(ctx, "m1", "SM0001", StatusSent); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSent(ctx, "m2", "SM0001", StatusSent); err == nil {
			t.Error("a second sent text took the SID of the first")
		}
		if err := s.SetSent(ctx, "m2", "SM0002", StatusSent); err != nil {
			t.Fatal(err)
		}
	})
}

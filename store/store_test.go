package store

import (
	"bytes"
	"context"
	"path/filepath"
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
		db, err := dbutil.NewWithDialect(pgtest.NewDatabase(t, "careline_store"), "postgres")
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
		if err := s.EnsurePatient(ctx, "p1", "login", "+14155550123"); err != nil {
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

func TestStatusNeverMovesBackwards(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_ = s.EnsurePatient(ctx, "p1", "login", "+14155550123")
		if err := s.SaveMessage(ctx, &Message{ID: "m1", PatientID: "p1", Channel: ChannelSecure, Body: "x", TwilioSID: "SM1", Status: "queued"}); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			status  string
			changed bool
			want    string
		}{
			{"delivered", true, "delivered"}, {"sent", false, "delivered"}, {"queued", false, "delivered"},
			{"read", true, "read"}, {"delivered", false, "read"},
		} {
			m, changed, err := s.UpdateStatus(ctx, "SM1", step.status, 0)
			if err != nil || changed != step.changed || m.Status != step.want {
				t.Fatalf("after %s: status %q changed %v, %v; want %q changed %v", step.status, m.Status, changed, err, step.want, step.changed)
			}
		}
		if m, _, err := s.UpdateStatus(ctx, "SMunknown", "delivered", 0); err != nil || m != nil {
			t.Fatalf("unknown SID: %+v %v", m, err)
		}
	})
}

func TestOutboxOrderAndPriority(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_ = s.EnsurePatient(ctx, "a", "L", "+14155550001")
		_ = s.EnsurePatient(ctx, "b", "L", "+14155550002")
		enqueue := func(patient, kind, body string) *Outgoing {
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
		next := func() *Outgoing {
			t.Helper()
			o, err := s.NextDue(ctx, "L")
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		if o := next(); o.Seq != code.Seq || o.Body != "code" {
			t.Fatalf("first = %+v, want the code", o)
		}
		_ = s.MarkOutboxSent(ctx, code, "SMc", "queued")
		if o := next(); o.Seq != a1.Seq {
			t.Fatalf("second = %q, want a1", o.Body)
		}
		// a1 is being retried later: a2 must wait for it, b1 may go.
		_ = s.MarkSending(ctx, a1.Seq)
		_ = s.Retry(ctx, a1.Seq, time.Now().Add(time.Hour), "429")
		if o := next(); o.Seq != b1.Seq {
			t.Fatalf("while a1 waits, next = %q, want b1", o.Body)
		}
		_ = s.MarkOutboxSent(ctx, b1, "SMb", "queued")
		if o := next(); o != nil {
			t.Fatalf("a2 overtook a1: %q", o.Body)
		}
		_ = s.Retry(ctx, a1.Seq, time.Now().Add(-time.Second), "429")
		if o := next(); o.Seq != a1.Seq || o.Attempts != 1 {
			t.Fatalf("after the wait, next = %+v, want a1 with 1 attempt", o)
		}
		_ = s.MarkOutboxSent(ctx, a1, "SMa", "queued")
		if o := next(); o.Seq != a2.Seq {
			t.Fatalf("last = %+v, want a2", o)
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
		_ = s.EnsurePatient(ctx, "p", "L", "+14155550001")
		old := time.Now().Add(-40 * 24 * time.Hour)
		save := func(id string, at time.Time) {
			err := s.SaveMessage(ctx, &Message{ID: id, PatientID: "p", Channel: ChannelSMS, Body: "body " + id, Status: "received",
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

func TestEarlyStatusHeldUntilTheSIDIsRecorded(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_ = s.EnsurePatient(ctx, "p1", "L", "+14155550123")
		for _, st := range []string{"delivered", "sent", "delivered"} {
			if held, err := s.HoldStatus(ctx, "SMearly", st, 0); err != nil || !held {
				t.Fatalf("HoldStatus(%s) = %v, %v", st, held, err)
			}
		}
		// A code's status is not held: its SID is known to the outbox and carries no message.
		code := &Outgoing{LoginID: "L", PatientID: "p1", Kind: KindCode, Body: "123456", GiveUpAt: time.Now().Add(time.Minute)}
		if err := s.Enqueue(ctx, code); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkOutboxSent(ctx, code, "SMcode", "queued"); err != nil {
			t.Fatal(err)
		}
		if held, err := s.HoldStatus(ctx, "SMcode", "delivered", 0); err != nil || held {
			t.Fatalf("status of a code held: %v, %v", held, err)
		}
		got, err := s.TakeEarlyStatuses(ctx, "SMearly")
		if err != nil || len(got) != 2 || got[0].Status != "sent" || got[1].Status != "delivered" {
			t.Fatalf("TakeEarlyStatuses = %+v, %v; want sent then delivered, once each", got, err)
		}
		if again, err := s.TakeEarlyStatuses(ctx, "SMearly"); err != nil || len(again) != 0 {
			t.Fatalf("statuses taken twice: %+v, %v", again, err)
		}
		// Held statuses of texts that never showed up go with the retention purge.
		_, _ = s.HoldStatus(ctx, "SMnever", "failed", 30003)
		p, err := s.PurgeBefore(ctx, time.Now().Add(time.Minute))
		if err != nil || p.Statuses != 1 {
			t.Fatalf("purge = %+v, %v; want 1 held status erased", p, err)
		}
	})
}

func TestAttachmentNameSealedAtRest(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_ = s.EnsurePatient(ctx, "p1", "L", "+14155550123")
		err := s.SaveMessage(ctx, &Message{ID: "m1", PatientID: "p1", FromPatient: true, Channel: ChannelPortal, Body: "x",
			Attachments: []*Attachment{{ID: "a1", FileName: "MRI knee Jane Doe.pdf", ContentType: "application/pdf", Data: []byte("%PDF-")}}})
		if err != nil {
			t.Fatal(err)
		}
		// A row as written before names were sealed.
		_, err = s.DB.Exec(ctx, `INSERT INTO careline_attachment (id, message_id, file_name, content_type, size, data_sealed)
			VALUES ('a0', 'm1', 'old name John Roe.png', 'image/png', 1, $1)`, s.Seal.Seal([]byte("p"), attachmentContext("a0")))
		if err != nil {
			t.Fatal(err)
		}
		if err = s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		var readable int
		if err = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_attachment WHERE file_name <> '' OR name_sealed IS NULL`).Scan(&readable); err != nil || readable != 0 {
			t.Fatalf("%d attachment names stored readable (%v)", readable, err)
		}
		thread, err := s.Thread(ctx, "p1")
		if err != nil || len(thread) != 1 || len(thread[0].Attachments) != 2 {
			t.Fatalf("Thread = %+v, %v", thread, err)
		}
		for _, a := range thread[0].Attachments {
			if want := map[string]string{"a0": "old name John Roe.png", "a1": "MRI knee Jane Doe.pdf"}[a.ID]; a.FileName != want {
				t.Errorf("attachment %s named %q, want %q", a.ID, a.FileName, want)
			}
		}
		if a, err := s.GetAttachment(ctx, "p1", "a1"); err != nil || a.FileName != "MRI knee Jane Doe.pdf" {
			t.Fatalf("GetAttachment = %+v, %v", a, err)
		}
	})
}

package portalremind

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/store"
)

// TestRemindOnceThenTellStaff: per patient, the oldest unopened secure message brings one
// reminder once it is old enough; later unopened messages share it; a message opened, plain,
// failed, or sent before an end-access brings none; staff are told once, later, if it stays
// unopened.
func TestRemindOnceThenTellStaff(t *testing.T) {
	dbtest.ForEach(t, "portalremind", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		st := store.New(db, dbtest.Keyring(t), zerolog.Nop())
		log := audit.New(db, audit.KeyFromSecret(strings.Repeat("k", 40)), zerolog.Nop())
		s := New(db, zerolog.Nop())
		for _, up := range []func(context.Context) error{st.Upgrade, log.Upgrade, s.Upgrade} {
			if err := up(ctx); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Now().Add(-72 * time.Hour).Truncate(time.Millisecond)
		send := func(msgID, patient string, channel store.Channel, status store.MessageStatus, at time.Time) {
			t.Helper()
			if _, err := st.GetOrCreatePatient(ctx, patient, "L", "+1415555"+patient[1:]); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveMessage(ctx, &store.Message{ID: msgID, PatientID: patient, Channel: channel, Body: "x",
				RoomID: id.RoomID("!room-" + patient), Status: status, CreatedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		send("a1", "p1000", store.ChannelSecure, store.StatusDelivered, t0)
		send("a2", "p1000", store.ChannelSecure, store.StatusDelivered, t0.Add(time.Hour)) // shares a1's reminder
		send("b1", "p2000", store.ChannelSecure, store.StatusDelivered, t0)                // opened
		send("c1", "p3000", store.ChannelSMS, store.StatusDelivered, t0)                   // plain: nothing to open
		send("d1", "p4000", store.ChannelSecure, store.StatusFailed, t0)                   // never arrived
		send("e1", "p5000", store.ChannelSecure, store.StatusDelivered, t0)                // access ended since
		send("f1", "p6000", store.ChannelSecure, store.StatusSent, t0.Add(30*time.Hour))   // too recent
		if _, err := st.MarkRead(ctx, "p2000", []string{"b1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := log.Append(ctx, audit.Entry{Actor: "@lee:x", Action: "portal.access_ended", PatientID: "p5000"}); err != nil {
			t.Fatal(err)
		}
		cutoff := t0.Add(24 * time.Hour)
		due, err := s.DueReminders(ctx, t0.Add(-time.Minute), cutoff)
		if err != nil || len(due) != 1 || due[0].MessageID != "a1" || due[0].RoomID != "!room-p1000" || !due[0].At.Equal(t0) {
			t.Fatalf("due %+v (%v), want a1 only", due, err)
		}
		if ok, err := s.TakeReminder(ctx, due[0], cutoff); err != nil || !ok {
			t.Fatalf("take: %v %v", ok, err)
		}
		if ok, _ := s.TakeReminder(ctx, due[0], cutoff); ok {
			t.Fatal("a reminder was taken twice")
		}
		if due, _ = s.DueReminders(ctx, t0, t0.Add(48*time.Hour)); len(due) != 1 || due[0].MessageID != "f1" {
			t.Fatalf("due a day later %+v, want f1 only (a2 shares a1's reminder)", due)
		}
		send("g1", "p7000", store.ChannelSecure, store.StatusDelivered, t0.Add(-time.Hour)) // before the window: too old
		if old, _ := s.DueReminders(ctx, t0, t0.Add(48*time.Hour)); len(old) != 1 || old[0].MessageID != "f1" {
			t.Fatalf("due with an old message %+v, want f1 only", old)
		}
		// Staff are told once, a period after the reminder: StillUnopened takes now minus the period.
		if told, _ := s.StillUnopened(ctx, cutoff.Add(-time.Minute)); len(told) != 0 {
			t.Fatalf("staff told too early: %+v", told)
		}
		told, err := s.StillUnopened(ctx, cutoff)
		if err != nil || len(told) != 1 || told[0].MessageID != "a1" || !told[0].At.Equal(cutoff) {
			t.Fatalf("still unopened %+v (%v), want a1", told, err)
		}
		if ok, _ := s.TakeStaffTold(ctx, "a1", cutoff.Add(24*time.Hour)); !ok {
			t.Fatal("telling staff was not recorded")
		}
		if ok, _ := s.TakeStaffTold(ctx, "a1", cutoff.Add(25*time.Hour)); ok {
			t.Fatal("staff were told twice")
		}
		if told, _ = s.StillUnopened(ctx, cutoff.Add(48*time.Hour)); len(told) != 0 {
			t.Fatalf("still listed after staff were told: %+v", told)
		}
		// A reminded message opened before the period ends: staff are not told.
		f1 := due[0]
		if ok, _ := s.TakeReminder(ctx, f1, t0.Add(48*time.Hour)); !ok {
			t.Fatal("f1's reminder not taken")
		}
		if _, err = st.MarkRead(ctx, "p6000", []string{"f1"}); err != nil {
			t.Fatal(err)
		}
		if told, _ = s.StillUnopened(ctx, t0.Add(96*time.Hour)); len(told) != 0 {
			t.Fatalf("staff told about an opened message: %+v", told)
		}
	})
}

package bridge

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/twiliofake"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "0123456789abcdef0123456789abcdef"
	testClinic     = "+15005550006"
	testPatient    = "+14155550123"
)

// inboundFixture is a connector with a real store and audit trail on SQLite and a fake
// Twilio, enough to run the steps after a message reached its room.
type inboundFixture struct {
	c      *Connector
	client *Client
	fake   *twiliofake.Server
	store  *store.Store
}

func newInboundFixture(t *testing.T) *inboundFixture {
	t.Helper()
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "c.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return newInboundFixtureOn(t, db)
}

// newInboundFixtureOn is the fixture on a given database (see dbtest.ForEach).
// newSenderFixture is an inbound fixture whose outbox sender texts patient p1 at 100 a second
// and keeps trying for an hour.
func newSenderFixture(t *testing.T) *inboundFixture {
	t.Helper()
	f := newInboundFixture(t)
	f.c.Config.Twilio.MessagesPerSecond, f.c.Config.Twilio.GiveUpAfter = 100, time.Hour
	if _, err := f.store.GetOrCreatePatient(context.Background(), "p1", "L", testPatient); err != nil {
		t.Fatal(err)
	}
	return f
}

func newInboundFixtureOn(t *testing.T, db *dbutil.Database) *inboundFixture {
	t.Helper()
	keys, err := atrest.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, atrest.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := store.New(db, keys, zerolog.Nop())
	if err = st.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	trail := audit.New(db, audit.KeyFromSecret("a test identity key that is long enough to use"), zerolog.Nop())
	if err = trail.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	fake, err := twiliofake.Start(twiliofake.Options{AccountSID: testAccountSID, AuthToken: testAuthToken, Numbers: []string{testClinic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	tw, err := twilioapi.New(fake.URL, testAccountSID, testAuthToken)
	if err != nil {
		t.Fatal(err)
	}
	c := &Connector{Store: st, Audit: trail, tablesReady: make(chan struct{})}
	close(c.tablesReady) // upgraded above, as Start does
	c.Config.Privacy.PatientName = "Patient ···{last4}"
	c.Config.Delivery.HelpReply = "Sunrise Clinic: call 555-0100."
	client := &Client{
		connector: c,
		login:     &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "L"}, Log: zerolog.Nop()},
		meta:      &UserLoginMetadata{AccountSID: testAccountSID, PhoneNumber: testClinic},
		twilio:    tw,
	}
	c.inbox = &inbox{c: c}
	return &inboundFixture{c: c, client: client, fake: fake, store: st}
}

// receive has the fake Twilio deliver a text (with media) and stores it as the webhook would.
func (f *inboundFixture) receive(t *testing.T, body string, media ...twiliofake.Media) (*store.Inbound, *store.Patient) {
	t.Helper()
	forms := make(chan url.Values, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		forms <- r.PostForm
	}))
	defer hook.Close()
	if _, _, err := f.fake.SendSMS(context.Background(), hook.URL, twiliofake.Inbound{From: testPatient, To: testClinic, Body: body, Media: media}); err != nil {
		t.Fatal(err)
	}
	in, err := parseInbound(<-forms)
	if err != nil {
		t.Fatal(err)
	}
	in.LoginID, in.PatientID = "L", "p1"
	patient, isNew, err := f.store.SaveInbound(context.Background(), in)
	if err != nil || !isNew {
		t.Fatal(isNew, err)
	}
	return in, patient
}

// finish runs what follows a message into its room, as the inbox does after bridgev2 took it.
func (f *inboundFixture) finish(ctx context.Context, patient *store.Patient, room *bridgev2.Portal, in *store.Inbound,
	msg *store.Message, attachments int, fetched []store.MediaRef) error {
	job := f.job(patient, room, in, msg)
	job.attachments, job.fetched = make([]*store.Attachment, attachments), fetched
	f.c.afterRoom(ctx, job)
	return f.c.finishInbound(ctx, job)
}

func (f *inboundFixture) job(patient *store.Patient, room *bridgev2.Portal, in *store.Inbound, msg *store.Message) *inboundJob {
	return &inboundJob{inboxItem: &inboxItem{in: in, patient: patient, client: f.client}, log: zerolog.Nop(), msg: msg, portal: room}
}

func auditActions(t *testing.T, trail *audit.Log) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	if _, err := trail.Export(context.Background(), &buf, time.Time{}, time.Time{}, "csv"); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, action := range []string{"optout", "optin", "message.received"} {
		counts[action] = bytes.Count(buf.Bytes(), []byte(","+action+","))
	}
	return counts
}

// TestRecoveredMessageStillRunsItsSteps: when a retry finds a patient's message already in
// its room (careline stopped after the homeserver took it), the STOP it carries is still
// recorded, its audit entry written and its media deleted at Twilio (issue 10, finding 4:
// that path returned early and skipped all three). A second retry changes nothing more.
func TestRecoveredMessageStillRunsItsSteps(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	in, patient := f.receive(t, "STOP", twiliofake.Media{ContentType: "image/png", Data: []byte("\x89PNG....")})
	if len(in.Media) != 1 {
		t.Fatalf("media refs %+v", in.Media)
	}
	mediaSID := path.Base(in.Media[0].URL)
	if !f.fake.HasMedia(mediaSID) {
		t.Fatal("the fake does not hold the media")
	}
	msg := &store.Message{ID: in.MessageID, PatientID: "p1", FromPatient: true, Channel: store.ChannelSMS, Body: in.Body,
		TwilioSID: in.MessageID, Status: store.StatusPending}
	if err := f.store.SaveMessage(ctx, msg); err != nil {
		t.Fatal(err)
	}
	room := &bridgev2.Portal{Portal: &database.Portal{}} // no Matrix room: notices are skipped
	for attempt := 1; attempt <= 2; attempt++ {
		if err := f.finish(ctx, patient, room, in, msg, 1, in.Media); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if p, _ := f.store.GetPatient(ctx, "p1"); p.OptedOutAt.IsZero() {
		t.Error("STOP was not recorded")
	}
	if f.fake.HasMedia(mediaSID) {
		t.Error("the media were left at Twilio")
	}
	if got := auditActions(t, f.c.Audit); got["optout"] != 1 || got["message.received"] < 1 {
		t.Errorf("audit entries %v, want one optout and the message received", got)
	}
	if row, _ := f.store.GetInbound(ctx, in.MessageID); row.State != store.InboundBridged {
		t.Errorf("inbox row %s, want bridged", row.State)
	}
}

// TestMMSWithDeletedMediaIsNotRetriedForever: media Twilio no longer has (deleted by an
// earlier attempt, or by the clinic) are noted, not fetched again and again (issue 10,
// finding 4: a 404 was retried every 2 s forever).
func TestMMSWithDeletedMediaIsNotRetriedForever(t *testing.T) {
	f := newInboundFixture(t)
	in, _ := f.receive(t, "photo of the rash", twiliofake.Media{ContentType: "image/jpeg", Data: []byte("\xff\xd8\xff....")},
		twiliofake.Media{ContentType: "image/png", Data: []byte("\x89PNG....")})
	// The first is gone at Twilio before careline fetches it.
	if err := f.client.twilio.DeleteMedia(in.MessageID, in.Media[0].URL); err != nil {
		t.Fatal(err)
	}
	attachments, fetched, missing, err := f.client.fetchMedia(context.Background(), in)
	if err != nil {
		t.Fatalf("fetching an MMS with a deleted attachment failed (it would be retried forever): %v", err)
	}
	if len(attachments) != 1 || len(fetched) != 1 || len(missing) != 1 || missing[0] != 0 {
		t.Fatalf("attachments %d, fetched %d, missing %v; want the second fetched and the first noted", len(attachments), len(fetched), missing)
	}
	if note := missingMediaNote(missing); note == "" {
		t.Fatal("staff are not told about the missing attachment")
	}
}

// TestConsentHowNotInTheAuditTrail: the free text of how consent was obtained (staff type
// names into it) is sealed in the patient record and not copied into the audit trail
// (issue 10, finding 13).
func TestConsentHowNotInTheAuditTrail(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	if _, err := f.store.GetOrCreatePatient(ctx, "p1", "L", testPatient); err != nil {
		t.Fatal(err)
	}
	how := "verbal, daughter Mary Smith on the phone"
	if _, err := f.c.recordConsent(ctx, "p1", "@dr.lee:clinic.example", how); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := f.c.Audit.Export(ctx, &buf, time.Time{}, time.Time{}, "jsonl"); err != nil || n != 1 {
		t.Fatalf("export: %d entries, %v", n, err)
	}
	if bytes.Contains(buf.Bytes(), []byte("Mary")) || !bytes.Contains(buf.Bytes(), []byte("consent.recorded")) {
		t.Fatalf("audit trail: %s", buf.String())
	}
	if p, _ := f.store.GetPatient(ctx, "p1"); p.Consent == nil || p.Consent.How != how {
		t.Fatalf("consent not recorded: %+v", p.Consent)
	}
}

// TestReplayedStopAfterPurgeChangesNothing: a STOP webhook replayed after retention purged the
// inbox's record of it (the signature stays valid forever) must not opt the patient out again
// after they texted START (issue 10, finding 13).
func TestReplayedStopAfterPurgeChangesNothing(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	room := &bridgev2.Portal{Portal: &database.Portal{}}
	finish := func(in *store.Inbound, patient *store.Patient) {
		t.Helper()
		msg := &store.Message{ID: in.MessageID, PatientID: "p1", FromPatient: true, Channel: store.ChannelSMS, Body: in.Body,
			TwilioSID: in.MessageID, Status: store.StatusPending}
		if err := f.store.SaveMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if err := f.finish(ctx, patient, room, in, msg, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	stop, patient := f.receive(t, "STOP")
	finish(stop, patient)
	start, patient := f.receive(t, "START")
	finish(start, patient)
	if p, _ := f.store.GetPatient(ctx, "p1"); !p.OptedOutAt.IsZero() {
		t.Fatal("START did not opt the patient back in")
	}
	if _, err := f.store.PurgeBefore(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	replay := *stop
	patient, isNew, err := f.store.SaveInbound(ctx, &replay)
	if err != nil || !isNew {
		t.Fatalf("after the purge the inbox should take the replay as new: %v %v", isNew, err)
	}
	if err := f.finish(ctx, patient, room, &replay, &store.Message{ID: replay.MessageID, PatientID: "p1",
		Channel: store.ChannelSMS, TwilioSID: replay.MessageID}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := f.store.GetPatient(ctx, "p1"); !p.OptedOutAt.IsZero() {
		t.Fatal("a replayed STOP opted the patient out again")
	}
	if got := auditActions(t, f.c.Audit); got["optout"] != 1 || got["optin"] != 1 {
		t.Fatalf("audit entries %v, want one optout and one optin", got)
	}
}

// TestFinishingABatch: messages closed in one commit keep their order in the audit trail, a
// STOP among them is applied between the messages around it, and every row is closed.
func TestFinishingABatch(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	room := &bridgev2.Portal{Portal: &database.Portal{}}
	var jobs []*inboundJob
	for _, body := range []string{"first", "STOP", "third"} {
		in, patient := f.receive(t, body)
		msg := &store.Message{ID: in.MessageID, PatientID: "p1", FromPatient: true, Channel: store.ChannelSMS, Body: in.Body,
			TwilioSID: in.MessageID, Status: store.StatusPending}
		if err := f.store.SaveMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, f.job(patient, room, in, msg))
	}
	if err := f.c.finishInbound(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.c.Audit.Export(ctx, &buf, time.Time{}, time.Time{}, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, row := range rows[1:] { // columns: seq, at, actor, action, patient_id, channel, twilio_sid, …
		trail = append(trail, row[3]+" "+row[6])
	}
	want := []string{"message.received " + jobs[0].in.MessageID, "optout ", "message.received " + jobs[1].in.MessageID,
		"message.received " + jobs[2].in.MessageID}
	if !slices.Equal(trail, want) {
		t.Fatalf("audit trail\n%q\nwant\n%q", trail, want)
	}
	if r, err := f.c.Audit.Verify(ctx); err != nil || !r.Intact() {
		t.Fatalf("chain: %+v, %v", r, err)
	}
	for _, job := range jobs {
		if row, _ := f.store.GetInbound(ctx, job.in.MessageID); row.State != store.InboundBridged {
			t.Errorf("inbox row %s, want bridged", row.State)
		}
		if m, _ := f.store.GetMessage(ctx, job.in.MessageID); m.Status != store.StatusReceived {
			t.Errorf("message %s, want received", m.Status)
		}
	}
	if p, _ := f.store.GetPatient(ctx, "p1"); p.OptedOutAt.IsZero() {
		t.Error("STOP was not applied")
	}
}

// TestSweptRowFinishedMeanwhileIsLeftAlone: the sweep may read a row just before the attempt
// in flight closes it; the stale copy must not be bridged and finished a second time (it
// stalled a worker for the settle time and wrote a second message.received entry).
func TestSweptRowFinishedMeanwhileIsLeftAlone(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	in, patient := f.receive(t, "STOP")
	stale, err := f.store.GetInbound(ctx, in.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	msg := &store.Message{ID: in.MessageID, PatientID: "p1", FromPatient: true, Channel: store.ChannelSMS, Body: in.Body,
		TwilioSID: in.MessageID, Status: store.StatusPending}
	if err := f.store.SaveMessage(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if err := f.finish(ctx, patient, &bridgev2.Portal{Portal: &database.Portal{}}, in, msg, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.prepareInbound(ctx, &inboxItem{in: stale, swept: true}); !errors.Is(err, errInboundDone) {
		t.Fatalf("a swept row closed meanwhile was taken up again: %v", err)
	}
}

package e2e

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
	"github.com/careline/careline/phone"
)

// TestPartnerClinic: a referral across two homeservers that really federate. careline runs on
// the clinic's server; a cardiologist on a partner clinic's server (admitted by server name at
// level "commands", and an administrator of their own server) is invited by the clinic admin
// with invite-partner. They read what is shared with them from their invite on, not before,
// write to the patient, and the patient's SMS names them and their clinic. They cannot run
// admin commands, export the audit trail or open patient rooms. A user of a third server with
// no permission entry is refused, by command and by a plain Matrix invite. After the partner
// leaves, the bridge's next message uses a new Megolm session they never received. The
// partner's server never stores the patient's number or anything written before the invite.
func TestPartnerClinic(t *testing.T) {
	const (
		cardiology   = "Valley Cardiology"
		beforeInvite = "canary-before-invite-71c2"
		afterInvite  = "canary-after-invite-0be4"
		nurseNote    = "canary-nurse-note-5d9a"
		partnerReply = "canary-partner-reply-c3f0"
		beforeLeave  = "canary-before-leave-2a6f"
		afterLeave   = "canary-after-leave-e81d"
		nurseAfter   = "canary-nurse-after-leave-93b7"
	)
	// What the partner's server must never hold: the patient's number in any form, their name
	// (recorded by the nurse before the invite) and what was written before the invite.
	secrets := []string{patientNumber, "4155550123", "5550123", "555-0123", "Marisol", "Quintanilla", beforeInvite}
	partnerHS := startFederatingHomeserver(t)
	strangerHS := startFederatingHomeserver(t)
	s := startStack(t, stackOptions{
		Federation: true,
		// A partner clinic's server, and one of its users wrongly given the clinic staff's level.
		Permissions: map[string]string{partnerHS.ServerName: "commands", "@chief:" + partnerHS.ServerName: "user"},
		Network: func(network map[string]any) {
			localstack.SetPath(network, map[string]any{partnerHS.ServerName: cardiology}, "federation", "clinics")
			// Plain SMS once consent is recorded, so the test reads what the patient receives.
			localstack.SetPath(network, "plain", "delivery", "default_mode")
		},
		// bridgev2 sends a status event for every member event, which would reach the partner's
		// Dendrite while it processes its own join (see below).
		Config: func(cfg map[string]any) { localstack.SetPath(cfg, false, "matrix", "message_status_events") },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The partner is an administrator of their own server: it changes nothing here.
	partnerPassword := "partner-password-1"
	if _, _, err := partnerHS.RegisterAdmin(ctx, "ortiz", partnerPassword); err != nil {
		t.Fatal(err)
	}
	partner, err := partnerHS.LoginStaffClient(ctx, "ortiz", partnerPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(partner.Close)
	if err = partner.Client.SetDisplayName(ctx, "Dr. Ortiz"); err != nil {
		t.Fatal(err)
	}
	stranger, err := strangerHS.NewStaffClient(ctx, "visitor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stranger.Close)
	stranger.AutoJoinInvites()

	s.mustLogin(ctx)
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "my chest hurts " + beforeInvite}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	first, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, beforeInvite) })
	if err != nil {
		t.Fatal(err)
	}
	room := first.RoomID
	if err = s.admin.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	s.send(ctx, s.nurse, room, "!careline consent verbal, at the referral visit")
	s.botSays(ctx, s.nurse, room, "Consent to plain SMS recorded")
	s.send(ctx, s.nurse, room, "!careline name Marisol Quintanilla")
	s.botSays(ctx, s.nurse, room, "Name recorded")

	// Only an administrator invites partners, and only from servers careline admits.
	s.send(ctx, s.nurse, room, "!careline invite-partner "+partner.UserID.String())
	s.botSays(ctx, s.nurse, room, "That command is limited to bridge administrators.")
	strangerID := stranger.UserID.String()
	s.send(ctx, s.admin, room, "!careline invite-partner "+strangerID)
	s.botSays(ctx, s.admin, room, "Not invited: "+strangerHS.ServerName+" has no entry in careline's `bridge.permissions`")
	s.send(ctx, s.admin, room, "!careline invite-partner @chief:"+partnerHS.ServerName)
	s.botSays(ctx, s.admin, room, "Not invited: `bridge.permissions` gives @chief:"+partnerHS.ServerName+" the rights of the clinic's own staff")
	s.send(ctx, s.admin, room, "!careline invite-partner "+partner.UserID.String())
	s.botSays(ctx, s.admin, room, "Invited "+partner.UserID.String()+" ("+cardiology+"). They can read what is written here from now on.")
	// The partner joins once the room is quiet: Dendrite, as the partner's server, mishandles
	// an event that arrives while it is still processing its own join (element-hq/dendrite#1697;
	// Synapse buffers such events), and the bot's answer above would be one.
	if invited, err := partner.WaitForInvite(ctx); err != nil || invited != room {
		t.Fatalf("the partner was not invited to %s: %s %v", room, invited, err)
	}
	if err = partner.Join(ctx, room); err != nil {
		t.Fatal("the partner could not join over federation: ", err)
	}
	if err = partner.WaitForJoin(ctx, room); err != nil {
		t.Fatal("the partner's server does not show them in the room: ", err)
	}
	if err = s.nurse.WaitForJoinOf(ctx, room, partner.UserID); err != nil {
		t.Fatal(err)
	}
	if vis := s.historyVisibility(ctx, room); vis != event.HistoryVisibilityInvited {
		t.Errorf("the room's history visibility is %q after invite-partner, want invited", vis)
	}
	// The room's unencrypted state, as the partner's server serves it to the partner.
	partnerState := s.roomState(ctx, partner, room)
	for _, secret := range secrets {
		if strings.Contains(partnerState, secret) {
			t.Errorf("the room state on the partner's server contains %q", secret)
		}
	}
	if !strings.Contains(partnerState, "m.room.encryption") || !strings.Contains(partnerState, "0123") {
		t.Errorf("the partner's server serves no encryption event or masked patient name; the check above saw nothing: %s", partnerState)
	}

	// The partner reads what is shared from now on: the patient's next text and the nurse's note.
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "still hurts " + afterInvite}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	fromPatient, err := partner.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, afterInvite) })
	if err != nil {
		t.Fatalf("the partner cannot read the patient's message: %v; decrypt errors: %v", err, partner.DecryptErrors())
	}
	if !fromPatient.Encrypted || fromPatient.Sender != first.Sender {
		t.Fatalf("the partner got the patient's message unencrypted or from %s", fromPatient.Sender)
	}
	if _, err = s.nurse.SendText(ctx, room, "ECG attached soon "+nurseNote); err != nil {
		t.Fatal(err)
	}
	if _, err = partner.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, nurseNote) && m.Encrypted }); err != nil {
		t.Fatalf("the partner cannot read the nurse's message: %v; decrypt errors: %v", err, partner.DecryptErrors())
	}

	// The partner writes to the patient; the SMS names them and their clinic.
	if _, err = partner.SendText(ctx, room, "echo booked for Tuesday "+partnerReply); err != nil {
		t.Fatal(err)
	}
	sms := s.waitForSMS(ctx, partnerReply)
	if want := "Dr. Ortiz, " + cardiology + ": echo booked for Tuesday " + partnerReply; sms.Body != want || sms.To != patientNumber {
		t.Errorf("the patient got %q to %s, want %q", sms.Body, phone.Mask(sms.To), want)
	}
	nurseSMS := s.waitForSMS(ctx, nurseNote)
	if !strings.HasPrefix(nurseSMS.Body, "nurse, "+clinicName+": ") {
		t.Errorf("the nurse's SMS is signed %q, want her clinic's name", nurseSMS.Body)
	}

	// Whatever their own server says, the partner is not the clinic's staff or administrator.
	s.send(ctx, partner, room, "!careline audit-export")
	s.botSays(ctx, partner, room, "That command is limited to bridge administrators.")
	s.send(ctx, partner, room, "!careline invite-partner "+strangerID)
	s.botSays(ctx, partner, room, "That command is limited to bridge administrators.")
	s.send(ctx, partner, room, "!careline revoke-consent")
	s.botSays(ctx, partner, room, "Only the clinic's own staff can change a patient's record")
	status, out, err := s.ProvisionAs(ctx, partner.UserID.String(), http.MethodPost, "/v3/create_dm/"+url.PathEscape("+14155550188"), map[string]any{})
	if err != nil || status != http.StatusForbidden {
		t.Errorf("create_dm as the partner: HTTP %d %v %v, want 403", status, out, err)
	}

	// A plain Matrix invite of a user careline does not admit is withdrawn, and staff are told.
	if _, err = s.nurse.Client.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: stranger.UserID}); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, s.nurse, room, strangerID+" cannot take part in this patient's conversation")
	if err = s.nurse.WaitForMembership(ctx, room, stranger.UserID, event.MembershipLeave); err != nil {
		t.Fatal("the invite of a user without a permission entry was not withdrawn: ", err)
	}
	for _, m := range stranger.Messages() {
		if m.RoomID == room {
			t.Errorf("the refused user received %q", m.Body)
		}
	}

	// Nothing from before the invite reached the partner.
	for _, m := range partner.Messages() {
		if strings.Contains(m.Body, beforeInvite) {
			t.Error("the partner read a message from before their invite")
		}
	}

	// The partner leaves. The nurse's next message travels after the leave in the room's order,
	// so once careline has sent it as SMS it has also seen the leave.
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "ok " + beforeLeave}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	lastRead, err := partner.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, beforeLeave) })
	if err != nil {
		t.Fatalf("the partner cannot read the patient's message: %v; decrypt errors: %v", err, partner.DecryptErrors())
	}
	bridgeSession := sessionOf(t, partner, lastRead.Event)
	if _, err = partner.Client.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err = s.nurse.WaitForMembership(ctx, room, partner.UserID, event.MembershipLeave); err != nil {
		t.Fatal(err)
	}
	nurseAfterID, err := s.nurse.SendText(ctx, room, "noted "+nurseAfter)
	if err != nil {
		t.Fatal(err)
	}
	s.waitForSMS(ctx, nurseAfter)
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "thank you " + afterLeave}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	afterLeaveMsg, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, afterLeave) })
	if err != nil {
		t.Fatal(err)
	}
	for _, eventID := range []id.EventID{afterLeaveMsg.EventID, nurseAfterID} {
		encrypted, err := s.nurse.Client.GetEvent(ctx, room, eventID)
		if err != nil {
			t.Fatal(err)
		}
		if err = encrypted.Content.ParseRaw(encrypted.Type); err != nil || encrypted.Type != event.EventEncrypted {
			t.Fatalf("event %s is %s, not an encrypted event (%v)", eventID, encrypted.Type, err)
		}
		content := encrypted.Content.AsEncrypted()
		if eventID == afterLeaveMsg.EventID && content.SessionID == bridgeSession {
			t.Errorf("the bridge encrypted the patient's message after the partner left with the session the partner holds (%s)", bridgeSession)
		}
		if _, err = partner.Crypto.Machine().DecryptMegolmEvent(ctx, encrypted); !errors.Is(err, crypto.ErrNoSessionFound) {
			t.Errorf("the partner, after leaving, decrypting %s: %v, want %v", eventID, err, crypto.ErrNoSessionFound)
		}
	}
	for _, m := range partner.Messages() {
		if strings.Contains(m.Body, afterLeave) || strings.Contains(m.Body, nurseAfter) {
			t.Errorf("the partner read %q after leaving", m.Body)
		}
	}

	// The partner's server: nothing of the patient's number, name or anything written before
	// the invite, in its databases, media store or log.
	scanned := 0
	readEveryFile(t, partnerHS.Dir, func(rel string, data []byte) {
		if strings.HasSuffix(rel, ".db") {
			scanned++
		}
		for _, secret := range secrets {
			if strings.Contains(string(data), secret) {
				t.Errorf("the partner's server stores %q in %s", secret, rel)
			}
		}
	})
	if scanned == 0 {
		t.Errorf("the scan of the partner's server read no database in %s", partnerHS.Dir)
	}
	// The room's encrypted history does reach the partner's server, so the scan looked where
	// the patient's words would be if they were not encrypted.
	if !dirContains(t, partnerHS.Dir, string(room)) {
		t.Error("the partner's server holds nothing of the room: the scan proves nothing")
	}
}

// startFederatingHomeserver starts another clinic's Dendrite, federating on loopback.
func startFederatingHomeserver(t *testing.T) *testenv.Homeserver {
	t.Helper()
	name, err := testenv.FederationServerName()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartTestHomeserver(t, testenv.HomeserverOptions{ServerName: name, Federation: true})
}

// waitForSMS waits until the fake Twilio has sent a text containing what, and returns it.
func (s *stack) waitForSMS(ctx context.Context, what string) twiliofake.SentMessage {
	s.t.Helper()
	for n := 1; ; n++ {
		sent, err := s.Twilio.WaitForSent(ctx, n)
		if err != nil {
			s.t.Fatalf("no SMS contains %q (%d sent): %v", what, len(sent), err)
		}
		for _, m := range sent {
			if strings.Contains(m.Body, what) {
				return m
			}
		}
		n = len(sent)
	}
}

// historyVisibility is the room's m.room.history_visibility as the clinic's server holds it.
func (s *stack) historyVisibility(ctx context.Context, room id.RoomID) event.HistoryVisibility {
	s.t.Helper()
	var content event.HistoryVisibilityEventContent
	if err := s.nurse.Client.StateEvent(ctx, room, event.StateHistoryVisibility, "", &content); err != nil {
		s.t.Fatal(err)
	}
	return content.HistoryVisibility
}

// sessionOf is the Megolm session a decrypted message was encrypted with, from the encrypted
// original the client recorded before decrypting it.
func sessionOf(t *testing.T, c *testenv.StaffClient, decrypted *event.Event) id.SessionID {
	t.Helper()
	for _, evt := range c.Events() {
		if evt.ID == decrypted.ID && evt.Type == event.EventEncrypted {
			if content, ok := evt.Content.Parsed.(*event.EncryptedEventContent); ok {
				return content.SessionID
			}
		}
	}
	t.Fatalf("%s did not record the encrypted original of %s", c.UserID, decrypted.ID)
	return ""
}

// dirContains reports whether any file under dir contains text.
func dirContains(t *testing.T, dir, text string) bool {
	t.Helper()
	found := false
	readEveryFile(t, dir, func(_ string, data []byte) {
		found = found || strings.Contains(string(data), text)
	})
	return found
}

// readEveryFile hands fn the contents of every file under dir (databases and their WAL, media,
// logs), by path relative to dir. Files removed during the walk (SQLite journals) are skipped.
func readEveryFile(t *testing.T, dir string, fn func(rel string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		fn(strings.TrimPrefix(path, dir+"/"), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPartnerDevicesUnderVerificationLevels: with encryption.verification_levels.receive at
// cross-signed-tofu, the bridge sends the keys of what the patient writes only to devices
// their owner cross-signed. A partner whose device is cross-signed reads the patient's
// message; one whose device is not (as with a device the partner's server added on its own)
// is told the key is withheld and reads nothing.
func TestPartnerDevicesUnderVerificationLevels(t *testing.T) {
	const canary = "canary-verification-4e19"
	partnerHS := startFederatingHomeserver(t)
	s := startStack(t, stackOptions{
		Federation:  true,
		Permissions: map[string]string{partnerHS.ServerName: "relay"},
		Config: func(cfg map[string]any) {
			localstack.SetPath(cfg, false, "matrix", "message_status_events") // see TestPartnerClinic
			localstack.SetPath(cfg, "cross-signed-tofu", "encryption", "verification_levels", "receive")
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The clinic's own staff need cross-signed devices too, or they are refused the keys as well.
	for _, staff := range []*testenv.StaffClient{s.nurse, s.admin} {
		if err := staff.CrossSign(ctx); err != nil {
			t.Fatal(err)
		}
	}
	crossSigned, err := partnerHS.NewStaffClient(ctx, "lee")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(crossSigned.Close)
	if err = crossSigned.CrossSign(ctx); err != nil {
		t.Fatal(err)
	}
	notCrossSigned, err := partnerHS.NewStaffClient(ctx, "ortiz")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(notCrossSigned.Close)

	s.mustLogin(ctx)
	room := s.createDM(ctx, patientNumber)
	if err = s.admin.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	for _, partner := range []*testenv.StaffClient{crossSigned, notCrossSigned} {
		s.send(ctx, s.admin, room, "!careline invite-partner "+partner.UserID.String())
		s.botSays(ctx, s.admin, room, "Invited "+partner.UserID.String())
		// Joined one at a time, in a quiet room (see TestPartnerClinic).
		if invited, err := partner.WaitForInvite(ctx); err != nil || invited != room {
			t.Fatalf("%s was not invited to %s: %s %v", partner.UserID, room, invited, err)
		}
		if err = partner.Join(ctx, room); err != nil {
			t.Fatal(err)
		}
		if err = s.nurse.WaitForJoinOf(ctx, room, partner.UserID); err != nil {
			t.Fatal(err)
		}
	}

	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "results? " + canary}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	msg, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, canary) })
	if err != nil {
		t.Fatalf("the cross-signed nurse cannot read the patient: %v; decrypt errors: %v", err, s.nurse.DecryptErrors())
	}
	if _, err = crossSigned.WaitForMessage(ctx, func(m testenv.Message) bool { return m.EventID == msg.EventID }); err != nil {
		t.Fatalf("the cross-signed partner cannot read the patient: %v; decrypt errors: %v", err, crossSigned.DecryptErrors())
	}
	err = waitUntil(ctx, "the key withheld from the partner's device that is not cross-signed", func() bool {
		for _, m := range notCrossSigned.Messages() {
			if m.EventID == msg.EventID {
				t.Error("the partner's device that is not cross-signed read the patient's message")
				return true
			}
		}
		for _, failure := range notCrossSigned.DecryptErrors() {
			if failure.Event.ID == msg.EventID {
				if !errors.Is(failure.Err, crypto.ErrGroupSessionWithheld) {
					t.Errorf("decrypting on the device that is not cross-signed failed with %v, want %v", failure.Err, crypto.ErrGroupSessionWithheld)
				}
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
}

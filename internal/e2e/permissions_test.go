package e2e

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
)

// TestPermissions: bridgev2's permission levels decide who does what. The nurse is admitted
// by her server's entry ("careline.test": user); a partner clinic's member at level
// "commands" may write to the patient but not change the patient's record; only the admin
// may export the audit trail, which arrives in the room as an encrypted file; logging the
// clinic number out is audited.
func TestPermissions(t *testing.T) {
	partnerID := "@partner:" + localstack.ServerName
	s := startStack(t, stackOptions{
		Permissions: map[string]string{partnerID: "commands"},
		CareTeam:    []string{"partner"},
	})
	ctx := waitCtx(t)
	partner, err := s.HS.NewStaffClient(ctx, "partner")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(partner.Close)
	partner.AutoJoinInvites()
	s.mustLogin(ctx)
	room := s.createDM(ctx, "+14155550142")
	for _, staff := range []*testenv.StaffClient{s.nurse, partner} {
		if err = staff.WaitForJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
	}

	// The partner may write to the patient, but not record consent.
	if _, err = partner.SendText(ctx, room, "!careline consent verbal, on the phone"); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, partner, room, "Only the clinic's own staff can change a patient's record")
	if _, err = partner.SendText(ctx, room, "!plain partner-note-7731"); err != nil {
		t.Fatal(err)
	}
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil || !strings.Contains(sent[0].Body, "partner-note-7731") {
		t.Fatalf("the partner's message did not reach the patient: %v %v", sent, err)
	}
	if _, err = s.nurse.SendText(ctx, room, "!careline patient-status"); err != nil {
		t.Fatal(err)
	}
	if status := s.botSays(ctx, s.nurse, room, "Plain SMS consent:").Body; !strings.Contains(status, "Plain SMS consent: none") {
		t.Fatalf("consent recorded although the partner was refused: %q", status)
	}

	// The nurse ("user") cannot export the audit trail.
	if _, err = s.nurse.SendText(ctx, room, "!careline audit-export"); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, s.nurse, room, "limited to bridge administrators")

	// The admin can, into a room of their own; the file arrives encrypted.
	mgmt := s.botRoom(ctx, s.admin)
	if _, err = s.admin.SendText(ctx, mgmt, "audit-export --since 2000-01-01"); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, s.admin, mgmt, "Audit trail export:")
	file, err := s.admin.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == mgmt && m.MsgType == event.MsgFile && m.Sender == bridgeBot
	})
	if err != nil {
		t.Fatal("no export file in the admin's room: ", err)
	}
	if !file.Encrypted || file.Content.File == nil {
		t.Fatal("the export was sent unencrypted")
	}
	data, err := s.admin.DownloadMedia(ctx, file.Content)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	lines := bufio.NewScanner(bytes.NewReader(data))
	for lines.Scan() {
		var entry struct{ Actor, Action string }
		if err = json.Unmarshal(lines.Bytes(), &entry); err != nil {
			t.Fatalf("the export is not JSON lines: %v: %q", err, lines.Text())
		}
		actions[entry.Action]++
	}
	for _, want := range []string{"config.loaded", "login", "message.sent"} {
		if actions[want] == 0 {
			t.Errorf("the export has no %q entry: %v", want, actions)
		}
	}
	if bytes.Contains(data, []byte("partner-note-7731")) || bytes.Contains(data, []byte("5550142")) {
		t.Error("the export holds a message body or the patient's number")
	}
	for _, other := range []*testenv.StaffClient{s.nurse, partner} {
		for _, m := range other.Messages() {
			if m.MsgType == event.MsgFile && m.Sender == bridgeBot {
				t.Errorf("%s received an audit export", other.UserID)
			}
		}
	}

	// Logging the clinic number out is audited, as is the export above.
	if _, err = s.admin.SendText(ctx, mgmt, "logout "+accountSID+"-"+strings.TrimPrefix(clinicNumber, "+")); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, s.admin, mgmt, "Logged out")
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, want := range []struct{ action, actor string }{{"audit.export", localstack.AdminUser}, {"logout", localstack.AdminUser}} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_audit WHERE action=$1 AND actor=$2`, want.action, want.actor).Scan(&n)
			if err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s entry by %s in the audit trail (%v)", want.action, want.actor, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

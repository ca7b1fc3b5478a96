package e2e

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
)

// TestPermissionLevels: bridgev2's permission levels decide who does what, and every refusal
// says so in words. The nurse has no entry of her own: her server's entry ("careline.test":
// user) admits her as clinic staff. A partner clinic's member at "commands" may write to the
// patient but neither change the patient's record nor open a patient's room; a visitor at
// "relay" cannot even talk to the bot.
func TestPermissionLevels(t *testing.T) {
	partnerID := "@partner:" + localstack.ServerName
	visitorID := "@visitor:" + localstack.ServerName
	s := startStack(t, stackOptions{
		Permissions: map[string]string{partnerID: "commands", visitorID: "relay"},
		CareTeam:    []string{"partner"},
	})
	ctx := waitCtx(t)
	partner := s.newStaff(ctx, "partner")
	visitor := s.newStaff(ctx, "visitor")
	s.mustLogin(ctx)
	room := s.createDM(ctx, "+14155550142")
	for _, staff := range []*testenv.StaffClient{s.nurse, partner} {
		if err := staff.WaitForJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
	}

	// The partner may write to the patient, but not record consent.
	s.send(ctx, partner, room, "!careline consent verbal, on the phone")
	s.botSays(ctx, partner, room, "Only the clinic's own staff can change a patient's record")
	s.send(ctx, partner, room, "!plain partner-note-7731")
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil || !strings.Contains(sent[0].Body, "partner-note-7731") {
		t.Fatalf("the partner's message did not reach the patient: %v %v", sent, err)
	}
	s.send(ctx, s.nurse, room, "!careline patient-status")
	if status := s.botSays(ctx, s.nurse, room, "Plain SMS consent:").Body; !strings.Contains(status, "Plain SMS consent: none") {
		t.Fatalf("consent recorded although the partner was refused: %q", status)
	}
	// The nurse may: her server's entry makes her staff.
	s.send(ctx, s.nurse, room, "!careline consent verbal, at check-in")
	s.botSays(ctx, s.nurse, room, "Consent to plain SMS recorded by "+s.nurse.UserID.String())

	// Opening a patient's room: from the bot room and through the provisioning API.
	const newPatient = "+14155550199"
	partnerRoom := s.botRoom(ctx, partner)
	s.send(ctx, partner, partnerRoom, "start-chat "+newPatient)
	s.botSays(ctx, partner, partnerRoom, "Only the clinic's own staff can open a patient's room")
	nurseRoom := s.botRoom(ctx, s.nurse)
	s.send(ctx, s.nurse, nurseRoom, "start-chat "+newPatient)
	s.botSays(ctx, s.nurse, nurseRoom, "by the administrator who connected it")
	for _, c := range []struct {
		who        string
		wantStatus int
		wantError  string
	}{
		{partnerID, http.StatusForbidden, "User does not have login permissions"},
		{visitorID, http.StatusForbidden, "User does not have login permissions"},
		// Admitted by the domain entry, so past the permission check; she has no login of her own.
		{s.nurse.UserID.String(), http.StatusBadRequest, "Not logged in"},
	} {
		status, out, err := s.ProvisionAs(ctx, c.who, http.MethodPost, "/v3/create_dm/"+url.PathEscape(newPatient), map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if status != c.wantStatus || out["error"] != c.wantError {
			t.Errorf("create_dm as %s: HTTP %d %v, want %d %q", c.who, status, out, c.wantStatus, c.wantError)
		}
	}

	// The visitor ("relay") invites the bot: it declines, saying why.
	visitorRoom, err := visitor.CreateEncryptedRoom(ctx, "careline", bridgeBot)
	if err != nil {
		t.Fatal(err)
	}
	declined, err := visitor.WaitForEvent(ctx, func(evt *event.Event) bool {
		return evt.RoomID == visitorRoom && evt.Type == event.StateMember && evt.GetStateKey() == bridgeBot.String() &&
			evt.Content.AsMember().Membership == event.MembershipLeave
	})
	if err != nil {
		t.Fatal("the bot did not decline the visitor's invite: ", err)
	}
	if reason := declined.Content.AsMember().Reason; !strings.Contains(reason, "permission") {
		t.Errorf("the bot declined the visitor's invite without saying why: %q", reason)
	}

	// None of the refused attempts opened a room.
	db := s.openDB(t)
	var rooms int
	if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM portal WHERE mxid IS NOT NULL`).Scan(&rooms); err != nil {
		t.Fatal(err)
	}
	if rooms != 1 {
		t.Errorf("%d patient rooms, want only the admin's", rooms)
	}
}

// TestAuditExportCommand: only a bridge admin may export the audit trail into a room, only
// into a room nobody else can read; the file arrives encrypted, with a caption, parses as
// the export format and holds no content. Exports and logging the clinic number out are
// themselves audited.
func TestAuditExportCommand(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	room := s.createDM(ctx, "+14155550142")
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	s.send(ctx, s.nurse, room, "!plain note-7731 about your visit")
	if _, err := s.Twilio.WaitForSent(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The nurse ("user") is refused, in words.
	s.send(ctx, s.nurse, room, "!careline audit-export")
	s.botSays(ctx, s.nurse, room, "That command is limited to bridge administrators.")

	// The admin is refused in a room where someone else would read the file.
	shared, err := s.admin.CreateEncryptedRoom(ctx, "shared", bridgeBot, s.nurse.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if err = s.nurse.WaitForJoin(ctx, shared); err != nil {
		t.Fatal(err)
	}
	s.waitForBot(ctx, s.admin, shared)
	s.send(ctx, s.admin, shared, "!careline audit-export")
	s.botSays(ctx, s.admin, shared, "1 member(s) who are not bridge administrators")

	// In the admin's own room with the bot, the export arrives as an encrypted file. Commands
	// carry the prefix: bridgev2 may have taken "shared" for the admin's management room (it
	// counts the members it sees when the bot accepts, and the nurse may not have joined yet),
	// and then a command without it in this room is taken for a message (CI saw this once).
	mgmt := s.botRoom(ctx, s.admin)
	s.send(ctx, s.admin, mgmt, "!careline audit-export --since 2000-01-01")
	jsonl := s.exportFile(ctx, mgmt, ".jsonl", "entries from 2000-01-01T00:00:00Z")
	entries := parseJSONLExport(t, jsonl)
	actions := map[string]int{}
	for _, e := range entries {
		actions[e.Action]++
	}
	for _, want := range []string{"config.loaded", "login", "message.sent"} {
		if actions[want] == 0 {
			t.Errorf("the export has no %q entry: %v", want, actions)
		}
	}
	s.send(ctx, s.admin, mgmt, "!careline audit-export --format csv")
	csvFile := s.exportFile(ctx, mgmt, ".csv", "all entries")
	rows := parseCSVExport(t, csvFile)
	if len(rows) <= len(entries) {
		t.Errorf("the CSV export has %d entries, the earlier JSON lines export %d", len(rows), len(entries))
	}
	for _, row := range rows {
		if strings.HasPrefix(row["actor"], "@") {
			t.Errorf("a CSV actor cell starts with @ and a spreadsheet would read it as a formula: %q", row["actor"])
		}
	}
	for _, data := range []string{jsonl, csvFile} {
		for _, secret := range []string{"note-7731", "4155550142", "5550142"} {
			if strings.Contains(data, secret) {
				t.Errorf("an export holds %q", secret)
			}
		}
	}
	for _, m := range s.nurse.Messages() {
		if m.MsgType == event.MsgFile && m.Sender == bridgeBot {
			t.Errorf("the nurse received an audit export in %s", m.RoomID)
		}
	}

	// Logging the clinic number out is audited, as are the two exports (and only those).
	s.send(ctx, s.admin, mgmt, "!careline logout "+accountSID+"-"+strings.TrimPrefix(clinicNumber, "+"))
	s.botSays(ctx, s.admin, mgmt, "Logged out")
	db := s.openDB(t)
	waitForAudit(ctx, t, db, "logout", localstack.AdminUser, "", 1)
	waitForAudit(ctx, t, db, "audit.exported", localstack.AdminUser, "into "+mgmt.String(), 2)
}

// newStaff registers another staff member with an E2EE client that joins what it is invited to.
func (s *stack) newStaff(ctx context.Context, localpart string) *testenv.StaffClient {
	s.t.Helper()
	staff, err := s.HS.NewStaffClient(ctx, localpart)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(staff.Close)
	staff.AutoJoinInvites()
	return staff
}

func (s *stack) send(ctx context.Context, staff *testenv.StaffClient, room id.RoomID, text string) {
	s.t.Helper()
	if _, err := staff.SendText(ctx, room, text); err != nil {
		s.t.Fatal(err)
	}
}

// waitForBot waits until the bridge bot has joined a room staff invited it to.
func (s *stack) waitForBot(ctx context.Context, staff *testenv.StaffClient, room id.RoomID) {
	s.t.Helper()
	_, err := staff.WaitForEvent(ctx, func(evt *event.Event) bool {
		return evt.RoomID == room && evt.Type == event.StateMember && evt.GetStateKey() == bridgeBot.String() &&
			evt.Content.AsMember().Membership == event.MembershipJoin
	})
	if err != nil {
		s.t.Fatal("the bot did not join: ", err)
	}
}

// exportFile waits for the bot's next audit export file in room, checks it came encrypted
// with a caption, and returns its decrypted content.
func (s *stack) exportFile(ctx context.Context, room id.RoomID, ext, wantCaption string) string {
	s.t.Helper()
	file, err := s.admin.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == room && m.MsgType == event.MsgFile && m.Sender == bridgeBot && strings.HasSuffix(m.Content.FileName, ext)
	})
	if err != nil {
		s.t.Fatalf("no %s export file in the room: %v", ext, err)
	}
	if !file.Encrypted || file.Content.File == nil || file.Content.URL != "" {
		s.t.Fatal("the export was sent unencrypted")
	}
	if !strings.HasPrefix(file.Body, "Audit trail export: ") || !strings.Contains(file.Body, wantCaption) {
		s.t.Errorf("the export's caption %q does not say how many entries and %q", file.Body, wantCaption)
	}
	data, err := s.admin.DownloadMedia(ctx, file.Content)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(data)
}

func (s *stack) openDB(t *testing.T) *sql.DB {
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitForAudit waits until the audit trail holds want entries of action by actor whose detail
// contains detail, and fails if it holds more.
func waitForAudit(ctx context.Context, t *testing.T, db *sql.DB, action, actor, detail string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_audit WHERE action=$1 AND actor=$2 AND detail LIKE $3`,
			action, actor, "%"+detail+"%").Scan(&n)
		if err == nil && n == want {
			return
		} else if err == nil && n > want {
			t.Fatalf("%d %s entries by %s in the audit trail, want %d", n, action, actor, want)
		} else if time.Now().After(deadline) {
			t.Fatalf("%d %s entries by %s in the audit trail, want %d (%v)", n, action, actor, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exportEntry is one entry of an audit export, as `careline audit export` documents it.
type exportEntry struct {
	Seq       int64  `json:"seq"`
	At        string `json:"at"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	PatientID string `json:"patient_id"`
	Channel   string `json:"channel"`
	TwilioSID string `json:"twilio_sid"`
	Detail    string `json:"detail"`
	Hash      string `json:"hash"`
}

// parseJSONLExport reads a JSON lines export strictly: known fields only, in sequence, each
// with its hash.
func parseJSONLExport(t *testing.T, data string) []exportEntry {
	t.Helper()
	var entries []exportEntry
	for i, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var e exportEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %d of the export is not an audit entry: %v: %q", i+1, err, line)
		}
		if _, err := time.Parse(time.RFC3339, e.At); err != nil || e.Action == "" || len(e.Hash) != 64 {
			t.Fatalf("line %d of the export is incomplete: %q", i+1, line)
		}
		if len(entries) > 0 && e.Seq <= entries[len(entries)-1].Seq {
			t.Fatalf("line %d of the export is out of sequence: %q", i+1, line)
		}
		entries = append(entries, e)
	}
	return entries
}

// parseCSVExport reads a CSV export with its header row; each row maps column to cell.
func parseCSVExport(t *testing.T, data string) []map[string]string {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil || len(records) < 2 {
		t.Fatalf("the CSV export does not parse (%v): %q", err, data)
	}
	if !slices.Equal(records[0], audit.Columns) {
		t.Fatalf("the CSV export's header is %q, want %q", records[0], audit.Columns)
	}
	rows := make([]map[string]string, 0, len(records)-1)
	for _, record := range records[1:] {
		row := map[string]string{}
		for i, column := range audit.Columns {
			row[column] = record[i]
		}
		rows = append(rows, row)
	}
	return rows
}

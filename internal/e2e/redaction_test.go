package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/event"
)

// TestRedactionWithdrawsFromPortal: a staff member redacts a message the patient has not
// read; careline withdraws it, so the portal shows "withdrawn" instead of the words, and the
// audit trail records who did it.
//
// Dendrite v0.15.2 does not pass redactions to appservices (element-hq/dendrite#3445), so the
// test hands careline the homeserver's own redaction event in an appservice transaction,
// exactly as Synapse would push it.
func TestRedactionWithdrawsFromPortal(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	room := s.createDM(ctx, "+14155550142")
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	sentEvent, err := s.nurse.SendText(ctx, room, "results attached for the wrong patient")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = s.Twilio.WaitForSent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	redaction, err := s.nurse.Client.RedactEvent(ctx, room, sentEvent)
	if err != nil {
		t.Fatal(err)
	}
	// The homeserver serves the event by ID once its sync stream has caught up.
	var evt *event.Event
	for evt == nil {
		if evt, err = s.nurse.Client.GetEvent(ctx, room, redaction.EventID); err != nil {
			select {
			case <-ctx.Done():
				t.Fatal(err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if evt.Type != event.EventRedaction {
		t.Fatalf("the homeserver returned a %s event for the redaction", evt.Type)
	}
	s.pushTransaction(t, evt)

	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for {
		var withdrawn sql.NullInt64
		var body []byte
		err = db.QueryRowContext(ctx, `SELECT withdrawn_at, body_sealed FROM careline_message WHERE mx_event_id=$1`, string(sentEvent)).Scan(&withdrawn, &body)
		if err != nil {
			t.Fatal("the staff message is not in careline's records: ", err)
		}
		if withdrawn.Valid {
			if body != nil {
				t.Fatal("the message is marked withdrawn but its sealed body was kept")
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the redacted message was never withdrawn from the portal")
		case <-time.After(100 * time.Millisecond):
		}
	}
	var actor string
	err = db.QueryRowContext(ctx, `SELECT actor FROM careline_audit WHERE action='message.redacted'`).Scan(&actor)
	if err != nil || actor != s.nurse.UserID.String() {
		t.Fatalf("audit trail: redaction by %q (%v), want %s", actor, err, s.nurse.UserID)
	}
}

// pushTransaction delivers events to careline's appservice endpoint the way a homeserver does.
func (s *stack) pushTransaction(t *testing.T, events ...*event.Event) {
	t.Helper()
	raw, err := os.ReadFile(s.RegPath)
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		HSToken string `yaml:"hs_token"`
	}
	if err = yaml.Unmarshal(raw, &reg); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"events": events})
	url := fmt.Sprintf("%s/_matrix/app/v1/transactions/careline-test-%d", s.ASURL, time.Now().UnixNano())
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+reg.HSToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("appservice transaction: HTTP %d", resp.StatusCode)
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// TestCanaryConversation runs a whole conversation with a unique canary in every piece of
// content: an incoming SMS, a staff message sent in secure mode, the patient's reply in the
// portal (in a real browser) and a file the patient uploads, its name and its bytes. None of
// the canaries, and not the patient's number, may be readable anywhere outside the encrypted
// places: careline's logs (at trace level), the SMS texts, any file careline or the homeserver
// wrote (databases, media store, logs), the audit export, Matrix user IDs and the rooms'
// unencrypted state. The number may appear only masked to its last 4 digits.
func TestCanaryConversation(t *testing.T) {
	const (
		inboundCanary = "canary-in-4d1f"
		staffCanary   = "canary-out-8c2e"
		replyCanary   = "canary-reply-51ab"
		fileCanary    = "canary-file-9e07"
		bytesCanary   = "canary-bytes-3f66"
	)
	// The number in every form it could be written: E.164, national digits, local part.
	numberForms := []string{patientNumber, "4155550123", "5550123", "555-0123", "555 0123"}
	secrets := append([]string{inboundCanary, staffCanary, replyCanary, fileCanary, bytesCanary}, numberForms...)

	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)

	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "hello " + inboundCanary}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	first, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, inboundCanary) })
	if err != nil {
		t.Fatal(err)
	}
	room := first.RoomID
	if _, err = s.nurse.SendText(ctx, room, "your results: "+staffCanary); err != nil {
		t.Fatal(err)
	}
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	link := linkPattern.FindString(sent[0].Body)
	if link == "" {
		t.Fatalf("no portal link in the SMS %q", sent[0].Body)
	}
	// Counted independently by the fake Twilio, as Twilio bills it.
	if sent[0].NumSegments != 1 {
		t.Errorf("the secure notice %q takes %d SMS segments, want 1", sent[0].Body, sent[0].NumSegments)
	}

	// The patient reads and answers in the portal, with a file.
	upload := filepath.Join(t.TempDir(), fileCanary+".png")
	png := append([]byte("\x89PNG\r\n\x1a\n"), []byte(bytesCanary)...)
	if err = os.WriteFile(upload, png, 0o600); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	err = chromedp.Run(browser,
		chromedp.Navigate(link),
		chromedp.WaitVisible(button("Text me a code"), chromedp.BySearch),
		chromedp.Click(button("Text me a code"), chromedp.BySearch),
	)
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	if sent, err = s.Twilio.WaitForSent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	var thread string
	err = chromedp.Run(browser,
		chromedp.WaitVisible(byLabel("input", "Verification code"), chromedp.BySearch),
		chromedp.SendKeys(byLabel("input", "Verification code"), codePattern.FindString(sent[1].Body), chromedp.BySearch),
		chromedp.Click(button("Verify"), chromedp.BySearch),
		chromedp.WaitVisible(byLabel("textarea", "Message"), chromedp.BySearch),
		chromedp.Text("body", &thread, chromedp.ByQuery),
		chromedp.SendKeys(byLabel("textarea", "Message"), "thanks "+replyCanary, chromedp.BySearch),
		chromedp.Click(button("Send"), chromedp.BySearch),
		// The thread page comes back with the reply in it.
		chromedp.WaitVisible(`//p[contains(., '`+replyCanary+`')]`, chromedp.BySearch),
	)
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	err = chromedp.Run(browser,
		chromedp.SetUploadFiles(`#file`, []string{upload}, chromedp.ByQuery),
		chromedp.Click(button("Upload"), chromedp.BySearch),
		chromedp.WaitVisible(`//*[contains(text(), 'Your file was sent.')]`, chromedp.BySearch),
	)
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	if !strings.Contains(thread, staffCanary) {
		t.Fatalf("the portal does not show the staff message:\n%s", thread)
	}
	if _, err = s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, replyCanary) && m.Encrypted }); err != nil {
		t.Fatal("the portal reply did not reach staff encrypted: ", err)
	}
	file, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.RoomID == room && m.MsgType == event.MsgImage })
	if err != nil {
		t.Fatal("the upload did not reach staff: ", err)
	}
	got, err := s.nurse.DownloadMedia(ctx, file.Content)
	if err != nil || !bytes.Equal(got, png) || !file.Encrypted || file.Content.File == nil {
		t.Fatalf("the upload reached staff as %d bytes (encrypted %v), %v", len(got), file.Encrypted, err)
	}

	// Now look everywhere.
	check := func(where, text string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q", where, secret)
			}
		}
	}
	check("careline's log", s.BridgeLog())
	for _, m := range s.Twilio.Sent() {
		check("the SMS "+m.Sid, m.Body)
	}
	out, err := exec.CommandContext(ctx, carelineBin, "audit", "export", "-c", s.ConfigPath, "--format", "csv").Output()
	if err != nil {
		t.Fatal("audit export: ", err)
	}
	check("the audit export", string(out))
	// Every file careline and Dendrite wrote: databases and their WAL, the media store, logs.
	scanned := map[string]int{}
	readEveryFile(t, s.Dir, func(rel string, data []byte) {
		scanned[scannedKind(rel)]++
		check(rel, string(data))
	})
	// The walk must have read what it claims to cover, the patient's upload among the media.
	for _, kind := range []string{"careline database", "careline log", "dendrite database", "dendrite media", "dendrite log"} {
		if scanned[kind] == 0 {
			t.Errorf("the file scan read no %s in %s: %v", kind, s.Dir, scanned)
		}
	}

	// What any member of the room, or its server, sees without keys: the whole room state
	// (names, topic, avatar, members' display names, bridge info) and every member's ID and
	// profile.
	state := s.roomState(ctx, s.nurse, room)
	check("the room's unencrypted state", state)
	var events []struct {
		Type     string          `json:"type"`
		StateKey string          `json:"state_key"`
		Content  json.RawMessage `json:"content"`
	}
	if err = json.Unmarshal([]byte(state), &events); err != nil {
		t.Fatal("the room state is not a list of events: ", err)
	}
	types := map[string]bool{}
	for _, evt := range events {
		types[evt.Type] = true
		if evt.Type == event.StateMember.Type && evt.StateKey == first.Sender.String() && !strings.Contains(string(evt.Content), "0123") {
			t.Errorf("the patient's member event does not show the masked number: %s", evt.Content)
		}
	}
	for _, want := range []string{"m.room.create", "m.room.name", "m.room.member", "m.room.encryption", "m.bridge", "uk.half-shot.bridge"} {
		if !types[want] {
			t.Errorf("the room state has no %s event, so the scan did not see it: %v", want, types)
		}
	}
	members, err := s.nurse.Client.JoinedMembers(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := members.Joined[first.Sender]; !ok || len(members.Joined) < 3 {
		t.Errorf("the room's members %v do not include the patient, the bot and the nurse", members.Joined)
	}
	for userID := range members.Joined {
		check("the Matrix user ID "+userID.String(), userID.String())
		profile, err := s.nurse.Client.MakeRequest(ctx, http.MethodGet, s.nurse.Client.BuildClientURL("v3", "profile", userID), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("the profile of "+userID.String(), string(profile))
	}
}

// scannedKind sorts a file of the test's directory into what the canary scan must cover.
func scannedKind(rel string) string {
	switch {
	case strings.HasPrefix(rel, "careline.db"):
		return "careline database"
	case rel == "bridge.log" || rel == "bridge.out":
		return "careline log"
	case strings.HasPrefix(rel, "dendrite/media/"):
		return "dendrite media"
	case rel == "dendrite/dendrite.log":
		return "dendrite log"
	case strings.HasPrefix(rel, "dendrite/") && strings.Contains(rel, ".db"):
		return "dendrite database"
	}
	return "other"
}

// roomState returns the full current state of a room as the homeserver serves it.
func (s *stack) roomState(ctx context.Context, who *testenv.StaffClient, room id.RoomID) string {
	s.t.Helper()
	raw, err := who.Client.MakeRequest(ctx, http.MethodGet, who.Client.BuildClientURL("v3", "rooms", room, "state"), nil, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(raw)
}

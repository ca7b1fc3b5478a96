package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

var (
	linkPattern = regexp.MustCompile(`https?://\S+/l/[A-Za-z0-9_-]+`)
	codePattern = regexp.MustCompile(`\b\d{6}\b`)
)

// chromiumPath finds Debian's chromium; the portal test needs a real browser.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found: install Debian's chromium package (.ci/run does)")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes can still write to their profile for a moment
	// after the browser is closed, which fails t.TempDir's own removal; remove it best-effort.
	profile, err := os.MkdirTemp("", "careline-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(390, 844), // a phone
		chromedp.UserDataDir(profile),
		chromedp.WSURLReadTimeout(90*time.Second), // a busy CI machine starts Chromium slowly
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc(); _ = os.RemoveAll(profile) })
	return ctx
}

// byLabel finds a form control by its label's text, as a person (or a screen reader) would.
func byLabel(tag, label string) string {
	return `//` + tag + `[@id=//label[normalize-space(.)='` + label + `']/@for]`
}

// pageState describes where the browser is, for failure messages.
func pageState(browser context.Context) string {
	ctx, cancel := context.WithTimeout(browser, 5*time.Second)
	defer cancel()
	var loc, text string
	_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Text("body", &text, chromedp.ByQuery))
	return "at " + loc + ": " + text
}

func button(text string) string { return `//button[normalize-space(.)='` + text + `']` }

// TestPortalInBrowser follows a patient through the portal in headless Chromium: a staff
// message becomes an SMS with a link and none of the message's words; the patient opens it,
// asks for a code, enters it, reads the message, and replies; staff see the reply decrypted
// and a read receipt from the patient.
func TestPortalInBrowser(t *testing.T) {
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)

	const staffText = "Your potassium is 5.9, please repeat the blood test tomorrow"
	const replyText = "Thanks, I will come at 9am"
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "any news on my results?"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	first, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "any news on my results?" })
	if err != nil {
		t.Fatal(err)
	}
	room := first.RoomID
	staffEvent, err := s.nurse.SendText(ctx, room, staffText)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	notice := sent[0].Body
	for _, word := range strings.Fields(staffText) {
		if len(word) > 3 && strings.Contains(strings.ToLower(notice), strings.ToLower(word)) {
			t.Fatalf("the SMS %q carries the word %q of the message", notice, word)
		}
	}
	link := linkPattern.FindString(notice)
	if link == "" {
		t.Fatalf("no portal link in the SMS %q", notice)
	}

	browser := newBrowser(t)
	var verifyURL string
	err = chromedp.Run(browser,
		chromedp.Navigate(link),
		chromedp.WaitVisible(button("Text me a code"), chromedp.BySearch),
		chromedp.Location(&verifyURL),
	)
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	if strings.Contains(verifyURL, "/l/") {
		t.Fatalf("the link token stayed in the address bar: %s", verifyURL)
	}
	if err = chromedp.Run(browser, chromedp.Click(button("Text me a code"), chromedp.BySearch)); err != nil {
		t.Fatal(err)
	}
	sent, err = s.Twilio.WaitForSent(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	code := codePattern.FindString(sent[1].Body)
	if code == "" || sent[1].To != patientNumber {
		t.Fatalf("no code texted to the patient: %+v", sent[1])
	}
	var threadText, threadURL string
	err = chromedp.Run(browser,
		chromedp.WaitVisible(byLabel("input", "Verification code"), chromedp.BySearch),
		chromedp.SendKeys(byLabel("input", "Verification code"), code, chromedp.BySearch),
		chromedp.Click(button("Verify"), chromedp.BySearch),
		chromedp.WaitVisible(byLabel("textarea", "Message"), chromedp.BySearch),
		chromedp.Location(&threadURL),
		chromedp.Text("body", &threadText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(threadText, staffText) || !strings.Contains(threadText, "nurse, "+clinicName) {
		t.Fatalf("the thread page does not show the message and its sender:\n%s", threadText)
	}
	var screenshot []byte
	if err = chromedp.Run(browser, chromedp.FullScreenshot(&screenshot, 90)); err != nil {
		t.Fatal(err)
	}
	shotDir := filepath.Join("screenshots")
	_ = os.MkdirAll(shotDir, 0o755)
	shotPath := filepath.Join(shotDir, "portal-thread-phone.jpg")
	if err = os.WriteFile(shotPath, screenshot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("thread page screenshot (390×844): internal/e2e/%s", shotPath)

	// Opening the thread sent a read receipt from the patient's ghost.
	if reader, err := s.nurse.WaitForReceipt(ctx, room, staffEvent); err != nil {
		t.Fatal("no read receipt for the staff message: ", err)
	} else if reader != first.Sender {
		t.Fatalf("read receipt from %s, want the patient %s", reader, first.Sender)
	}

	err = chromedp.Run(browser,
		chromedp.SendKeys(byLabel("textarea", "Message"), replyText, chromedp.BySearch),
		chromedp.Click(button("Send"), chromedp.BySearch),
		// Wait for the new page (with the reply), not for a button the old page also had:
		// clicking that one while the page changes fails with "No node with given id".
		chromedp.WaitVisible(`//p[contains(., '`+replyText+`')]`, chromedp.BySearch),
	)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, replyText) })
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Encrypted || reply.Sender != first.Sender || reply.RoomID != room {
		t.Fatalf("the reply reached staff as %+v, want encrypted from the patient in %s", reply, room)
	}

	if err = chromedp.Run(browser, chromedp.Click(button("Sign out"), chromedp.BySearch)); err != nil {
		t.Fatal("clicking Sign out: ", err)
	}
	// Wait for the signed-out page by its URL, which commits only once careline answered the
	// POST: a DOM query while the page changes can fail with "No node with given id".
	for {
		var loc string
		if chromedp.Run(browser, chromedp.Location(&loc)) == nil && strings.HasSuffix(strings.SplitN(loc, "?", 2)[0], "/signout") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("signing out never reached the signed-out page; ", pageState(browser))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err = chromedp.Run(browser, chromedp.Navigate(threadURL)); err != nil {
		t.Fatal(err)
	}
	// Read the page's text by script, not through a DOM node: the signed-out thread URL
	// redirects, and a node looked up while that page replaces this one fails with "No node
	// with given id" (a fresh clone's CI run). Read until a loaded page answers.
	var afterSignOut string
	for {
		if chromedp.Run(browser, chromedp.Evaluate(`document.readyState === "complete" && document.body ? document.body.innerText : ""`, &afterSignOut)) == nil && afterSignOut != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the thread URL after signing out never showed a page; ", pageState(browser))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if strings.Contains(afterSignOut, staffText) {
		t.Fatal("the thread is still readable after signing out")
	}
}

package portal

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

func TestCodeSend(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		res := b.post("/code/send", url.Values{"csrf": {b.csrf("/verify")}})
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/verify?sent=1" {
			t.Fatalf("redirect to %q", loc)
		}
		code := e.be.lastCode(t, "pA")
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("code %q is not 6 digits", code)
		}
		want := "Your Sunrise Clinic verification code is " + code + ". It expires in 10 minutes."
		if got := e.be.sms[0].text; got != want {
			t.Fatalf("SMS %q, want %q", got, want)
		}
		if e.be.audited("pA", "code_sent") != 1 {
			t.Fatal("code_sent not audited")
		}
		wantBody(t, b.get("/verify?sent=1"), "We sent a code to your phone number ending ···4567")
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_code WHERE patient_id='pA' AND used_at IS NULL`); n != 1 {
			t.Fatalf("%d stored codes", n)
		}
	})
}

func TestCodeMessageTemplate(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.CodeMessage = "{clinic}: {code}" })
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		if got := e.be.sms[0].text; got != "Sunrise Clinic: "+code {
			t.Fatalf("SMS %q", got)
		}
	})
	if _, err := New(Config{PublicURL: publicURL, CodeMessage: "no code here"}, openSQLite(t), newFakeBackend()); err == nil {
		t.Fatal("New accepted a code message without {code}")
	}
}

func TestCodeSendFailure(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.smsErr = context.DeadlineExceeded
		b := e.browser()
		b.open(e.link("pA"))
		res := b.post("/code/send", url.Values{"csrf": {b.csrf("/verify")}})
		wantStatus(t, res, http.StatusBadGateway)
		wantBody(t, res, "We could not send the text just now")
	})
}

func TestResendCooldown(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		b.sendCode("pA")
		e.clock.Advance(59 * time.Second)
		res := b.post("/code/send", url.Values{"csrf": {b.csrf("/verify")}})
		wantStatus(t, res, http.StatusTooManyRequests)
		wantBody(t, res, "Please wait a minute")
		if e.be.smsCount() != 1 {
			t.Fatalf("%d SMS sent during the cool-down", e.be.smsCount())
		}
		// The cool-down is per patient, not per browser.
		b2 := e.browser()
		b2.open(e.link("pA"))
		wantStatus(t, b2.post("/code/send", url.Values{"csrf": {b2.csrf("/verify")}}), http.StatusTooManyRequests)
		e.clock.Advance(time.Second)
		b.sendCode("pA")
		if e.be.smsCount() != 2 {
			t.Fatal("no SMS after the cool-down")
		}
	})
}

func TestCodeVerifySuccess(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		preauth := b.cookies[linkCookie]
		code := b.sendCode("pA")
		res := b.verify(code[:3] + " " + code[3:]) // spaces are forgiven
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/thread" {
			t.Fatalf("redirect to %q", loc)
		}
		c := setCookieHeader(res, sessionCookie)
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(c, attr) {
				t.Errorf("session cookie %q lacks %s", c, attr)
			}
		}
		if strings.Contains(c, "Domain") {
			t.Errorf("session cookie %q has a Domain", c)
		}
		if lc := setCookieHeader(res, linkCookie); !strings.Contains(lc, "Max-Age=0") {
			t.Errorf("pre-auth cookie not cleared: %q", lc)
		}
		if b.cookies[sessionCookie] == "" || b.cookies[sessionCookie] == preauth {
			t.Fatal("session token not new")
		}
		if e.be.audited("pA", "code_verified") != 1 {
			t.Fatal("code_verified not audited")
		}
		wantStatus(t, b.get("/thread"), http.StatusOK)
		// The pre-auth is gone on the server too.
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_preauth`); n != 0 {
			t.Fatalf("%d pre-auths left", n)
		}
		// Verified: the link goes straight to the thread.
		res = b.get(e.link("pA"))
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/thread" {
			t.Fatalf("link with a session redirects to %q", loc)
		}
	})
}

func TestCodeWrongAndMalformed(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		res := b.verify(wrong)
		wantStatus(t, res, http.StatusUnauthorized)
		wantBody(t, res, "That code is not right")
		if b.cookies[sessionCookie] != "" {
			t.Fatal("session after a wrong code")
		}
		if e.be.audited("pA", "code_failed") != 1 {
			t.Fatal("code_failed not audited")
		}
		res = b.verify("12ab")
		wantStatus(t, res, http.StatusBadRequest)
		wantBody(t, res, "Enter the 6-digit code")
		if n := e.count(`SELECT failures FROM careline_portal_attempts WHERE patient_id='pA'`); n != 1 {
			t.Fatalf("failures = %d, want 1 (malformed input is not a guess)", n)
		}
		wantStatus(t, b.verify(code), http.StatusSeeOther)
	})
}

func TestCodeExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		e.clock.Advance(DefaultCodeLifetime)
		wantStatus(t, b.verify(code), http.StatusUnauthorized)

		b = e.browser()
		b.open(e.link("pA"))
		code = b.sendCode("pA")
		e.clock.Advance(DefaultCodeLifetime - time.Second)
		wantStatus(t, b.verify(code), http.StatusSeeOther)
	})
}

func TestCodeSingleUse(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		link := e.link("pA")
		b := e.browser()
		b.open(link)
		code := b.sendCode("pA")
		wantStatus(t, b.verify(code), http.StatusSeeOther)

		// Another browser on the same link cannot reuse it.
		b2 := e.browser()
		b2.open(link)
		wantStatus(t, b2.verify(code), http.StatusUnauthorized)
		if b2.cookies[sessionCookie] != "" {
			t.Fatal("a used code started a second session")
		}
	})
}

func TestNewCodeInvalidatesOld(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		first := b.sendCode("pA")
		e.clock.Advance(DefaultResendCooldown)
		second := b.sendCode("pA")
		if first != second {
			wantStatus(t, b.verify(first), http.StatusUnauthorized)
		}
		wantStatus(t, b.verify(second), http.StatusSeeOther)
	})
}

func TestCodeBoundToLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b1 := e.browser()
		b1.open(e.link("pA"))
		code := b1.sendCode("pA")
		// Same patient, another link: the code was not requested for it.
		b2 := e.browser()
		b2.open(e.link("pA"))
		wantStatus(t, b2.verify(code), http.StatusUnauthorized)
		wantStatus(t, b1.verify(code), http.StatusSeeOther)
	})
}

// lockOut enters wrong codes until the patient is locked, resending between attempts.
func wrongCode(code string) string {
	if code == "999999" {
		return "999998"
	}
	return "999999"
}

func TestFailuresCountAcrossResendsAndLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		var code string
		for i := 1; i < DefaultMaxFailures; i++ {
			if i%3 == 1 { // a new code every third try must not reset the count
				e.clock.Advance(DefaultResendCooldown)
				code = b.sendCode("pA")
			}
			e.clock.Advance(linkThrottleDelay)
			wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		}
		if locked, _ := e.p.Locked(context.Background(), "pA"); locked {
			t.Fatal("locked before the 10th failure")
		}
		if len(e.be.notices) != 0 {
			t.Fatal("staff notified before the lock")
		}
		csrf := b.csrf("/verify") // the locked page has no forms any more
		e.clock.Advance(linkThrottleDelay)
		res := b.verify(wrongCode(code))
		wantStatus(t, res, http.StatusLocked)
		wantBody(t, res, "this page is locked", "call your clinic")
		wantNoBody(t, res, `action="/code/verify"`)
		if locked, _ := e.p.Locked(context.Background(), "pA"); !locked {
			t.Fatal("not locked after 10 failures")
		}
		if len(e.be.notices) != 1 || e.be.notices[0].patientID != "pA" ||
			!strings.Contains(e.be.notices[0].text, "locked") || !strings.Contains(e.be.notices[0].text, "!careline unlock") {
			t.Fatalf("staff notices %+v", e.be.notices)
		}
		if e.be.audited("pA", "locked") != 1 {
			t.Fatal("lock not audited")
		}

		// Locked: even the right code is refused, no new code is sent, and the other
		// patient is unaffected.
		wantStatus(t, b.post("/code/verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusLocked)
		sent := e.be.smsCount()
		e.clock.Advance(DefaultResendCooldown)
		res = b.post("/code/send", url.Values{"csrf": {csrf}})
		wantStatus(t, res, http.StatusLocked)
		if e.be.smsCount() != sent {
			t.Fatal("SMS sent to a locked patient")
		}
		b2 := e.browser()
		b2.open(e.link("pA"))
		wantBody(t, b2.get("/verify"), "this page is locked")
		if len(e.be.notices) != 1 {
			t.Fatal("staff notified more than once")
		}
		e.signIn("pB")

		// Staff unlock.
		if err := e.p.Unlock(context.Background(), "pA"); err != nil {
			t.Fatal(err)
		}
		if locked, _ := e.p.Locked(context.Background(), "pA"); locked {
			t.Fatal("still locked after Unlock")
		}
		wantStatus(t, b.verify(b.sendCode("pA")), http.StatusSeeOther)
	})
}

func TestSuccessResetsFailures(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		for range DefaultMaxFailures - 1 {
			e.clock.Advance(linkThrottleDelay)
			wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		}
		e.clock.Advance(linkThrottleDelay)
		wantStatus(t, b.verify(code), http.StatusSeeOther)
		if n := e.count(`SELECT failures FROM careline_portal_attempts WHERE patient_id='pA'`); n != 0 {
			t.Fatalf("failures = %d after success", n)
		}
		b = e.browser()
		b.open(e.link("pA"))
		e.clock.Advance(DefaultResendCooldown)
		code = b.sendCode("pA")
		for range DefaultMaxFailures - 1 {
			e.clock.Advance(linkThrottleDelay)
			wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		}
		e.clock.Advance(linkThrottleDelay)
		wantStatus(t, b.verify(code), http.StatusSeeOther)
	})
}

func TestMaxFailuresNeverAboveTen(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.MaxFailures = 50 })
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		for range 9 {
			e.clock.Advance(linkThrottleDelay)
			wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		}
		e.clock.Advance(linkThrottleDelay)
		wantStatus(t, b.verify(wrongCode(code)), http.StatusLocked)

		e3 := newEnv(t, db, func(c *Config) { c.MaxFailures = 3 })
		b = e3.browser()
		b.open(e3.link("pB"))
		code = b.sendCode("pB")
		wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		e.clock.Advance(linkThrottleDelay)
		wantStatus(t, b.verify(wrongCode(code)), http.StatusLocked)
	})
}

func TestDateOfBirth(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.RequireDOB = true })
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		res := b.verify(code)
		wantStatus(t, res, http.StatusBadRequest)
		wantBody(t, res, "Enter your date of birth")
		res = b.verify(code, "1984-03-28")
		wantStatus(t, res, http.StatusUnauthorized)
		wantBody(t, res, "The code or the date of birth is not right")
		if n := e.count(`SELECT failures FROM careline_portal_attempts WHERE patient_id='pA'`); n != 1 {
			t.Fatalf("failures = %d", n)
		}
		// The code is spent by a wrong date: guessing dates needs a new code each time.
		wantStatus(t, b.verify(code, "1984-03-27"), http.StatusUnauthorized)
		e.clock.Advance(DefaultResendCooldown)
		code = b.sendCode("pA")
		wantStatus(t, b.verify(code, "03/27/1984"), http.StatusSeeOther)
	})
}

func TestCodeUsedOnceUnderRace(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		ctx := context.Background()
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		pa, err := e.p.findPreauth(ctx, b.cookies[linkCookie])
		if err != nil || pa == nil {
			t.Fatal(pa, err)
		}
		// Two requests that both passed the page's code check: only one gets a session.
		first, err := e.p.completeVerification(ctx, pa, code)
		if err != nil || first == "" {
			t.Fatalf("first completeVerification = %q, %v", first, err)
		}
		if second, err := e.p.completeVerification(ctx, pa, code); err != nil || second != "" {
			t.Fatalf("second completeVerification with the same code = %q, %v", second, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_session`); n != 1 {
			t.Fatalf("%d sessions", n)
		}
	})
}

func TestLockWinsOverRacingVerification(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		ctx := context.Background()
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		pa, err := e.p.findPreauth(ctx, b.cookies[linkCookie])
		if err != nil || pa == nil {
			t.Fatal(pa, err)
		}
		// The lock lands between the page's check and the verification.
		for range DefaultMaxFailures {
			if _, _, err = e.p.recordFailure(ctx, "pA"); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := e.p.completeVerification(ctx, pa, code)
		if !errors.Is(err, errLocked) || tok != "" {
			t.Fatalf("completeVerification on a locked patient = %q, %v", tok, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_session`); n != 0 {
			t.Fatalf("%d sessions", n)
		}
	})
}

func TestConcurrentVerifyStartsOneSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		body := url.Values{"csrf": {b.csrf("/verify")}, "code": {code}}.Encode()
		const n = 8
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req := httptest.NewRequest(http.MethodPost, "/code/verify", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.AddCookie(&http.Cookie{Name: linkCookie, Value: b.cookies[linkCookie]})
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				statuses <- rec.Code
			})
		}
		wg.Wait()
		close(statuses)
		ok := 0
		for s := range statuses {
			if s == http.StatusSeeOther {
				ok++
			}
		}
		if ok != 1 || e.count(`SELECT COUNT(*) FROM careline_portal_session`) != 1 {
			t.Fatalf("%d successes, %d sessions from one code", ok, e.count(`SELECT COUNT(*) FROM careline_portal_session`))
		}
	})
}

// Someone holding a link but no code (it goes to the patient's phone) cannot lock the
// patient out: guesses without an outstanding code count nothing.
func TestGuessesWithoutCodeDoNotLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		for range 2 * DefaultMaxFailures {
			res := b.verify("123456")
			wantStatus(t, res, http.StatusUnauthorized)
			wantBody(t, res, "no code waiting")
		}
		if locked, _ := e.p.Locked(context.Background(), "pA"); locked {
			t.Fatal("locked by guesses without a code")
		}
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_attempts WHERE patient_id='pA' AND failures > 0`); n != 0 {
			t.Fatal("guesses without a code were counted")
		}
		// After a code expires, guesses count nothing either.
		b.sendCode("pA")
		e.clock.Advance(DefaultCodeLifetime + time.Second)
		wantStatus(t, b.verify("123456"), http.StatusUnauthorized)
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_attempts WHERE patient_id='pA' AND failures > 0`); n != 0 {
			t.Fatal("a guess after the code expired was counted")
		}
		wantStatus(t, b.verify(b.sendCode("pA")), http.StatusSeeOther)
	})
}

// After a few wrong codes through one link, it must wait between tries; another patient's
// link is not slowed.
func TestWrongCodesThrottledPerLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		code := b.sendCode("pA")
		for range linkThrottleFailures {
			wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		}
		res := b.verify(code)
		wantStatus(t, res, http.StatusTooManyRequests)
		wantBody(t, res, "wait a few minutes")
		if n := e.count(`SELECT failures FROM careline_portal_attempts WHERE patient_id='pA'`); n != linkThrottleFailures {
			t.Fatalf("failures = %d: a throttled try was counted", n)
		}
		e.signIn("pB")
		e.clock.Advance(linkThrottleDelay)
		wantStatus(t, b.verify(code), http.StatusSeeOther)
	})
}

// Code texts per patient are capped per hour and per day, whatever links they come from.
func TestCodeTextsCapped(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		send := func() *response {
			e.clock.Advance(DefaultResendCooldown)
			return b.post("/code/send", url.Values{"csrf": {b.csrf("/verify")}})
		}
		for range DefaultMaxCodesPerHour {
			wantStatus(t, send(), http.StatusSeeOther)
		}
		res := send()
		wantStatus(t, res, http.StatusTooManyRequests)
		wantBody(t, res, "several codes recently")
		// A new link does not reset the cap.
		b2 := e.browser()
		b2.open(e.link("pA"))
		e.clock.Advance(DefaultResendCooldown)
		wantStatus(t, b2.post("/code/send", url.Values{"csrf": {b2.csrf("/verify")}}), http.StatusTooManyRequests)
		if n := e.be.smsCount(); n != DefaultMaxCodesPerHour {
			t.Fatalf("%d code texts, want %d", n, DefaultMaxCodesPerHour)
		}
		// An hour later five more, then the day's cap holds (the pre-auth lasts 30 minutes,
		// so the patient opens the link again each time).
		e.clock.Advance(time.Hour)
		b.open(e.link("pA"))
		for range DefaultMaxCodesPerDay - DefaultMaxCodesPerHour {
			wantStatus(t, send(), http.StatusSeeOther)
		}
		e.clock.Advance(time.Hour)
		b.open(e.link("pA"))
		wantStatus(t, send(), http.StatusTooManyRequests)
		e.clock.Advance(24 * time.Hour)
		b.open(e.link("pA"))
		wantStatus(t, send(), http.StatusSeeOther)
		if e.be.audited("pA", "code_capped") != 3 {
			t.Fatalf("capped refusals audited %d times", e.be.audited("pA", "code_capped"))
		}
	})
}

// end-access: links, codes, pre-auths and sessions of the patient end at once.
func TestEndAccess(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		signedIn := e.signIn("pA")
		pending := e.browser()
		pending.open(e.link("pA"))
		e.clock.Advance(DefaultResendCooldown)
		pending.sendCode("pA")
		unopened := e.link("pA")
		other := e.signIn("pB")
		if _, err := e.p.EndAccess(context.Background(), "pA"); err != nil {
			t.Fatal(err)
		}
		if res := signedIn.get("/thread"); res.StatusCode == http.StatusOK {
			t.Fatal("the session survived end-access")
		}
		if res := pending.get("/verify"); res.StatusCode == http.StatusOK {
			t.Fatal("the pre-auth survived end-access")
		}
		if res := e.browser().get(unopened); res.Header.Get("Location") == "/verify" {
			t.Fatal("the link survived end-access")
		}
		wantStatus(t, other.get("/thread"), http.StatusOK)
	})
}

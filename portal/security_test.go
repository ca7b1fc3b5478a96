package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
)

func TestCSRF(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		png := pngBytes()

		// Pre-auth forms.
		b := e.browser()
		b.open(e.link("pA"))
		for _, bad := range []url.Values{{}, {"csrf": {"wrong"}}, {"csrf": {b.csrf("/verify") + "x"}}} {
			wantStatus(t, b.post("/code/send", bad), http.StatusForbidden)
		}
		if e.be.smsCount() != 0 {
			t.Fatal("code sent without a valid CSRF token")
		}
		code := b.sendCode("pA")
		for _, bad := range []string{"", "wrong"} {
			res := b.post("/code/verify", url.Values{"csrf": {bad}, "code": {code}})
			wantStatus(t, res, http.StatusForbidden)
			wantBody(t, res, "This form has expired")
		}
		if b.cookies[sessionCookie] != "" || e.count(`SELECT COUNT(*) FROM careline_portal_session`) != 0 {
			t.Fatal("session created without a valid CSRF token")
		}
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_code WHERE used_at IS NULL`); n != 1 {
			t.Fatal("code used without a valid CSRF token")
		}
		if n := e.count(`SELECT failures FROM careline_portal_attempts WHERE patient_id='pA'`); n != 0 {
			t.Fatalf("failure counted for a CSRF refusal: %d", n)
		}
		// Another browser's token does not fit this browser.
		other := e.browser()
		other.open(e.link("pA"))
		wantStatus(t, b.post("/code/verify", url.Values{"csrf": {other.csrf("/verify")}, "code": {code}}), http.StatusForbidden)
		wantStatus(t, b.verify(code), http.StatusSeeOther)

		// Session forms.
		for _, bad := range []string{"", "wrong", other.csrf("/verify")} {
			form := url.Values{"body": {"hello"}}
			if bad != "" {
				form.Set("csrf", bad)
			}
			wantStatus(t, b.post("/reply", form), http.StatusForbidden)
			wantStatus(t, b.postFile("/upload", bad, "a.png", "image/png", png), http.StatusForbidden)
			wantStatus(t, b.post("/signout", form), http.StatusForbidden)
		}
		if len(e.be.replies) != 0 || len(e.be.uploads) != 0 {
			t.Fatal("reply or upload accepted without a valid CSRF token")
		}
		wantStatus(t, b.get("/thread"), http.StatusOK) // still signed in

		// A cross-site request with a valid token is refused too.
		tok := b.csrf("/thread")
		b.headers["Origin"] = "https://evil.example"
		wantStatus(t, b.post("/reply", url.Values{"csrf": {tok}, "body": {"hi"}}), http.StatusForbidden)
		b.headers["Origin"] = publicURL
		b.headers["Sec-Fetch-Site"] = "cross-site"
		wantStatus(t, b.post("/reply", url.Values{"csrf": {tok}, "body": {"hi"}}), http.StatusForbidden)
		delete(b.headers, "Sec-Fetch-Site")
		wantStatus(t, b.post("/reply", url.Values{"csrf": {tok}, "body": {"hi"}}), http.StatusSeeOther)
		if len(e.be.replies) != 1 {
			t.Fatalf("%d replies", len(e.be.replies))
		}
	})
}

func TestStateChangesNeedPOST(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	b := e.signIn("pA")
	for _, path := range []string{"/code/send", "/code/verify", "/reply", "/upload", "/signout"} {
		res := b.get(path + "?csrf=" + b.csrf("/thread") + "&body=x")
		if res.StatusCode != http.StatusMethodNotAllowed && res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404 or 405", path, res.StatusCode)
		}
	}
	if len(e.be.replies) != 0 || e.be.smsCount() != 1 {
		t.Fatal("a GET changed something")
	}
	wantStatus(t, b.get("/thread"), http.StatusOK)
}

var wantHeaders = map[string]string{
	"Content-Security-Policy":   "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
	"X-Content-Type-Options":    "nosniff",
	"Referrer-Policy":           "no-referrer",
	"X-Frame-Options":           "DENY",
}

func TestHeadersOnEveryResponse(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.threads["pA"] = []Message{{ID: "m1", Body: "hi", Attachments: []Attachment{{ID: "a1", FileName: "x.pdf", ContentType: "application/pdf"}}}}
		e.be.files["pA/a1"] = storedFile{"application/pdf", []byte("%PDF-1.4")}
		signedIn := e.signIn("pA")
		pre := e.browser()
		pre.open(e.link("pB"))
		anon := e.browser()
		cases := []struct {
			b      *browser
			method string
			path   string
			status int
		}{
			{anon, "GET", "/", 200},
			{anon, "GET", "/nope", 404},
			{anon, "GET", "/l/unknown", 404},
			{anon, "GET", "/verify", 401},
			{anon, "GET", "/thread", 401},
			{anon, "POST", "/code/send", 401},
			{anon, "POST", "/reply", 401},
			{anon, "PUT", "/thread", 404},
			{anon, "GET", "/static/portal.css", 200},
			{pre, "GET", "/verify", 200},
			{pre, "POST", "/code/verify", 403},
			{signedIn, "GET", "/thread", 200},
			{signedIn, "GET", "/attachment/a1", 200},
			{signedIn, "GET", "/attachment/zz", 404},
			{signedIn, "POST", "/reply", 403},
			{signedIn, "POST", "/signout", 403},
		}
		for _, c := range cases {
			res := c.b.do(httptest.NewRequest(c.method, c.path, strings.NewReader("")))
			if res.StatusCode != c.status {
				t.Errorf("%s %s = %d, want %d", c.method, c.path, res.StatusCode, c.status)
			}
			for k, v := range wantHeaders {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, k, got, v)
				}
			}
			cc := res.Header.Get("Cache-Control")
			if c.path == "/static/portal.css" {
				if cc == "no-store" || strings.Contains(res.body, "<script") {
					t.Errorf("stylesheet Cache-Control %q", cc)
				}
			} else if cc != "no-store" {
				t.Errorf("%s %s: Cache-Control = %q, want no-store", c.method, c.path, cc)
			}
			if strings.Contains(res.body, "<script") || strings.Contains(res.body, " style=") || strings.Contains(res.body, "<style") {
				t.Errorf("%s %s has inline script or style", c.method, c.path)
			}
		}
	})
}

func TestCrossPatientIsolation(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.threads["pA"] = []Message{{ID: "a1", Body: "secret for A", Attachments: []Attachment{{ID: "fileA", FileName: "a.pdf"}}}}
		e.be.threads["pB"] = []Message{{ID: "b1", Body: "secret for B"}}
		e.be.files["pA/fileA"] = storedFile{"application/pdf", []byte("%PDF-A")}

		b := e.signIn("pA")
		wantBody(t, b.get("/thread"), "secret for A")
		sessionA := b.cookies[sessionCookie]

		// A's browser opens B's link: B must verify; A's session ends; nothing of A shows.
		res := b.get(e.link("pB"))
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/verify" {
			t.Fatalf("B's link in A's browser goes to %q", loc)
		}
		res = b.get("/verify")
		wantBody(t, res, "···9876")
		wantNoBody(t, res, "···4567", "secret for A")
		res = b.get("/thread")
		wantStatus(t, res, http.StatusUnauthorized)
		wantNoBody(t, res, "secret for A", "secret for B")
		b.cookies[sessionCookie] = sessionA // even if the browser kept the old cookie
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)

		// A's code cannot verify B.
		codeA := e.be.lastCode(t, "pA")
		wantStatus(t, b.verify(codeA), http.StatusUnauthorized)
		code := b.sendCode("pB")
		wantStatus(t, b.verify(code), http.StatusSeeOther)
		res = b.get("/thread")
		wantBody(t, res, "secret for B")
		wantNoBody(t, res, "secret for A", "fileA")

		// B's session cannot fetch A's attachment.
		calls := e.be.attachCalls
		wantStatus(t, b.get("/attachment/fileA"), http.StatusNotFound)
		if e.be.attachCalls != calls {
			t.Fatal("backend asked for another patient's attachment")
		}
		// And B's browser opening A's link must verify as A.
		res = b.get(e.link("pA"))
		if loc := res.Header.Get("Location"); loc != "/verify" {
			t.Fatalf("A's link in B's browser goes to %q", loc)
		}
		wantNoBody(t, b.get("/thread"), "secret for B", "secret for A")
	})
}

func TestLockedPatientKeepsOthersApart(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	ctx := context.Background()
	b := e.browser()
	b.open(e.link("pA"))
	code := b.sendCode("pA")
	for range DefaultMaxFailures {
		e.clock.Advance(linkThrottleDelay)
		b.verify(wrongCode(code))
	}
	if locked, _ := e.p.Locked(ctx, "pA"); !locked {
		t.Fatal("not locked")
	}
	if locked, _ := e.p.Locked(ctx, "pB"); locked {
		t.Fatal("lock spilled over to another patient")
	}
}

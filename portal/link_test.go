package portal

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

func TestLinkOpen(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		full, err := e.p.CreateLink(context.Background(), "pA")
		if err != nil {
			t.Fatal(err)
		}
		tok, ok := strings.CutPrefix(full, publicURL+"/l/")
		if !ok {
			t.Fatalf("link %q does not start with %s/l/", full, publicURL)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw)*8 < 128 {
			t.Fatalf("link token %q is not ≥128 bits of base64url (%v)", tok, err)
		}

		b := e.browser()
		res := b.get("/l/" + tok)
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/verify" {
			t.Fatalf("redirect to %q, want /verify (no token)", loc)
		}
		c := setCookieHeader(res, linkCookie)
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age="} {
			if !strings.Contains(c, attr) {
				t.Errorf("pre-auth cookie %q lacks %s", c, attr)
			}
		}
		if strings.Contains(c, "Domain") || strings.Contains(c, tok) {
			t.Errorf("pre-auth cookie %q has a Domain or the link token", c)
		}
		if e.be.audited("pA", "link_opened") != 1 {
			t.Error("link_opened not audited")
		}
		wantBody(t, b.get("/verify"), "Sunrise Clinic", "···4567")
	})
}

func TestLinkInvalidIsNeutral(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		const msg = "This link is not valid or has expired. Ask your clinic to send a new message."
		unknown := e.browser().get("/l/" + strings.Repeat("A", 43))
		wantStatus(t, unknown, http.StatusNotFound)
		wantBody(t, unknown, msg)
		if setCookieHeader(unknown, linkCookie) != "" {
			t.Fatal("unknown link set a pre-auth cookie")
		}

		// A link to a patient the bridge no longer knows looks exactly the same.
		e.be.patients["gone"] = &Patient{ID: "gone"}
		gone := e.link("gone")
		delete(e.be.patients, "gone")
		res := e.browser().get(gone)
		wantStatus(t, res, http.StatusNotFound)
		if res.body != unknown.body {
			t.Fatal("link of an unknown patient answers differently from an unknown link")
		}

		// Expired links too.
		link := e.link("pA")
		e.clock.Advance(DefaultLinkLifetime + time.Second)
		res = e.browser().get(link)
		wantStatus(t, res, http.StatusNotFound)
		if res.body != unknown.body {
			t.Fatal("expired link answers differently from an unknown link")
		}
	})
}

func TestLinkLifetimeConfigurable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.LinkLifetime = time.Hour })
		link := e.link("pA")
		e.clock.Advance(59 * time.Minute)
		e.browser().open(link)
		e.clock.Advance(2 * time.Minute)
		wantStatus(t, e.browser().get(link), http.StatusNotFound)
	})
}

func TestPreauthExpiresWithLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		e.clock.Advance(preauthLifetime + time.Second)
		res := b.get("/verify")
		wantStatus(t, res, http.StatusUnauthorized)
		wantBody(t, res, "open the link")
	})
}

func TestVerifyPage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.browser()
		b.open(e.link("pA"))
		res := b.get("/verify")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res,
			"Sunrise Clinic", "···4567",
			`<form method="post" action="/code/send"`,
			`>Text me a code</button>`,
			`<label for="code">Verification code</label>`,
			`id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"`,
			`<form method="post" action="/code/verify"`,
			`>Verify</button>`,
		)
		wantNoBody(t, res, "Date of birth", "<script", "style=")

		// Date of birth only when required and on file.
		e2 := newEnv(t, db, func(c *Config) { c.RequireDOB = true })
		b = e2.browser()
		b.open(e2.link("pA"))
		wantBody(t, b.get("/verify"), `<label for="dob">Date of birth</label>`, `id="dob" name="dob" type="date"`)
		b = e2.browser()
		b.open(e2.link("pB")) // no DOB on file
		wantNoBody(t, b.get("/verify"), "Date of birth")
	})
}

func TestVerifyWithoutLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		res := e.browser().get("/verify")
		wantStatus(t, res, http.StatusUnauthorized)
		wantNoBody(t, res, "Sunrise", "4567")
		// A made-up pre-auth cookie is no better.
		b := e.browser()
		b.cookies[linkCookie] = strings.Repeat("x", 43)
		wantStatus(t, b.get("/verify"), http.StatusUnauthorized)
		wantStatus(t, b.post("/code/send", nil), http.StatusUnauthorized)
		if e.be.smsCount() != 0 {
			t.Fatal("SMS sent without a link")
		}
	})
}

// A messaging app or mail scanner fetching the link for a preview is not the patient opening
// it: nothing is redeemed, no cookie is set and nothing is audited; the patient's own open
// afterwards works as usual.
func TestLinkPreviewNotRecordedAsOpening(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		link := e.link("pA")
		for _, preview := range []func(*http.Request){
			func(r *http.Request) {
				r.Header.Set("User-Agent", "facebookexternalhit/1.1 Facebot Twitterbot/1.0") // iMessage
			},
			func(r *http.Request) { r.Header.Set("User-Agent", "WhatsApp/2.23.20.0") },
			func(r *http.Request) {
				r.Header.Set("User-Agent", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)")
			},
			func(r *http.Request) {
				r.Header.Set("User-Agent", "Mozilla/5.0 (iPhone)")
				r.Header.Set("Sec-Purpose", "prefetch")
			},
			func(r *http.Request) { r.Method = http.MethodHead },
		} {
			b := e.browser()
			req := httptest.NewRequest(http.MethodGet, link, nil)
			preview(req)
			res := b.do(req)
			wantStatus(t, res, http.StatusOK)
			if len(res.Cookies()) != 0 {
				t.Fatalf("a preview got cookies %v", res.Cookies())
			}
		}
		if n := e.be.audited("pA", "link_opened"); n != 0 {
			t.Fatalf("previews were audited as the patient opening the link %d times", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_preauth`); n != 0 {
			t.Fatalf("previews created %d pre-auths", n)
		}
		b := e.browser()
		b.open(link)
		if n := e.be.audited("pA", "link_opened"); n != 1 {
			t.Fatalf("the patient's open audited %d times", n)
		}
	})
}

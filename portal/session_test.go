package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

func TestIdleTimeout(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.signIn("pA")
		// Activity keeps the session alive...
		for range 4 {
			e.clock.Advance(DefaultIdleTimeout - time.Minute)
			wantStatus(t, b.get("/thread"), http.StatusOK)
		}
		// ...15 minutes without it ends it, on the server.
		old := b.cookies[sessionCookie]
		e.clock.Advance(DefaultIdleTimeout)
		res := b.get("/thread")
		wantStatus(t, res, http.StatusUnauthorized)
		wantBody(t, res, "Your secure session has ended")
		wantNoBody(t, res, "Sunrise Clinic")
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_session`); n != 0 {
			t.Fatalf("%d sessions left after the idle timeout", n)
		}
		b.cookies[sessionCookie] = old
		e.clock.Advance(-DefaultIdleTimeout) // even back in time, the session is gone
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)
	})
}

func TestAbsoluteTimeout(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.signIn("pA")
		elapsed := time.Duration(0)
		for elapsed+10*time.Minute < DefaultAbsoluteTimeout {
			e.clock.Advance(10 * time.Minute)
			elapsed += 10 * time.Minute
			wantStatus(t, b.get("/thread"), http.StatusOK)
		}
		e.clock.Advance(DefaultAbsoluteTimeout - elapsed)
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)
	})
}

func TestTimeoutsConfigurable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.IdleTimeout = 2 * time.Minute; c.AbsoluteTimeout = 5 * time.Minute })
		b := e.signIn("pA")
		e.clock.Advance(time.Minute + 50*time.Second)
		wantStatus(t, b.get("/thread"), http.StatusOK)
		e.clock.Advance(2 * time.Minute)
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)

		b = e.signIn("pA")
		for range 4 {
			e.clock.Advance(time.Minute)
			wantStatus(t, b.get("/thread"), http.StatusOK)
		}
		e.clock.Advance(time.Minute)
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)
	})
}

func TestSignOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.signIn("pA")
		old := b.cookies[sessionCookie]
		res := b.post("/signout", url.Values{"csrf": {b.csrf("/thread")}})
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, "You are signed out")
		if got := res.Header.Get("Clear-Site-Data"); got != `"cache", "cookies", "storage"` {
			t.Fatalf("Clear-Site-Data = %q", got)
		}
		for _, name := range []string{sessionCookie, linkCookie} {
			if c := setCookieHeader(res, name); !strings.Contains(c, "Max-Age=0") {
				t.Errorf("cookie %s not expired: %q", name, c)
			}
		}
		if e.be.audited("pA", "signout") != 1 {
			t.Fatal("signout not audited")
		}
		// The old cookie no longer works: the session is gone on the server.
		b.cookies[sessionCookie] = old
		wantStatus(t, b.get("/thread"), http.StatusUnauthorized)
		if n := e.count(`SELECT COUNT(*) FROM careline_portal_session`); n != 0 {
			t.Fatalf("%d sessions after sign-out", n)
		}
		// Signing out again, without a session, just cleans up.
		res = e.browser().post("/signout", nil)
		wantStatus(t, res, http.StatusOK)
		if res.Header.Get("Clear-Site-Data") == "" {
			t.Fatal("no Clear-Site-Data without a session")
		}
	})
}

func TestOnlyHashesStored(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		link := e.link("pA")
		linkTok := strings.TrimPrefix(link, "/l/")
		b := e.browser()
		b.open(link)
		preauthTok := b.cookies[linkCookie]
		code := b.sendCode("pA")
		wantStatus(t, b.verify(code), http.StatusSeeOther)
		sessionTok := b.cookies[sessionCookie]
		// And a second outstanding code, unused.
		b2 := e.browser()
		b2.open(link)
		e.clock.Advance(DefaultResendCooldown)
		code2 := b2.sendCode("pA")

		secrets := map[string]string{"link token": linkTok, "pre-auth token": preauthTok,
			"session token": sessionTok, "code": code, "second code": code2,
			"second pre-auth": b2.cookies[linkCookie]}
		for name, s := range secrets {
			if len(s) < 6 {
				t.Fatalf("%s %q too short to search for", name, s)
			}
		}
		for _, table := range []string{"careline_portal_link", "careline_portal_preauth", "careline_portal_code",
			"careline_portal_attempts", "careline_portal_session"} {
			rows, err := e.p.db.Query(context.Background(), "SELECT * FROM "+table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			n := 0
			for rows.Next() {
				n++
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err = rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range vals {
					var text string
					switch v := v.(type) {
					case []byte:
						text = string(v)
					case string:
						text = v
					default:
						continue
					}
					for name, s := range secrets {
						if strings.Contains(text, s) {
							t.Errorf("%s.%s holds the raw %s", table, cols[i], name)
						}
					}
				}
			}
			rows.Close()
			if n == 0 {
				t.Errorf("%s is empty: the test looks at nothing", table)
			}
		}
	})
}

func TestNoSecretsInLogs(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		link := e.link("pA")
		b := e.browser()
		b.open(link)
		code := b.sendCode("pA")
		wantStatus(t, b.verify(wrongCode(code)), http.StatusUnauthorized)
		wantStatus(t, b.verify(code), http.StatusSeeOther)
		const body = "my rash is worse today"
		wantStatus(t, b.post("/reply", url.Values{"csrf": {b.csrf("/thread")}, "body": {body}}), http.StatusSeeOther)
		wantStatus(t, b.post("/reply", url.Values{"csrf": {"bad"}, "body": {body}}), http.StatusForbidden)
		e.browser().get("/l/" + "nonexistent-token-value")
		logs := e.logs.String()
		if !strings.Contains(logs, `"patient_id":"pA"`) {
			t.Fatalf("logs lack the patient id (is logging wired?): %s", logs)
		}
		for name, s := range map[string]string{"link token": strings.TrimPrefix(link, "/l/"), "code": code,
			"wrong code": wrongCode(code), "session": b.cookies[sessionCookie], "body": body,
			"guessed token": "nonexistent-token-value", "masked phone": "4567"} {
			if strings.Contains(logs, s) {
				t.Errorf("logs contain the %s", name)
			}
		}
	})
}

func TestPurgeExpired(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		ctx := context.Background()
		e.signIn("pA")
		b := e.browser()
		b.open(e.link("pB"))
		b.sendCode("pB")
		if n, err := e.p.PurgeExpired(ctx); err != nil || n != 1 { // the used code
			t.Fatalf("PurgeExpired = %d, %v; want 1 (only the used code)", n, err)
		}
		e.clock.Advance(DefaultLinkLifetime + time.Second)
		n, err := e.p.PurgeExpired(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// pB's code and pre-auth, the session, two links, two code-send records.
		if n != 7 {
			t.Fatalf("PurgeExpired = %d, want 7", n)
		}
		for _, table := range []string{"careline_portal_link", "careline_portal_preauth", "careline_portal_code", "careline_portal_session"} {
			if c := e.count("SELECT COUNT(*) FROM " + table); c != 0 {
				t.Errorf("%s has %d rows after purge", table, c)
			}
		}
	})
}

func TestUpgradeOwnVersionTable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		if err := e.p.Upgrade(context.Background()); err != nil {
			t.Fatalf("second Upgrade: %v", err)
		}
		if v := e.count("SELECT version FROM careline_portal_version"); v != 2 {
			t.Fatalf("careline_portal_version = %d", v)
		}
	})
}

func TestNewValidates(t *testing.T) {
	db := openSQLite(t)
	for _, u := range []string{"", "texts.example.org", "ftp://x", "https://"} {
		if _, err := New(Config{PublicURL: u}, db, newFakeBackend()); err == nil {
			t.Errorf("New accepted public URL %q", u)
		}
	}
	if _, err := New(Config{PublicURL: publicURL}, nil, newFakeBackend()); err == nil {
		t.Error("New accepted a nil database")
	}
}

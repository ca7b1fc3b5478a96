package portal

import (
	"context"
	"crypto/sha256"
	"net/http"
	"testing"

	"go.mau.fi/util/dbutil"
)

// The README's "curious database admin" can write rows but does not hold the identity key:
// a session, link or code row planted with the plain SHA-256 of a value of their choosing
// must not let them in, and the stored code hash must not be matchable by trying codes.
func TestPlantedRowsDoNotOpenThePortal(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.be.threads["pA"] = []Message{{ID: "m1", Body: "results are normal", SentAt: e.clock.Now()}}
		now := e.clock.Now().UnixMilli()
		sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

		// A session row for a token the admin chose.
		chosen := "ADMIN-CHOSEN-TOKEN-0123456789abcdefghijklmnop"
		if _, err := db.Exec(ctx, `
			INSERT INTO careline_portal_session (token_hash, patient_id, link_hash, created_at, last_seen_at, expires_at)
			VALUES ($1, 'pA', $2, $3, $3, $4)`, sum(chosen), sum("x"), now, now+3600_000); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.cookies[sessionCookie] = chosen
		res := b.get("/thread")
		wantNoBody(t, res, "results are normal")
		if res.StatusCode == http.StatusOK {
			t.Fatalf("a planted session row opened the thread: %d", res.StatusCode)
		}

		// A link row for a token the admin chose.
		if _, err := db.Exec(ctx, `
			INSERT INTO careline_portal_link (token_hash, patient_id, created_at, expires_at)
			VALUES ($1, 'pA', $2, $3)`, sum(chosen), now, now+3600_000); err != nil {
			t.Fatal(err)
		}
		if res = e.browser().get("/l/" + chosen); res.Header.Get("Location") == "/verify" {
			t.Fatal("a planted link row was accepted")
		}

		// A real code's stored hash is not SHA-256(link hash || code), the unkeyed form
		// anyone can try all million codes against.
		v := e.browser()
		v.open(e.link("pA"))
		code := v.sendCode("pA")
		var linkHash, codeHash []byte
		if err := db.QueryRow(ctx, `SELECT link_hash, code_hash FROM careline_portal_code WHERE patient_id='pA'`).Scan(&linkHash, &codeHash); err != nil {
			t.Fatal(err)
		}
		if string(codeHash) == string(sum(string(linkHash)+code)) {
			t.Fatal("the code is stored as an unkeyed hash")
		}
	})
}

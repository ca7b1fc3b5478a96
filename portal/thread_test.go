package portal

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

func pngBytes() []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 100)...)
}

func heicBytes() []byte {
	return append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), bytes.Repeat([]byte{1}, 100)...)
}

func sampleThread() []Message {
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	return []Message{
		{ID: "m1", SenderName: "Dr. Lee, Sunrise Clinic", Body: "Your results are in.\nAll normal <b>good</b> & fine", SentAt: at,
			Attachments: []Attachment{{ID: "att1", FileName: "results.pdf", ContentType: "application/pdf", Size: 81234}}},
		{ID: "m2", FromPatient: true, Body: "Thank you!", SentAt: at.Add(time.Hour)},
		{ID: "m3", SenderName: "Nurse Kim", Body: "withdrawn text", SentAt: at.Add(2 * time.Hour), Withdrawn: true,
			Attachments: []Attachment{{ID: "att2", FileName: "old.pdf"}}},
		{ID: "m4", SenderName: "Nurse Kim", Body: "expired text", SentAt: at.Add(3 * time.Hour), Expired: true},
		{ID: "m5", SenderName: "Nurse Kim", Body: "See you Tuesday", SentAt: at.Add(4 * time.Hour)},
	}
}

func TestThreadShow(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.threads["pA"] = sampleThread()
		b := e.signIn("pA")
		res := b.get("/thread")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res,
			"Dr. Lee, Sunrise Clinic", "Nurse Kim", ">You<",
			"Your results are in.\nAll normal &lt;b&gt;good&lt;/b&gt; &amp; fine",
			`<time datetime="2026-03-01T09:30:00Z">Mar 1, 2026, 9:30 AM</time>`,
			`<a href="/attachment/att1">results.pdf</a>`, "(79 KB)",
			"This message was withdrawn", "This message has expired",
			"See you Tuesday",
			`<label for="body">Message</label>`, `<textarea id="body" name="body"`, `>Send</button>`,
			`<form method="post" action="/upload" enctype="multipart/form-data"`,
			`<label for="file">Photo or PDF</label>`, `<input id="file" name="file" type="file"`,
			`<form method="post" action="/signout"`, `>Sign out</button>`,
		)
		wantNoBody(t, res, "<b>good", "withdrawn text", "expired text", "att2", "old.pdf")
		// Oldest first.
		order := []string{"Your results are in.", "Thank you!", "This message was withdrawn", "This message has expired", "See you Tuesday"}
		last := -1
		for _, s := range order {
			i := strings.Index(res.body, s)
			if i < last {
				t.Fatalf("%q out of order", s)
			}
			last = i
		}
		// Read receipts for the staff messages shown, once.
		if got := e.be.marked["pA"]; !slices.Equal(got, []string{"m1", "m5"}) {
			t.Fatalf("MarkRead got %v, want [m1 m5]", got)
		}
		calls := e.be.markCalls
		b.get("/thread")
		if e.be.markCalls != calls {
			t.Fatal("MarkRead called again for messages already read")
		}
		e.be.threads["pA"] = append(e.be.threads["pA"], Message{ID: "m6", SenderName: "Nurse Kim", Body: "new", SentAt: time.Now()})
		b.get("/thread")
		if got := e.be.marked["pA"]; !slices.Equal(got, []string{"m1", "m5", "m6"}) {
			t.Fatalf("MarkRead got %v", got)
		}
		if e.be.audited("pA", "portal_view") != 3 {
			t.Fatalf("portal_view audited %d times", e.be.audited("pA", "portal_view"))
		}
	})
}

func TestReply(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		b := e.signIn("pA")
		csrf := b.csrf("/thread")
		res := b.post("/reply", url.Values{"csrf": {csrf}, "body": {"  Line one\r\nLine two  "}})
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/thread?sent=reply" {
			t.Fatalf("redirect to %q", loc)
		}
		wantBody(t, b.get("/thread?sent=reply"), "Your message was sent.")
		if len(e.be.replies) != 1 || e.be.replies[0] != (sms{"pA", "Line one\nLine two"}) {
			t.Fatalf("replies %q", e.be.replies)
		}
		if e.be.audited("pA", "reply") != 1 {
			t.Fatal("reply not audited")
		}

		res = b.post("/reply", url.Values{"csrf": {csrf}, "body": {" \n "}})
		wantStatus(t, res, http.StatusBadRequest)
		wantBody(t, res, "Write a message before you press Send.")

		long := strings.Repeat("é", 1601)
		res = b.post("/reply", url.Values{"csrf": {csrf}, "body": {long}})
		wantStatus(t, res, http.StatusBadRequest)
		wantBody(t, res, "Your message is too long", long) // the text is kept for editing
		if len(e.be.replies) != 1 {
			t.Fatal("an invalid reply was sent")
		}
		wantStatus(t, b.post("/reply", url.Values{"csrf": {csrf}, "body": {long[2:]}}), http.StatusSeeOther)
		if len(e.be.replies) != 2 {
			t.Fatal("a 1600-character reply was refused")
		}
	})
}

func TestUpload(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.MaxUploadBytes = 4096 })
		b := e.signIn("pA")
		csrf := b.csrf("/thread")

		// The declared type is ignored: the content decides.
		res := b.postFile("/upload", csrf, `C:\Users\me\rash.png`, "text/html", pngBytes())
		wantStatus(t, res, http.StatusSeeOther)
		if loc := res.Header.Get("Location"); loc != "/thread?sent=upload" {
			t.Fatalf("redirect to %q", loc)
		}
		if u := e.be.uploads[0]; u.patientID != "pA" || u.fileName != "rash.png" || u.contentType != "image/png" || !bytes.Equal(u.data, pngBytes()) {
			t.Fatalf("upload %+v", u)
		}
		if e.be.audited("pA", "upload") != 1 {
			t.Fatal("upload not audited")
		}
		for _, ok := range []struct {
			data []byte
			ct   string
		}{{heicBytes(), "image/heic"}, {[]byte("%PDF-1.7\n..."), "application/pdf"}, {[]byte("\xff\xd8\xff\xe0JFIF"), "image/jpeg"}} {
			wantStatus(t, b.postFile("/upload", csrf, "f", "application/octet-stream", ok.data), http.StatusSeeOther)
			if got := e.be.uploads[len(e.be.uploads)-1].contentType; got != ok.ct {
				t.Fatalf("sniffed %q, want %q", got, ok.ct)
			}
		}
		n := len(e.be.uploads)

		for _, bad := range [][]byte{
			[]byte("<html><script>alert(1)</script>"),
			[]byte("GIF89a......"),
			[]byte("MZ\x90\x00 a program"),
		} {
			res = b.postFile("/upload", csrf, "photo.jpg", "image/jpeg", bad)
			wantStatus(t, res, http.StatusUnsupportedMediaType)
			wantBody(t, res, "We can only accept photos (JPEG, PNG, HEIC) or PDF files.")
		}
		res = b.postFile("/upload", csrf, "", "application/octet-stream", nil)
		wantStatus(t, res, http.StatusUnsupportedMediaType)
		wantBody(t, res, "Choose a photo or PDF first.")

		big := append(pngBytes(), make([]byte, 4096)...)
		res = b.postFile("/upload", csrf, "big.png", "image/png", big)
		wantStatus(t, res, http.StatusRequestEntityTooLarge)
		wantBody(t, res, "That file is too large. The limit is 4 KB.")
		huge := append(pngBytes(), make([]byte, 200<<10)...) // past the request limit too
		wantStatus(t, b.postFile("/upload", csrf, "huge.png", "image/png", huge), http.StatusRequestEntityTooLarge)
		if len(e.be.uploads) != n {
			t.Fatal("a bad upload reached the backend")
		}
		exact := append(pngBytes(), make([]byte, 4096-len(pngBytes()))...)
		wantStatus(t, b.postFile("/upload", csrf, "max.png", "image/png", exact), http.StatusSeeOther)
	})
}

func TestAttachmentShow(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.threads["pA"] = sampleThread()
		e.be.files["pA/att1"] = storedFile{"application/pdf", []byte("%PDF-1.4 results")}
		e.be.files["pA/att2"] = storedFile{"application/pdf", []byte("%PDF-1.4 withdrawn")}
		b := e.signIn("pA")
		res := b.get("/attachment/att1")
		wantStatus(t, res, http.StatusOK)
		if res.body != "%PDF-1.4 results" {
			t.Fatalf("body %q", res.body)
		}
		if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename=results.pdf` {
			t.Fatalf("Content-Disposition %q", cd)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Content-Type") != "application/pdf" {
			t.Fatalf("headers %v", res.Header)
		}
		// Withdrawn, unknown, or without a session: no.
		wantStatus(t, b.get("/attachment/att2"), http.StatusNotFound)
		wantStatus(t, b.get("/attachment/nope"), http.StatusNotFound)
		wantStatus(t, e.browser().get("/attachment/att1"), http.StatusUnauthorized)
	})
}

func TestPageSizes(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		const limit = 30 * 1024
		e := newEnv(t, db, func(c *Config) { c.RequireDOB = true })
		var msgs []Message
		for i := range 300 {
			msgs = append(msgs, Message{ID: fmt.Sprintf("m%03d", i), SenderName: "Dr. Lee, Sunrise Clinic",
				Body: strings.Repeat("<&> ", 400), SentAt: time.Unix(int64(i)*60, 0),
				Attachments: []Attachment{{ID: fmt.Sprintf("a%03d", i), FileName: strings.Repeat("ñ", 90) + ".pdf"}}})
		}
		msgs = append(msgs, Message{ID: "huge", Body: strings.Repeat("<", 100000), SentAt: time.Unix(99999, 0)})
		e.be.threads["pA"] = msgs

		pre := e.browser()
		pre.open(e.link("pA"))
		if res := pre.get("/verify"); len(res.body) >= limit || !strings.Contains(res.body, "Date of birth") {
			t.Fatalf("verify page is %d bytes", len(res.body))
		}
		wantStatus(t, pre.verify(pre.sendCode("pA"), "1984-03-27"), http.StatusSeeOther)
		b := pre
		res := b.get("/thread")
		wantStatus(t, res, http.StatusOK)
		if len(res.body) >= limit {
			t.Fatalf("thread page is %d bytes", len(res.body))
		}
		wantBody(t, res, "This message is too long to show here in full", "Show earlier messages")
		pages, seen := 0, map[string]bool{}
		for {
			pages++
			if len(res.body) >= limit {
				t.Fatalf("thread page %d is %d bytes", pages, len(res.body))
			}
			for _, m := range msgs {
				if strings.Contains(res.body, `href="/attachment/a`+m.ID[1:]+`"`) {
					seen[m.ID] = true
				}
			}
			i := strings.Index(res.body, `<a href="/thread?before=`)
			if i < 0 {
				break
			}
			href := res.body[i+9 : i+9+strings.Index(res.body[i+9:], `"`)]
			res = b.get(strings.ReplaceAll(href, "&amp;", "&"))
			wantStatus(t, res, http.StatusOK)
			wantBody(t, res, "Show newer messages")
			if pages > 200 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != 300 {
			t.Fatalf("paging showed %d of 300 messages", len(seen))
		}
		for _, page := range []string{"/", "/nope", "/l/x"} {
			if res := e.browser().get(page); len(res.body) >= limit {
				t.Fatalf("%s is %d bytes", page, len(res.body))
			}
		}
	})
}

func TestSpanish(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		e.be.threads["pA"] = sampleThread()
		b := e.browser()
		b.lang = "es-MX,es;q=0.9,en;q=0.5"
		b.open(e.link("pA"))
		res := b.get("/verify")
		wantBody(t, res, `<html lang="es">`, "Confirme que es usted", "Envíenme un código",
			`<label for="code">Código de verificación</label>`, ">Verificar</button>", "···4567")
		if res.Header.Get("Content-Language") != "es" {
			t.Fatalf("Content-Language %q", res.Header.Get("Content-Language"))
		}
		res = b.verify("12")
		wantBody(t, res, "Escriba el código de 6 dígitos")
		wantStatus(t, b.verify(b.sendCode("pA")), http.StatusSeeOther)
		res = b.get("/thread")
		wantBody(t, res, `<label for="body">Mensaje</label>`, ">Enviar</button>", ">Cerrar sesión</button>",
			"Este mensaje fue retirado", ">Usted<", "1 mar 2026, 09:30", `<label for="file">Foto o PDF</label>`)
		wantNoBody(t, res, "Sign out", "Message<")
		res = b.post("/signout", url.Values{"csrf": {b.csrf("/thread")}})
		wantBody(t, res, "Ha cerrado la sesión")
		wantBody(t, e.browser().get("/l/nope"), "This link is not valid") // English by default
	})
}

// TestThreadShowsWhereThePatientsMessagesAre: a reply or upload is saved and then goes to the
// clinic through careline's inbox; until it is in the clinic's room the patient sees it is on
// its way, and if careline gave up, that it was not delivered (issue 10, finding 8).
func TestThreadShowsWhereThePatientsMessagesAre(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
		e.be.threads["pA"] = []Message{
			{ID: "m1", FromPatient: true, Body: "arrived", SentAt: at},
			{ID: "m2", FromPatient: true, Body: "on its way", SentAt: at.Add(time.Minute), State: StateSending},
			{ID: "m3", FromPatient: true, Body: "lost", SentAt: at.Add(2 * time.Minute), State: StateFailed},
		}
		b := e.signIn("pA")
		res := b.get("/thread")
		wantStatus(t, res, http.StatusOK)
		wantBody(t, res, `<p class="state" role="status">Sending to the clinic…</p>`,
			`<p class="state failed" role="status">Not delivered to the clinic. Please call the clinic or send it again.</p>`)
		if n := strings.Count(res.body, `class="state`); n != 2 {
			t.Fatalf("%d delivery states shown, want 2 (none for the delivered message)", n)
		}
	})
}

// A file staff sent with a type that could run script on the portal's origin (HTML, SVG,
// XML…) is served as application/octet-stream; the allowed types keep theirs.
func TestAttachmentServedOnlyWithAllowedTypes(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db)
		types := map[string]string{
			"text/html; charset=utf-8": "application/octet-stream",
			"image/svg+xml":            "application/octet-stream",
			"application/xhtml+xml":    "application/octet-stream",
			"text/xml":                 "application/octet-stream",
			"not a type":               "application/octet-stream",
			"image/png":                "image/png",
			"application/pdf":          "application/pdf",
			"image/jpeg; name=x.jpg":   "image/jpeg",
		}
		var msgs []Message
		i := 0
		for ct := range types {
			i++
			id := fmt.Sprintf("f%d", i)
			msgs = append(msgs, Message{ID: "m" + id, Body: "file", SentAt: e.clock.Now(),
				Attachments: []Attachment{{ID: id, FileName: "file", ContentType: ct, Size: 10}}})
			e.be.files["pA/"+id] = storedFile{ct, []byte("<script>alert(1)</script>")}
		}
		e.be.threads["pA"] = msgs
		b := e.signIn("pA")
		for _, m := range msgs {
			a := m.Attachments[0]
			res := b.get("/attachment/" + a.ID)
			wantStatus(t, res, http.StatusOK)
			if got := res.Header.Get("Content-Type"); got != types[a.ContentType] {
				t.Errorf("%q served as %q, want %q", a.ContentType, got, types[a.ContentType])
			}
		}
	})
}

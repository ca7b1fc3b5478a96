package portal

import (
	"bytes"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

// uploadBody is a complete multipart upload of data as a PNG.
func uploadBody(t *testing.T, csrf string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", csrf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="photo.png"`)
	h.Set("Content-Type", "image/png")
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(data)
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// slowUpload starts an upload whose body arrives only when the returned function is called;
// it returns once the portal is reading the body (and so holds an upload slot).
func slowUpload(t *testing.T, b *browser) (finish func() *response) {
	t.Helper()
	body, contentType := uploadBody(t, b.csrf("/thread"), pngBytes())
	pr, pw := io.Pipe()
	req := httptest.NewRequest(http.MethodPost, "/upload", pr)
	req.Header.Set("Content-Type", contentType)
	// A browser of its own (same cookies): the handler runs in another goroutine.
	own := b.e.browser()
	own.cookies = maps.Clone(b.cookies)
	done := make(chan *response, 1)
	go func() { done <- own.do(req) }()
	// A pipe write returns only once the handler has read it.
	if _, err := pw.Write(body[:64]); err != nil {
		t.Fatal(err)
	}
	return func() *response {
		_, _ = pw.Write(body[64:])
		_ = pw.Close()
		return <-done
	}
}

// One upload at a time per session, and at most MaxUploads in all: each is held in memory.
func TestUploadConcurrencyLimited(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		e := newEnv(t, db, func(c *Config) { c.MaxUploads = 2 })
		a, b := e.signIn("pA"), e.signIn("pB")
		e.clock.Advance(DefaultResendCooldown)
		c := e.signIn("pA")
		finishA := slowUpload(t, a)
		res := a.postFile("/upload", a.csrf("/thread"), "second.png", "image/png", pngBytes())
		wantStatus(t, res, http.StatusTooManyRequests)
		wantBody(t, res, "Another upload is still in progress")
		finishB := slowUpload(t, b)
		// Another session of the same patient: the global limit (2) is reached.
		wantStatus(t, c.postFile("/upload", c.csrf("/thread"), "third.png", "image/png", pngBytes()), http.StatusTooManyRequests)
		wantStatus(t, finishA(), http.StatusSeeOther)
		wantStatus(t, finishB(), http.StatusSeeOther)
		wantStatus(t, c.postFile("/upload", c.csrf("/thread"), "third.png", "image/png", pngBytes()), http.StatusSeeOther)
		wantStatus(t, a.postFile("/upload", a.csrf("/thread"), "again.png", "image/png", pngBytes()), http.StatusSeeOther)
		if n := len(e.be.uploads); n != 4 {
			t.Fatalf("%d uploads reached the backend, want 4", n)
		}
	})
}

// The listener's whole-request timeout cuts a slow reply, but an upload has its own, longer
// deadline: a photo arriving slowly from a phone on a poor connection gets through.
func TestUploadDeadlineLongerThanListener(t *testing.T) {
	e := newEnv(t, openSQLite(t), func(c *Config) { c.UploadTimeout = time.Minute })
	b := e.signIn("pA")
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	cookie := sessionCookie + "=" + b.cookies[sessionCookie]
	csrf := b.csrf("/thread")

	// trickle sends body in pieces over about a second: past the listener's timeout.
	trickle := func(path, contentType string, body []byte) (int, error) {
		pr, pw := io.Pipe()
		go func() {
			step := len(body)/10 + 1
			for i := 0; i < len(body); i += step {
				_, _ = pw.Write(body[i:min(i+step, len(body))])
				time.Sleep(100 * time.Millisecond)
			}
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, pr)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Cookie", cookie)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	body, contentType := uploadBody(t, csrf, append(pngBytes(), make([]byte, 2000)...))
	if status, err := trickle("/upload", contentType, body); err != nil || status != http.StatusSeeOther {
		t.Fatalf("slow upload: %d %v", status, err)
	}
	form := url.Values{"csrf": {csrf}, "body": {strings.Repeat("slow reply ", 50)}}.Encode()
	if status, err := trickle("/reply", "application/x-www-form-urlencoded", []byte(form)); err == nil && status == http.StatusSeeOther {
		t.Fatal("a slow reply was not cut off by the listener's timeout (the test proves nothing)")
	}
	if n := len(e.be.uploads); n != 1 {
		t.Fatalf("%d uploads reached the backend", n)
	}
}

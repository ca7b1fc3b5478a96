package portal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"

	"github.com/careline/careline/internal/pgtest"
	"github.com/careline/careline/token"
)

const publicURL = "https://texts.example.org"

// ---- databases ----

// forEachDB runs fn once against a fresh SQLite database and once against a fresh
// PostgreSQL database (CARELINE_TEST_POSTGRES, default a local server; skipped with a
// message if it cannot be reached).
func forEachDB(t *testing.T, fn func(t *testing.T, db *dbutil.Database)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func openSQLite(tb testing.TB) *dbutil.Database {
	tb.Helper()
	uri := "file:" + filepath.Join(tb.TempDir(), "portal.db") + "?_txlock=immediate"
	db, err := dbutil.NewWithDialect(uri, "sqlite3-fk-wal")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func openPostgres(tb testing.TB) *dbutil.Database {
	tb.Helper()
	return pgtest.Open(tb, "careline_portal_test")
}

// ---- clock ----

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---- fake backend ----

type sms struct{ patientID, text string }
type upload struct {
	patientID, fileName, contentType string
	data                             []byte
}
type storedFile struct {
	contentType string
	data        []byte
}

type fakeBackend struct {
	mu          sync.Mutex
	patients    map[string]*Patient
	threads     map[string][]Message
	dobs        map[string]time.Time
	files       map[string]storedFile // patientID + "/" + attachment id
	sms         []sms
	replies     []sms
	uploads     []upload
	marked      map[string][]string
	markCalls   int
	notices     []sms
	audits      []sms
	attachCalls int
	smsErr      error
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		patients: map[string]*Patient{
			"pA": {ID: "pA", MaskedPhone: "···4567", ClinicName: "Sunrise Clinic", HasDOB: true},
			"pB": {ID: "pB", MaskedPhone: "···9876", ClinicName: "Sunrise Clinic"},
		},
		threads: map[string][]Message{},
		dobs:    map[string]time.Time{"pA": time.Date(1984, 3, 27, 0, 0, 0, 0, time.UTC)},
		files:   map[string]storedFile{},
		marked:  map[string][]string{},
	}
}

func (f *fakeBackend) Patient(_ context.Context, id string) (*Patient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.patients[id]; ok {
		cp := *p
		return &cp, nil
	}
	return nil, nil
}

func (f *fakeBackend) Thread(_ context.Context, id string) ([]Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.threads[id]), nil
}

func (f *fakeBackend) SendSMS(_ context.Context, id, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.smsErr != nil {
		return f.smsErr
	}
	f.sms = append(f.sms, sms{id, text})
	return nil
}

func (f *fakeBackend) Reply(_ context.Context, id, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = append(f.replies, sms{id, body})
	return nil
}

func (f *fakeBackend) Upload(_ context.Context, id, name, ct string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads = append(f.uploads, upload{id, name, ct, data})
	return nil
}

func (f *fakeBackend) Attachment(_ context.Context, id, attID string) (string, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attachCalls++
	file, ok := f.files[id+"/"+attID]
	if !ok {
		return "", nil, fmt.Errorf("no attachment %s for %s", attID, id)
	}
	return file.contentType, file.data, nil
}

func (f *fakeBackend) MarkRead(_ context.Context, id string, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markCalls++
	f.marked[id] = append(f.marked[id], ids...)
	// Like careline's message record, the one read state the portal relies on.
	for i := range f.threads[id] {
		if slices.Contains(ids, f.threads[id][i].ID) {
			f.threads[id][i].Read = true
		}
	}
	return nil
}

func (f *fakeBackend) CheckDOB(_ context.Context, id string, dob time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want, ok := f.dobs[id]
	return ok && want.Equal(dob), nil
}

func (f *fakeBackend) NotifyStaff(_ context.Context, id, notice string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notices = append(f.notices, sms{id, notice})
	return nil
}

func (f *fakeBackend) Audit(_ context.Context, id, action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, sms{id, action})
}

func (f *fakeBackend) smsCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sms)
}

var codeRe = regexp.MustCompile(`\b(\d{6})\b`)

// lastCode is the code in the last SMS to the patient.
func (f *fakeBackend) lastCode(t testing.TB, patientID string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.sms) - 1; i >= 0; i-- {
		if f.sms[i].patientID == patientID {
			m := codeRe.FindStringSubmatch(f.sms[i].text)
			if m == nil {
				t.Fatalf("no code in SMS %q", f.sms[i].text)
			}
			return m[1]
		}
	}
	t.Fatalf("no SMS to %s", patientID)
	return ""
}

func (f *fakeBackend) audited(patientID, action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.audits {
		if a.patientID == patientID && a.text == action {
			n++
		}
	}
	return n
}

// ---- environment ----

type env struct {
	t     testing.TB
	p     *Portal
	db    *dbutil.Database
	be    *fakeBackend
	clock *clock
	h     http.Handler
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, db *dbutil.Database, tweak ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: db, be: newFakeBackend(), clock: &clock{t: time.Date(2026, 3, 2, 15, 4, 5, 0, time.UTC)}, logs: &syncBuffer{}}
	cfg := Config{PublicURL: publicURL + "/", HashKey: testHashKey, Now: e.clock.Now, Location: time.UTC}
	for _, fn := range tweak {
		fn(&cfg)
	}
	p, err := New(cfg, db, e.be)
	if err != nil {
		t.Fatal(err)
	}
	if err = p.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.p = p
	log := zerolog.New(e.logs).Level(zerolog.DebugLevel)
	inner := p.Handler()
	e.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(log.WithContext(r.Context())))
	})
	return e
}

// link creates a link for the patient and returns its path ("/l/...").
func (e *env) link(patientID string) string {
	e.t.Helper()
	full, err := e.p.CreateLink(context.Background(), patientID)
	if err != nil {
		e.t.Fatal(err)
	}
	path, ok := strings.CutPrefix(full, publicURL)
	if !ok {
		e.t.Fatalf("link %q is not under %s", full, publicURL)
	}
	return path
}

// ---- browser ----

// browser keeps cookies by hand: Go's cookie jar will not send Secure cookies over the
// plain-HTTP test server, while the real portal sits behind TLS.
type browser struct {
	e       *env
	cookies map[string]string
	lang    string
	headers map[string]string
}

func (e *env) browser() *browser {
	return &browser{e: e, cookies: map[string]string{}, headers: map[string]string{}}
}

type response struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) *response {
	b.e.t.Helper()
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	for k, v := range b.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.e.h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return &response{res, string(body)}
}

func (b *browser) get(path string) *response {
	b.e.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *browser) post(path string, form url.Values) *response {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) postFile(path, csrf, fileName, contentType string, data []byte) *response {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		_ = mw.WriteField("csrf", csrf)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, fileName))
	h.Set("Content-Type", contentType)
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(data)
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the anti-CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	res := b.get(path)
	m := csrfRe.FindStringSubmatch(res.body)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on %s (%d): %s", path, res.StatusCode, res.body)
	}
	return m[1]
}

// open opens a link and expects the redirect to /verify.
func (b *browser) open(link string) {
	b.e.t.Helper()
	res := b.get(link)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/verify" {
		b.e.t.Fatalf("opening link: %d to %q, want 303 to /verify", res.StatusCode, res.Header.Get("Location"))
	}
}

// sendCode asks for a code from the verify page and returns it.
func (b *browser) sendCode(patientID string) string {
	b.e.t.Helper()
	res := b.post("/code/send", url.Values{"csrf": {b.csrf("/verify")}})
	if res.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("sending code: %d: %s", res.StatusCode, res.body)
	}
	return b.e.be.lastCode(b.e.t, patientID)
}

func (b *browser) verify(code string, extra ...string) *response {
	b.e.t.Helper()
	form := url.Values{"csrf": {b.csrf("/verify")}, "code": {code}}
	if len(extra) > 0 {
		form.Set("dob", extra[0])
	}
	return b.post("/code/verify", form)
}

// signIn takes a fresh browser through link, code and verification for the patient.
func (e *env) signIn(patientID string) *browser {
	e.t.Helper()
	b := e.browser()
	b.open(e.link(patientID))
	res := b.verify(b.sendCode(patientID))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/thread" {
		e.t.Fatalf("verifying: %d to %q: %s", res.StatusCode, res.Header.Get("Location"), res.body)
	}
	return b
}

func wantStatus(t testing.TB, res *response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; body: %.600s", res.StatusCode, status, res.body)
	}
}

func wantBody(t testing.TB, res *response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(res.body, p) {
			t.Fatalf("page lacks %q: %.2000s", p, res.body)
		}
	}
}

func wantNoBody(t testing.TB, res *response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(res.body, p) {
			t.Fatalf("page contains %q", p)
		}
	}
}

// count returns a number from the database.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.p.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func setCookieHeader(res *response, name string) string {
	for _, v := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

var testHashKey = token.HashKeyFromSecret("a test identity key that is long enough to use")

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"

	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/appointment"
	"github.com/careline/careline/atrest"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/openapicheck"
	"github.com/careline/careline/internal/pgtest"
)

// fakeBackend stands in for the bridge: these tests are about the HTTP layer (the real
// bridge is exercised end to end in internal/e2e).
type fakeBackend struct {
	mu       sync.Mutex
	sent     map[string]*MessageRequest
	changed  []string
	refuseTo string
}

func (b *fakeBackend) SendMessage(ctx context.Context, integration, id string, req *MessageRequest) (*Sent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.To == b.refuseTo {
		return nil, Refuse(`"to": not a mobile number`)
	}
	b.sent[id] = req
	return &Sent{RoomID: "!room:test", PatientID: "p-" + req.To}, nil
}

func (b *fakeBackend) Message(ctx context.Context, id string) (*MessageStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sent[id] == nil {
		return nil, nil
	}
	return &MessageStatus{ID: id, Status: "queued", Mode: "secure"}, nil
}

func (b *fakeBackend) StartBroadcast(ctx context.Context, integration, id string, req *BroadcastRequest) error {
	return nil
}

func (b *fakeBackend) Broadcast(ctx context.Context, id string) (*BroadcastStatus, error) {
	return &BroadcastStatus{ID: id, Sent: 1, Skipped: map[string]int{"invalid_number": 1}, Done: true}, nil
}

func (b *fakeBackend) PatientID(ctx context.Context, number, first, last string) (string, error) {
	if number == b.refuseTo {
		return "", Refuse(number + " is a landline")
	}
	return "p-" + number, nil
}

func (b *fakeBackend) AppointmentChanged(ctx context.Context, integration string, a *appointment.Appointment, created bool) {
	b.mu.Lock()
	b.changed = append(b.changed, a.ID)
	b.mu.Unlock()
}

type env struct {
	t       *testing.T
	srv     *httptest.Server
	doc     *openapicheck.Doc
	tokens  *apitoken.Store
	audit   *audit.Log
	backend *fakeBackend
	now     time.Time
	covered map[string]bool
}

// newEnv serves the API on SQLite, or on PostgreSQL for the tests TestOnPostgres runs.
func newEnv(t *testing.T, perMinute int) *env {
	var db *dbutil.Database
	var err error
	if onPostgres {
		db, err = dbutil.NewWithDialect(pgtest.NewDatabase(t, "careline_api"), "postgres")
	} else {
		db, err = dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "t.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	keys, _ := atrest.NewKeyring("k1", map[string][]byte{"k1": make([]byte, 32)})
	e := &env{t: t, backend: &fakeBackend{sent: map[string]*MessageRequest{}, refuseTo: "+12025550100"},
		now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), covered: map[string]bool{}}
	e.tokens = apitoken.New(db, apitoken.KeyFromSecret(strings.Repeat("s", 40)), zerolog.Nop())
	e.audit = audit.New(db, audit.KeyFromSecret(strings.Repeat("s", 40)), zerolog.Nop())
	appointments := appointment.New(db, keys, zerolog.Nop())
	appointments.Now = func() time.Time { return e.now }
	s, err := New(Config{RequestsPerMinute: perMinute, ReminderOffsets: []time.Duration{72 * time.Hour, 24 * time.Hour}, Now: func() time.Time { return e.now }},
		db, e.tokens, appointments, e.audit, e.backend, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []func(context.Context) error{e.tokens.Upgrade, e.audit.Upgrade, appointments.Upgrade, s.Upgrade} {
		if err = up(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	s.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.doc, err = openapicheck.Load(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) token(name string) string {
	tok, err := e.tokens.Create(context.Background(), name, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

// do makes a request and checks the response against the OpenAPI description.
func (e *env) do(method, path, tok, contentType, body string, headers ...string) response {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	op, err := e.doc.Check(method, path, resp.StatusCode, resp.Header, data)
	if err != nil {
		e.t.Errorf("response does not match the OpenAPI description: %v\nbody: %s", err, data)
	}
	e.covered[op] = true
	return response{resp.StatusCode, resp.Header, data}
}

func TestTokenRequired(t *testing.T) {
	e := newEnv(t, 100)
	good := e.token("ehr")
	revoked := e.token("old")
	if err := e.tokens.Revoke(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	msg := `{"to":"+14155550123","body":"hi"}`
	for name, tok := range map[string]string{"missing": "", "wrong": good[:len(good)-2] + "xx", "revoked": revoked, "not bearer": ""} {
		r := e.do("POST", "/api/v1/messages", tok, "application/json", msg)
		if r.status != http.StatusUnauthorized || r.json(t)["error"] == "" {
			t.Errorf("%s token: %d %s", name, r.status, r.body)
		}
		f := e.do("GET", "/fhir/r4/Appointment/a1", tok, "", "")
		if f.status != http.StatusUnauthorized || f.json(t)["resourceType"] != "OperationOutcome" {
			t.Errorf("%s token on FHIR: %d %s", name, f.status, f.body)
		}
	}
	if len(e.backend.sent) != 0 {
		t.Fatal("a refused call sent a message")
	}
	if r := e.do("GET", "/api/v1/openapi.json", "", "", ""); r.status != 200 || !bytes.Equal(r.body, OpenAPI) {
		t.Fatalf("openapi.json: %d", r.status)
	}
	if r := e.do("POST", "/api/v1/messages", good, "application/json", msg); r.status != http.StatusAccepted {
		t.Fatalf("good token: %d %s", r.status, r.body)
	}
	// The accepted call is audited under the token's name, with the patient.
	var found bool
	_, err := e.audit.Export(context.Background(), writerFunc(func(p []byte) (int, error) {
		found = found || (bytes.Contains(p, []byte(`"api:ehr"`)) && bytes.Contains(p, []byte(`api.message.create`)) && bytes.Contains(p, []byte(`p-+14155550123`)))
		return len(p), nil
	}), time.Time{}, time.Now().Add(time.Hour), "jsonl")
	if err != nil || !found {
		t.Fatalf("no audit entry for the call (%v)", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestRateLimit(t *testing.T) {
	e := newEnv(t, 3)
	a, b := e.token("a"), e.token("b")
	for i := range 3 {
		if r := e.do("GET", "/api/v1/messages/none", a, "", ""); r.status != http.StatusNotFound {
			t.Fatalf("call %d: %d", i, r.status)
		}
	}
	r := e.do("GET", "/api/v1/messages/none", a, "", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "20" {
		t.Fatalf("fourth call: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if r := e.do("GET", "/api/v1/messages/none", b, "", ""); r.status != http.StatusNotFound {
		t.Fatalf("another token is limited too: %d", r.status)
	}
	e.now = e.now.Add(20 * time.Second)
	if r := e.do("GET", "/api/v1/messages/none", a, "", ""); r.status != http.StatusNotFound {
		t.Fatalf("after Retry-After: %d", r.status)
	}
}

func TestIdempotentRetrySendsOnce(t *testing.T) {
	e := newEnv(t, 100)
	tok := e.token("ehr")
	body := `{"to":"+14155550123","body":"Your results are in"}`
	first := e.do("POST", "/api/v1/messages", tok, "application/json", body, "Idempotency-Key", "k-1")
	second := e.do("POST", "/api/v1/messages", tok, "application/json", body, "Idempotency-Key", "k-1")
	if first.status != 202 || second.status != 202 || !bytes.Equal(bytes.TrimSpace(first.body), bytes.TrimSpace(second.body)) {
		t.Fatalf("first %d %s, retry %d %s", first.status, first.body, second.status, second.body)
	}
	if second.header.Get("Idempotent-Replayed") != "true" || len(e.backend.sent) != 1 {
		t.Fatalf("sent %d times", len(e.backend.sent))
	}
	if r := e.do("POST", "/api/v1/messages", tok, "application/json", `{"to":"+14155550123","body":"other"}`, "Idempotency-Key", "k-1"); r.status != 422 {
		t.Fatalf("same key, other body: %d", r.status)
	}
	// Another token's key space is its own.
	other := e.token("other")
	if r := e.do("POST", "/api/v1/messages", other, "application/json", body, "Idempotency-Key", "k-1"); r.status != 202 || len(e.backend.sent) != 2 {
		t.Fatalf("other token, same key: %d, sent %d", r.status, len(e.backend.sent))
	}
	// A refused request frees its key; without a key every POST sends.
	if r := e.do("POST", "/api/v1/messages", tok, "application/json", `{"to":"+12025550100","body":"x"}`, "Idempotency-Key", "k-2"); r.status != 422 {
		t.Fatalf("refused: %d", r.status)
	}
	if r := e.do("POST", "/api/v1/messages", tok, "application/json", body, "Idempotency-Key", "k-2"); r.status != 202 || len(e.backend.sent) != 3 {
		t.Fatalf("corrected retry with the freed key: %d, sent %d", r.status, len(e.backend.sent))
	}
}

func TestTokenSeesOnlyItsOwn(t *testing.T) {
	e := newEnv(t, 100)
	a, b := e.token("a"), e.token("b")
	r := e.do("POST", "/api/v1/messages", a, "application/json", `{"to":"+14155550123","body":"hi"}`)
	id, _ := r.json(t)["id"].(string)
	if got := e.do("GET", "/api/v1/messages/"+id, a, "", ""); got.status != 200 || got.json(t)["status"] != "queued" {
		t.Fatalf("owner: %d %s", got.status, got.body)
	}
	if got := e.do("GET", "/api/v1/messages/"+id, b, "", ""); got.status != 404 {
		t.Fatalf("other token: %d", got.status)
	}
	r = e.do("POST", "/api/v1/broadcasts", a, "application/json", `{"template":"closure","to":["+14155550123","nonsense"]}`)
	bid, _ := r.json(t)["id"].(string)
	if r.status != 202 || bid == "" {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	if got := e.do("GET", "/api/v1/broadcasts/"+bid, a, "", ""); got.status != 200 {
		t.Fatalf("broadcast owner: %d", got.status)
	}
	if got := e.do("GET", "/api/v1/broadcasts/"+bid, b, "", ""); got.status != 404 {
		t.Fatalf("broadcast, other token: %d", got.status)
	}
}

func TestMessageInputRefused(t *testing.T) {
	e := newEnv(t, 100)
	tok := e.token("ehr")
	for body, want := range map[string]int{
		`{"to":"+14155550123"}`: 400,
		`{"body":"hi"}`:         400,
		`{"to":"+14155550123","body":"hi","template":"x"}`:          400,
		`{"to":"+14155550123","body":"hi","mode":"loud"}`:           400,
		`{"to":"+14155550123","body":"hi","colour":"red"}`:          400,
		`{"to":"+14155550123","body":"hi"} {}`:                      400,
		`{"to":`:                                                    400,
		`{"to":"+12025550100","body":"hi"}`:                         422,
		`{"to":"+14155550123","body":"hi","params":{"a":"b"}}`:      400,
		`{"to":"+14155550123","template":"t","params":{"a":["b"]}}`: 400,
	} {
		r := e.do("POST", "/api/v1/messages", tok, "application/json", body)
		if r.status != want || r.json(t)["error"] == "" {
			t.Errorf("%s: %d %s, want %d", body, r.status, r.body, want)
		}
	}
	if r := e.do("POST", "/api/v1/messages", tok, "text/plain", `{"to":"+14155550123","body":"hi"}`); r.status != 415 {
		t.Errorf("text/plain: %d", r.status)
	}
	if len(e.backend.sent) != 0 {
		t.Fatalf("refused requests sent %d messages", len(e.backend.sent))
	}
}

const appointmentBody = `{
  "resourceType": "Appointment", "status": "booked", "start": "%s",
  "extension": [{"url": "http://ehr.example/visit-type", "valueString": "follow-up"}],
  "contained": [{"resourceType": "Patient", "id": "p", "name": [{"given": ["Ana"], "family": "Rivera"}],
                 "telecom": [{"system": "phone", "use": "mobile", "value": "%s"}]}],
  "participant": [{"actor": {"reference": "#p"}, "status": "needs-action"},
                  {"actor": {"reference": "Practitioner/1", "display": "Dr. Lee"}, "status": "accepted"}]
}`

func appt(start, number string) string {
	return strings.Replace(strings.Replace(appointmentBody, "%s", start, 1), "%s", number, 1)
}

func TestFHIRAppointmentLifecycle(t *testing.T) {
	e := newEnv(t, 100)
	tok := e.token("ehr")
	start := e.now.Add(72*time.Hour + time.Hour).In(time.FixedZone("EST", -5*3600)).Format(time.RFC3339)
	r := e.do("PUT", "/fhir/r4/Appointment/a1", tok, "application/fhir+json", appt(start, "+14155550123"))
	if r.status != 201 || r.header.Get("Location") != "/fhir/r4/Appointment/a1" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["id"] != "a1" || !strings.Contains(string(r.body), "follow-up") || strings.Count(string(r.body), "StructureDefinition/reminder") != 2 {
		t.Fatalf("created resource: %s", r.body)
	}
	moved := e.now.Add(96 * time.Hour).Format(time.RFC3339)
	if r = e.do("PUT", "/fhir/r4/Appointment/a1", tok, "application/fhir+json", appt(moved, "+14155550123")); r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if r = e.do("GET", "/fhir/r4/Appointment/a1", tok, "", ""); r.status != 200 || !strings.Contains(string(r.body), `"valueDateTime":"`+e.now.Add(24*time.Hour).Format(time.RFC3339)) {
		t.Fatalf("get after move: %d %s", r.status, r.body)
	}
	// Appointments are the clinic's: another token sees and changes the same one.
	other := e.token("scheduler")
	if r = e.do("GET", "/fhir/r4/Appointment/a1", other, "", ""); r.status != 200 {
		t.Fatalf("other token: %d", r.status)
	}
	if r = e.do("DELETE", "/fhir/r4/Appointment/a1", tok, "", ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r = e.do("GET", "/fhir/r4/Appointment/a1", tok, "", ""); r.status != 410 || r.json(t)["resourceType"] != "OperationOutcome" {
		t.Fatalf("get after delete: %d %s", r.status, r.body)
	}
	if r = e.do("DELETE", "/fhir/r4/Appointment/nope", tok, "", ""); r.status != 404 {
		t.Fatalf("delete unknown: %d", r.status)
	}
	if len(e.backend.changed) != 3 {
		t.Fatalf("backend told of %d changes, want 3", len(e.backend.changed))
	}
}

func TestFHIRRefusals(t *testing.T) {
	e := newEnv(t, 100)
	tok := e.token("ehr")
	future := e.now.Add(48 * time.Hour).Format(time.RFC3339)
	past := e.now.Add(-time.Hour).Format(time.RFC3339)
	noMobile := strings.Replace(appt(future, "+14155550123"), `"system": "phone", "use": "mobile"`, `"system": "email"`, 1)
	cases := []struct {
		name, body, expression string
		status                 int
	}{
		{"not JSON", `{"resourceType":`, "Appointment", 400},
		{"a Patient", `{"resourceType":"Patient"}`, "Appointment.resourceType", 400},
		{"no start", strings.Replace(appt(future, "+14155550123"), `"start": "`+future+`",`, "", 1), "Appointment.start", 400},
		{"no mobile", noMobile, "Appointment.participant", 422},
		{"landline", appt(future, "+12025550100"), "Appointment.participant", 422},
		{"already started", appt(past, "+14155550123"), "Appointment.start", 422},
		{"unknown reference", `{"resourceType":"Appointment","status":"booked","start":"` + future + `","participant":[{"actor":{"reference":"Patient/9"},"status":"accepted"}]}`, "Appointment.participant", 422},
	}
	for _, c := range cases {
		r := e.do("PUT", "/fhir/r4/Appointment/x1", tok, "application/fhir+json", c.body)
		oo := r.json(t)
		issues, _ := oo["issue"].([]any)
		if r.status != c.status || oo["resourceType"] != "OperationOutcome" || len(issues) != 1 {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
			continue
		}
		issue := issues[0].(map[string]any)
		if expr, _ := issue["expression"].([]any); len(expr) != 1 || expr[0] != c.expression || issue["diagnostics"] == "" {
			t.Errorf("%s: issue %v", c.name, issue)
		}
	}
	if r := e.do("GET", "/fhir/r4/Appointment/x1", tok, "", ""); r.status != 404 {
		t.Fatalf("a refused PUT created the appointment: %d", r.status)
	}
	// A past appointment may still be updated or cancelled.
	if r := e.do("PUT", "/fhir/r4/Appointment/x2", tok, "application/fhir+json", appt(future, "+14155550123")); r.status != 201 {
		t.Fatal(r.status)
	}
	e.now = e.now.Add(72 * time.Hour)
	cancelled := strings.Replace(appt(future, "+14155550123"), `"status": "booked"`, `"status": "cancelled"`, 1)
	if r := e.do("PUT", "/fhir/r4/Appointment/x2", tok, "application/fhir+json", cancelled); r.status != 200 {
		t.Fatalf("cancelling a past appointment: %d %s", r.status, r.body)
	}
	// A referenced Patient careline received contained before is known.
	withRef := strings.Replace(appt(e.now.Add(48*time.Hour).Format(time.RFC3339), "+14155550123"), `"reference": "#p"`, `"reference": "Patient/p"`, 1)
	if r := e.do("PUT", "/fhir/r4/Appointment/x3", tok, "application/fhir+json", withRef); r.status != 201 {
		t.Fatalf("contained under Patient/p: %d %s", r.status, r.body)
	}
	refOnly := `{"resourceType":"Appointment","status":"booked","start":"` + e.now.Add(50*time.Hour).Format(time.RFC3339) + `","participant":[{"actor":{"reference":"Patient/p"},"status":"needs-action"}]}`
	if r := e.do("PUT", "/fhir/r4/Appointment/x4", tok, "application/fhir+json", refOnly); r.status != 201 {
		t.Fatalf("referenced patient: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/fhir/r4/Appointment/x5", tok, "text/plain", refOnly); r.status != 415 {
		t.Fatalf("text/plain: %d", r.status)
	}
	if r := e.do("PUT", "/fhir/r4/Appointment/bad%20id", tok, "application/fhir+json", refOnly); r.status != 400 {
		t.Fatalf("bad id: %d", r.status)
	}
}

// TestEveryOperationCovered: the tests above exercise every operation the description lists,
// so "every response matches the description" covers the whole API.
func TestEveryOperationCovered(t *testing.T) {
	e := newEnv(t, 100)
	tok := e.token("ehr")
	e.do("GET", "/api/v1/openapi.json", "", "", "")
	r := e.do("POST", "/api/v1/messages", tok, "application/json", `{"to":"+14155550123","body":"hi"}`)
	e.do("GET", "/api/v1/messages/"+r.json(t)["id"].(string), tok, "", "")
	r = e.do("POST", "/api/v1/broadcasts", tok, "application/json", `{"template":"t","to":["+14155550123"]}`)
	e.do("GET", "/api/v1/broadcasts/"+r.json(t)["id"].(string), tok, "", "")
	e.do("PUT", "/fhir/r4/Appointment/c1", tok, "application/fhir+json", appt(e.now.Add(50*time.Hour).Format(time.RFC3339), "+14155550123"))
	e.do("GET", "/fhir/r4/Appointment/c1", tok, "", "")
	e.do("DELETE", "/fhir/r4/Appointment/c1", tok, "", "")
	for _, op := range e.doc.Operations() {
		if !e.covered[op] {
			t.Errorf("%s is described but not exercised", op)
		}
	}
}

// onPostgres switches newEnv to PostgreSQL for TestOnPostgres.
var onPostgres bool

// TestOnPostgres runs the database-backed rules (idempotency, ownership, appointments) on
// PostgreSQL too.
func TestOnPostgres(t *testing.T) {
	onPostgres = true
	defer func() { onPostgres = false }()
	t.Run("idempotency", TestIdempotentRetrySendsOnce)
	t.Run("ownership", TestTokenSeesOnlyItsOwn)
	t.Run("appointments", TestFHIRAppointmentLifecycle)
	t.Run("refusals", TestFHIRRefusals)
}

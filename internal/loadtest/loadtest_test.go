package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/stubhs"
	"github.com/careline/careline/internal/twiliofake"
)

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// The webhook must pass Twilio's own validator (twilio-go), not just our signer.
func TestWebhookSignedAsTwilioSigns(t *testing.T) {
	target := "http://127.0.0.1:1/twilio/AC1-15005550006/sms"
	req, err := Webhook(context.Background(), target, PatientNumber(7), "hello ld:x:1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for k, v := range form {
		params[k] = v[0]
	}
	v := client.NewRequestValidator(localstack.AuthToken)
	if !v.Validate(target, params, req.Header.Get("X-Twilio-Signature")) {
		t.Fatal("twilio-go does not accept the load tool's signature")
	}
	if v.Validate(target+"x", params, req.Header.Get("X-Twilio-Signature")) {
		t.Fatal("the signature does not cover the URL")
	}
	if params["From"] != PatientNumber(7) || params["To"] != localstack.ClinicNumber || params["MessageSid"] == "" {
		t.Fatalf("webhook fields: %v", params)
	}
}

// The prebuilt form and signed string give what url.Values and twiliofake.Sign give for the
// same parameters, for every request from one Webhooks (its HMACs and buffers are reused).
func TestWebhooksMatchTheReferenceSigner(t *testing.T) {
	target := "http://127.0.0.1:1/twilio/AC1-15005550006/sms"
	w, err := NewWebhooks(target)
	if err != nil {
		t.Fatal(err)
	}
	sids := map[string]bool{}
	for i, text := range []string{"hello ld:x:1", "a&b=c+d %20 ünï 🙂", "", strings.Repeat("long ", 300)} {
		req, err := w.Request(context.Background(), PatientNumber(i), text)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			// The bytes the load tool writes, as the bridge's HTTP server reads them.
			raw := w.AppendRaw(nil, PatientNumber(i), text)
			if req, err = http.ReadRequest(bufio.NewReader(bytes.NewReader(raw))); err != nil {
				t.Fatalf("request %d: %v\n%s", i, err, raw)
			}
			if req.Method != http.MethodPost || req.Host != "127.0.0.1:1" || req.URL.Path != "/twilio/AC1-15005550006/sms" ||
				req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || req.UserAgent() != "TwilioProxy/1.1" {
				t.Fatalf("request %d: %s %s %s %v", i, req.Method, req.Host, req.URL, req.Header)
			}
		}
		body, _ := io.ReadAll(req.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := form.Encode(); got != string(body) {
			t.Errorf("request %d: form body\n%s\nwant (url.Values.Encode)\n%s", i, body, got)
		}
		if got, want := req.Header.Get("X-Twilio-Signature"), twiliofake.Sign(localstack.AuthToken, target, form); got != want {
			t.Errorf("request %d: signature %s, twiliofake.Sign gives %s", i, got, want)
		}
		sid := form.Get("MessageSid")
		if len(sid) != 34 || !strings.HasPrefix(sid, "SM") || form.Get("SmsSid") != sid || form.Get("SmsMessageSid") != sid || sids[sid] {
			t.Errorf("request %d: SIDs %v", i, form)
		}
		sids[sid] = true
		if form.Get("Body") != text || form.Get("From") != PatientNumber(i) || len(form) != 20 {
			t.Errorf("request %d: fields %v", i, form)
		}
	}
}

func TestPatientNumbersDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 200000 {
		n := PatientNumber(i)
		if seen[n] {
			t.Fatalf("patient %d has the number of an earlier patient: %s", i, n)
		}
		seen[n] = true
	}
}

func TestRecorderMatchesOnlyItsRun(t *testing.T) {
	rec := &Recorder{}
	rec.begin("run1", 3)
	now := time.Now()
	for _, body := range []string{
		"Load test message ld:run1:0",
		"Load test message ld:run1:0", // a duplicate does not count twice
		"Load test message ld:run0:1", // another run
		"Load test message ld:run1:9", // out of range
		"no marker",
		"prefix ld:run1:2 suffix",
	} {
		rec.OnMessage(stubhs.Message{Body: body, Arrived: now})
	}
	n, _ := rec.progress()
	if n != 2 {
		t.Fatalf("recorded %d arrivals, want 2", n)
	}
	if rec.arrived[0].IsZero() || !rec.arrived[1].IsZero() || rec.arrived[2].IsZero() {
		t.Fatalf("arrivals: %v", rec.arrived)
	}
}

func TestSampleProcReadsThisProcess(t *testing.T) {
	before, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's 10 ms clock has counted some (no wall-clock bound).
	for x := 0; ; x++ {
		s, err := SampleProc(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s.CPU > before.CPU {
			break
		}
		_ = x * x
	}
	if before.RSS <= 0 || before.PeakRSS < before.RSS {
		t.Fatalf("RSS %d, peak %d", before.RSS, before.PeakRSS)
	}
}

// SelfCPU counts this process's CPU, as /proc does (both read the kernel's accounting; /proc
// rounds it to 10 ms ticks).
func TestSelfCPUCountsThisProcess(t *testing.T) {
	before := SelfCPU()
	procBefore, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for x := 0; ; x++ {
		s, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s >= procBefore+5*clockTick {
			break
		}
		_ = x * x
	}
	self := SelfCPU()
	proc, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self <= before {
		t.Fatalf("SelfCPU did not advance: %v then %v", before, self)
	}
	if diff := self - proc; diff < -3*clockTick || diff > 3*clockTick {
		t.Fatalf("SelfCPU %v, /proc says %v", self, proc)
	}
}

func TestCopyRowsVariesKeys(t *testing.T) {
	db, err := sql.Open(sqliteDriver, "file:"+filepath.Join(t.TempDir(), "seed.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE patient (id TEXT PRIMARY KEY, login TEXT NOT NULL, sealed BLOB NOT NULL, meta TEXT)`,
		`INSERT INTO patient VALUES ('tmpl', 'L1', x'0102', '{"a":1}'), ('other', 'L2', x'03', NULL)`,
	} {
		if _, err = db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := CopyRows(ctx, db, "sqlite3", RowCopy{
		Table: "patient", Where: "id = $1", Args: []any{"tmpl"},
		Vary: map[string]func(int) any{"id": func(n int) any { return "seed" + string(rune('a'+n)) }},
	}, 3)
	if err != nil || n != 3 {
		t.Fatalf("CopyRows: %d, %v", n, err)
	}
	var count int
	_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM patient WHERE login = 'L1' AND sealed = x'0102' AND meta = '{"a":1}' AND id LIKE 'seed%'`).Scan(&count)
	if count != 3 {
		t.Fatalf("%d copies carry the template's values, want 3", count)
	}
	if _, err = CopyRows(ctx, db, "sqlite3", RowCopy{Table: "patient", Vary: map[string]func(int) any{"nope": nil}}, 1); err == nil {
		t.Fatal("varying a column the table lacks was accepted")
	}
}

func TestCountStatements(t *testing.T) {
	log := "2026-11-30 11:07:29.855 UTC [1] postgres@bench LOG:  duration: 1.5 ms  parse <unnamed>: SELECT 1 FROM t WHERE id=$1\n" +
		"2026-11-30 11:07:29.856 UTC [1] postgres@bench LOG:  duration: 0.5 ms  bind <unnamed>: SELECT 1 FROM t WHERE id=$1\n" +
		"2026-11-30 11:07:29.857 UTC [1] postgres@bench LOG:  duration: 2.0 ms  execute <unnamed>: SELECT 1 FROM t WHERE id=$1\n" +
		"2026-11-30 11:07:29.858 UTC [1] postgres@bench LOG:  duration: 1.0 ms  execute <unnamed>: \n" +
		"\t\tINSERT INTO t (id)\n" +
		"\t\tVALUES ($1)\n" +
		"2026-11-30 11:07:29.859 UTC [2] postgres@other LOG:  duration: 9.0 ms  execute <unnamed>: SELECT 1 FROM t WHERE id=$1\n" +
		"2026-11-30 11:07:29.860 UTC [1] postgres@bench LOG:  duration: 3.0 ms  statement: COMMIT\n" +
		"2026-11-30 11:07:29.861 UTC [1] postgres@bench LOG:  duration: 1.0 ms  execute <unnamed>: SELECT 1 FROM t WHERE id=$1\n"
	counts, err := CountStatements(strings.NewReader(log), "bench")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]StatementCount{
		"SELECT 1 FROM t WHERE id=$1":    {Executed: 2, ServerMS: 5},
		"INSERT INTO t (id) VALUES ($1)": {Executed: 1, ServerMS: 1},
		"COMMIT":                         {Executed: 1, ServerMS: 3},
	}
	if len(counts) != len(want) {
		t.Fatalf("counted %+v", counts)
	}
	for _, c := range counts {
		w, ok := want[c.Statement]
		if !ok || c.Executed != w.Executed || c.ServerMS != w.ServerMS {
			t.Errorf("%q: executed %d, %.1f ms; want %+v", c.Statement, c.Executed, c.ServerMS, w)
		}
	}
	if counts[0].Statement != "SELECT 1 FROM t WHERE id=$1" {
		t.Errorf("most executed first: got %q", counts[0].Statement)
	}
}

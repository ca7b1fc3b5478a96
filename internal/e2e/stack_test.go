package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// The clinic's Twilio account in the fake Twilio.
const (
	accountSID   = "AC0123456789abcdef0123456789abcdef"
	authToken    = "0123456789abcdef0123456789abcdef"
	clinicNumber = "+15005550006"
	clinicName   = "Sunrise Clinic"
)

// postgresAdminURL is the machine's PostgreSQL (trust auth); each stack gets its own database.
const postgresAdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var carelineBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "careline-e2e-bin-")
	if err != nil {
		panic(err)
	}
	carelineBin = filepath.Join(dir, "careline")
	build := exec.Command("go", "build", "-tags", "goolm", "-o", carelineBin, "github.com/careline/careline/cmd/careline")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building careline:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one complete careline system: Dendrite, the fake Twilio, the bridge and two staff
// members with E2EE clients (the clinic admin who connects the Twilio number, and a nurse on
// the care team).
type stack struct {
	t          *testing.T
	dir        string
	configPath string
	regPath    string
	twilio     *twiliofake.Server
	hs         *testenv.Homeserver
	admin      *testenv.StaffClient
	nurse      *testenv.StaffClient
	bridge     *exec.Cmd
	bridgeDone chan error
	publicURL  string
	asURL      string
	secret     string
	dbURI      string
}

type stackOptions struct {
	Postgres bool
	// Network edits careline's network: section before start.
	Network func(network map[string]any)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func setPath(m map[string]any, value any, path ...string) {
	for _, key := range path[:len(path)-1] {
		next, ok := m[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[key] = next
		}
		m = next
	}
	m[path[len(path)-1]] = value
}

func editYAML(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err = os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func runCareline(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(carelineBin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("careline %v: %v\n%s", args, err, out)
	}
}

func newPostgresDatabase(t *testing.T) string {
	t.Helper()
	admin, err := sql.Open("postgres", postgresAdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "careline_e2e_" + randomHex(6)
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating a PostgreSQL database (is PostgreSQL running on 127.0.0.1:5432?): %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", postgresAdminURL)
		if err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
}

func startStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := &stack{t: t, dir: t.TempDir(), secret: randomHex(16)}
	s.configPath = filepath.Join(s.dir, "config.yaml")
	s.regPath = filepath.Join(s.dir, "registration.yaml")

	var err error
	s.twilio, err = twiliofake.Start(twiliofake.Options{AccountSID: accountSID, AuthToken: authToken, Numbers: []string{clinicNumber}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.twilio.Close() })

	asPort, publicPort := freePort(t), freePort(t)
	s.publicURL = fmt.Sprintf("http://127.0.0.1:%d", publicPort)
	s.asURL = fmt.Sprintf("http://127.0.0.1:%d", asPort)
	s.dbURI = "file:" + filepath.Join(s.dir, "careline.db") + "?_txlock=immediate"
	dbType := "sqlite3-fk-wal"
	if opts.Postgres {
		s.dbURI, dbType = newPostgresDatabase(t), "postgres"
	}

	runCareline(t, s.dir, "-e", "-c", s.configPath)
	editYAML(t, s.configPath, func(cfg map[string]any) {
		setPath(cfg, "careline.test", "homeserver", "domain")
		setPath(cfg, "http://127.0.0.1:1", "homeserver", "address") // replaced once Dendrite runs
		setPath(cfg, s.asURL, "appservice", "address")
		setPath(cfg, "127.0.0.1", "appservice", "hostname")
		setPath(cfg, asPort, "appservice", "port")
		setPath(cfg, dbType, "database", "type")
		setPath(cfg, s.dbURI, "database", "uri")
		setPath(cfg, s.secret, "provisioning", "shared_secret")
		setPath(cfg, map[string]any{"careline.test": "user", "@admin:careline.test": "admin"}, "bridge", "permissions")
		setPath(cfg, map[string]any{
			"min_level": "debug",
			"writers":   []any{map[string]any{"type": "file", "format": "json", "filename": filepath.Join(s.dir, "bridge.log")}},
		}, "logging")
		network := cfg["network"].(map[string]any)
		setPath(network, "127.0.0.1:"+fmt.Sprint(publicPort), "http", "listen")
		setPath(network, s.publicURL, "http", "public_url")
		setPath(network, s.twilio.URL, "twilio", "api_url")
		network["clinic_name"] = clinicName
		network["care_team"] = []any{"@nurse:careline.test"}
		if opts.Network != nil {
			opts.Network(network)
		}
	})
	runCareline(t, s.dir, "-g", "-c", s.configPath, "-r", s.regPath)

	s.hs, err = testenv.StartHomeserver(ctx, testenv.HomeserverOptions{
		ServerName: "careline.test", AppServiceConfigs: []string{s.regPath}, Dir: filepath.Join(s.dir, "dendrite"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.hs.Stop() })
	editYAML(t, s.configPath, func(cfg map[string]any) { setPath(cfg, s.hs.URL, "homeserver", "address") })

	if s.admin, err = s.hs.NewStaffClient(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if s.nurse, err = s.hs.NewStaffClient(ctx, "nurse"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.admin.Close)
	t.Cleanup(s.nurse.Close)
	s.admin.AutoJoinInvites()
	s.nurse.AutoJoinInvites()

	s.startBridge(ctx)
	t.Cleanup(func() {
		s.stopBridge()
		if t.Failed() {
			s.dumpLogs()
		}
	})
	return s
}

func (s *stack) startBridge(ctx context.Context) {
	t := s.t
	out, err := os.OpenFile(filepath.Join(s.dir, "bridge.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.bridge = exec.Command(carelineBin, "-c", s.configPath, "-r", s.regPath, "--ignore-unsupported-server")
	s.bridge.Dir = s.dir
	s.bridge.Stdout, s.bridge.Stderr = out, out
	if err = s.bridge.Start(); err != nil {
		t.Fatal(err)
	}
	s.bridgeDone = make(chan error, 1)
	go func() { s.bridgeDone <- s.bridge.Wait(); out.Close() }()
	for {
		// The public listener opens last, when careline's Start is done.
		resp, err := http.Get(s.publicURL + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-s.bridgeDone:
			s.dumpLogs()
			t.Fatalf("careline exited during start: %v", err)
		case <-ctx.Done():
			s.dumpLogs()
			t.Fatal("careline did not start in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *stack) stopBridge() {
	if s.bridge == nil || s.bridge.Process == nil {
		return
	}
	_ = s.bridge.Process.Signal(os.Interrupt)
	select {
	case <-s.bridgeDone:
	case <-time.After(20 * time.Second):
		_ = s.bridge.Process.Kill()
		<-s.bridgeDone
	}
	s.bridge = nil
}

func (s *stack) dumpLogs() {
	for _, name := range []string{"bridge.out", "bridge.log"} {
		data, _ := os.ReadFile(filepath.Join(s.dir, name))
		if len(data) > 20000 {
			data = data[len(data)-20000:]
		}
		s.t.Logf("---- %s (tail) ----\n%s", name, data)
	}
}

// provision calls bridgev2's provisioning API as the clinic admin.
func (s *stack) provision(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.asURL+"/_matrix/provision"+path+"?user_id="+url.QueryEscape("@admin:careline.test"), reader)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.secret)
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

func (s *stack) provisionJSON(ctx context.Context, method, path string, body any, wantStatus int) map[string]any {
	s.t.Helper()
	resp, err := s.provision(ctx, method, path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	if resp.StatusCode != wantStatus {
		s.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, wantStatus, data)
	}
	return out
}

// login connects the clinic's Twilio number through the provisioning API.
func (s *stack) login(ctx context.Context, sid, token string) (map[string]any, int) {
	s.t.Helper()
	start := s.provisionJSON(ctx, http.MethodPost, "/v3/login/start/twilio", map[string]any{}, http.StatusOK)
	path := fmt.Sprintf("/v3/login/step/%s/%s/user_input", start["login_id"], start["step_id"])
	resp, err := s.provision(ctx, http.MethodPost, path, map[string]string{
		"account_sid": sid, "auth_token": token, "phone_number": clinicNumber, "messaging_service_sid": "-",
	})
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out, resp.StatusCode
}

// createDM opens the patient's room through the provisioning API.
func (s *stack) createDM(ctx context.Context, number string) id.RoomID {
	s.t.Helper()
	out := s.provisionJSON(ctx, http.MethodPost, "/v3/create_dm/"+url.PathEscape(number), map[string]any{}, http.StatusOK)
	roomID, _ := out["dm_room_mxid"].(string)
	if roomID == "" {
		s.t.Fatalf("create_dm gave no room: %v", out)
	}
	return id.RoomID(roomID)
}

func (s *stack) smsURL() string { return s.publicURL + "/twilio/sms" }

// bridgeLog is everything careline logged so far.
func (s *stack) bridgeLog() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "bridge.log"))
	out, _ := os.ReadFile(filepath.Join(s.dir, "bridge.out"))
	return string(data) + string(out)
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func contains(haystack, needle string) bool { return strings.Contains(haystack, needle) }

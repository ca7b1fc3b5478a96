// Package localstack runs a whole careline system on one machine: Dendrite, the fake Twilio
// and the careline binary, wired together. The integration tests and `make demo` use it.
package localstack

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// The clinic's account in the fake Twilio.
const (
	AccountSID   = "AC0123456789abcdef0123456789abcdef"
	AuthToken    = "0123456789abcdef0123456789abcdef"
	ClinicNumber = "+15005550006"
	ClinicName   = "Sunrise Clinic"
	ServerName   = "careline.test"        // the default Options.ServerName
	AdminUser    = "@admin:" + ServerName // on the default server; see Stack.AdminUser
)

// Options choose where things run.
type Options struct {
	Dir         string // working directory (config, databases, logs); required
	CarelineBin string // the built careline binary; required
	DatabaseURI string // PostgreSQL URI; "" means SQLite in Dir
	TwilioAddr  string // fake Twilio listen address; default 127.0.0.1:0
	PublicAddr  string // careline's public listener; default a free 127.0.0.1 port
	CareTeam    []string
	// Permissions are added to bridge.permissions (user ID or domain → bridgev2 level).
	Permissions map[string]string
	// LogLevel is careline's log level; default "debug".
	LogLevel string
	// Network edits careline's network: config section before start.
	Network func(network map[string]any)
	// Config edits the whole config before start, after everything else.
	Config func(cfg map[string]any)
	// ServerName is the homeserver's name; default ServerName.
	ServerName string
	// Federation lets Dendrite federate with other test homeservers; ServerName must then come
	// from testenv.FederationServerName.
	Federation bool
}

// Stack is a running system.
type Stack struct {
	Dir        string
	ConfigPath string
	RegPath    string
	PublicURL  string
	ASURL      string
	Secret     string
	Twilio     *twiliofake.Server
	HS         *testenv.Homeserver
	ServerName string    // the homeserver's name (Options.ServerName)
	AdminUser  id.UserID // the clinic admin, "@admin:" + ServerName

	bin          string
	bridge       *exec.Cmd
	bridgeDone   chan error
	bridgeExited chan struct{} // closed when the current careline process has exited
}

// BuildCareline compiles cmd/careline with the goolm tag.
func BuildCareline(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "goolm", "-o", out, "github.com/careline/careline/cmd/careline")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building careline: %w\n%s", err, stderr.String())
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// SetPath sets a nested key in a decoded YAML map, creating maps on the way.
func SetPath(m map[string]any, value any, path ...string) {
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

// EditConfig rewrites careline's config file through edit.
func (s *Stack) EditConfig(edit func(map[string]any)) error {
	data, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		return err
	}
	edit(cfg)
	if data, err = yaml.Marshal(cfg); err != nil {
		return err
	}
	return os.WriteFile(s.ConfigPath, data, 0o600)
}

func (s *Stack) run(args ...string) error {
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("careline %v: %w\n%s", args, err, out)
	}
	return nil
}

// Start brings up the fake Twilio, writes careline's config and registration, starts Dendrite
// with that registration, and starts careline. Close stops everything.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	s = &Stack{Dir: opts.Dir, bin: opts.CarelineBin, Secret: randomHex(16), ServerName: opts.ServerName}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.ServerName == "" {
		s.ServerName = ServerName
	}
	s.AdminUser = id.NewUserID("admin", s.ServerName)
	s.ConfigPath = filepath.Join(s.Dir, "config.yaml")
	s.RegPath = filepath.Join(s.Dir, "registration.yaml")
	twilioAddr := opts.TwilioAddr
	if twilioAddr == "" {
		twilioAddr = "127.0.0.1:0"
	}
	if s.Twilio, err = twiliofake.StartAt(twilioAddr, twiliofake.Options{AccountSID: AccountSID, AuthToken: AuthToken, Numbers: []string{ClinicNumber}}); err != nil {
		return s, err
	}
	asAddr, err := freeAddr()
	if err != nil {
		return s, err
	}
	publicAddr := opts.PublicAddr
	if publicAddr == "" {
		if publicAddr, err = freeAddr(); err != nil {
			return s, err
		}
	}
	s.PublicURL, s.ASURL = "http://"+publicAddr, "http://"+asAddr
	asPort := asAddr[len("127.0.0.1:"):]
	dbType, dbURI := "sqlite3-fk-wal", "file:"+filepath.Join(s.Dir, "careline.db")+"?_txlock=immediate&_stmt_cache_size=256"
	if opts.DatabaseURI != "" {
		dbType, dbURI = "postgres", opts.DatabaseURI
	}
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = "debug"
	}
	careTeam := []any{}
	for _, member := range opts.CareTeam {
		careTeam = append(careTeam, member)
	}

	_ = os.Remove(s.ConfigPath)
	if err = s.run("-e", "-c", s.ConfigPath); err != nil {
		return s, err
	}
	err = s.EditConfig(func(cfg map[string]any) {
		SetPath(cfg, s.ServerName, "homeserver", "domain")
		SetPath(cfg, "http://127.0.0.1:1", "homeserver", "address") // set once Dendrite runs
		SetPath(cfg, s.ASURL, "appservice", "address")
		SetPath(cfg, "127.0.0.1", "appservice", "hostname")
		port, _ := strconv.Atoi(asPort)
		SetPath(cfg, port, "appservice", "port")
		SetPath(cfg, dbType, "database", "type")
		SetPath(cfg, dbURI, "database", "uri")
		// A query outside the transaction its goroutine holds panics instead of waiting: on
		// SQLite's one connection it would wait forever.
		SetPath(cfg, true, "database", "deadlock_detection")
		SetPath(cfg, s.Secret, "provisioning", "shared_secret")
		// careline refuses to start without end-to-end encryption in every room.
		for _, key := range []string{"allow", "default", "require"} {
			SetPath(cfg, true, "encryption", key)
		}
		// Delivered/failed statuses for staff clients that show them (bridgev2's default is off).
		SetPath(cfg, true, "matrix", "message_status_events")
		permissions := map[string]any{s.ServerName: "user", s.AdminUser.String(): "admin"}
		for who, level := range opts.Permissions {
			permissions[who] = level
		}
		SetPath(cfg, permissions, "bridge", "permissions")
		SetPath(cfg, map[string]any{
			"min_level": logLevel,
			"writers":   []any{map[string]any{"type": "file", "format": "json", "filename": filepath.Join(s.Dir, "bridge.log")}},
		}, "logging")
		network := cfg["network"].(map[string]any)
		SetPath(network, publicAddr, "http", "listen")
		SetPath(network, s.PublicURL, "http", "public_url")
		SetPath(network, s.Twilio.URL, "twilio", "api_url")
		network["clinic_name"] = ClinicName
		network["care_team"] = careTeam
		if opts.Network != nil {
			opts.Network(network)
		}
		if opts.Config != nil {
			opts.Config(cfg)
		}
	})
	if err != nil {
		return s, err
	}
	if err = s.run("-g", "-c", s.ConfigPath, "-r", s.RegPath); err != nil {
		return s, err
	}
	s.HS, err = testenv.StartHomeserver(ctx, testenv.HomeserverOptions{
		ServerName: s.ServerName, AppServiceConfigs: []string{s.RegPath}, Dir: filepath.Join(s.Dir, "dendrite"),
		Federation: opts.Federation,
	})
	if err != nil {
		return s, err
	}
	if err = s.EditConfig(func(cfg map[string]any) { SetPath(cfg, s.HS.URL, "homeserver", "address") }); err != nil {
		return s, err
	}
	return s, s.StartBridge(ctx)
}

// StartBridge starts careline and waits until its public listener answers.
func (s *Stack) StartBridge(ctx context.Context) error {
	out, err := os.OpenFile(filepath.Join(s.Dir, "bridge.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.bridge = exec.Command(s.bin, "-c", s.ConfigPath, "-r", s.RegPath, "--ignore-unsupported-server")
	s.bridge.Dir = s.Dir
	s.bridge.Stdout, s.bridge.Stderr = out, out
	if err = s.bridge.Start(); err != nil {
		out.Close()
		return err
	}
	done, exited := make(chan error, 1), make(chan struct{})
	s.bridgeDone, s.bridgeExited = done, exited
	go func() { done <- s.bridge.Wait(); close(exited); out.Close() }()
	for {
		// The public listener opens last, when careline's Start is done.
		resp, err := http.Get(s.PublicURL + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-done:
			s.bridge = nil
			return fmt.Errorf("careline exited during start (%v); see %s", err, filepath.Join(s.Dir, "bridge.out"))
		case <-ctx.Done():
			return fmt.Errorf("careline did not start in time: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// BridgeRunning reports whether careline was started and has not exited since (a crash shows
// as false while a test believes it is up).
func (s *Stack) BridgeRunning() bool {
	if s.bridge == nil || s.bridgeExited == nil {
		return false
	}
	select {
	case <-s.bridgeExited:
		return false
	default:
		return true
	}
}

// StopBridge stops careline gracefully (SIGINT), or kills it after 20 s.
func (s *Stack) StopBridge() {
	s.stopBridge(os.Interrupt)
}

// KillBridge ends careline abruptly, as a crash would.
func (s *Stack) KillBridge() {
	s.stopBridge(os.Kill)
}

func (s *Stack) stopBridge(sig os.Signal) {
	if s.bridge == nil || s.bridge.Process == nil {
		return
	}
	StopProcess(s.bridge.Process, s.bridgeDone, sig)
	s.bridge = nil
}

// StopProcess sends sig to a process and waits for done (its Wait result); a process still
// running 20 s later is killed.
func StopProcess(p *os.Process, done <-chan error, sig os.Signal) {
	_ = p.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.Kill()
		<-done
	}
}

// Close stops careline, Dendrite and the fake Twilio.
func (s *Stack) Close() {
	s.StopBridge()
	if s.HS != nil {
		_ = s.HS.Stop()
	}
	if s.Twilio != nil {
		_ = s.Twilio.Close()
	}
}

// BridgeLog is everything careline logged so far.
func (s *Stack) BridgeLog() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "bridge.log"))
	out, _ := os.ReadFile(filepath.Join(s.Dir, "bridge.out"))
	return string(data) + string(out)
}

// LoginID is the id careline gives the demo account's clinic number.
const LoginID = AccountSID + "-" + "15005550006"

// SMSURL is where Twilio posts incoming texts for the clinic number: careline names the
// login in the URL.
func (s *Stack) SMSURL() string { return s.PublicURL + "/twilio/" + LoginID + "/sms" }

// StatusURLPrefix is what every status callback URL of the clinic number starts with; the
// outbox entry's number follows.
func (s *Stack) StatusURLPrefix() string { return s.PublicURL + "/twilio/" + LoginID + "/status/" }

// Provision calls bridgev2's provisioning API as the clinic admin.
func (s *Stack) Provision(ctx context.Context, method, path string, body any) (int, map[string]any, error) {
	return s.ProvisionAs(ctx, s.AdminUser.String(), method, path, body)
}

// ProvisionAs calls bridgev2's provisioning API on behalf of userID, as an integration holding
// the shared secret would; bridgev2 applies that user's permissions.
func (s *Stack) ProvisionAs(ctx context.Context, userID, method, path string, body any) (int, map[string]any, error) {
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.ASURL+"/_matrix/provision"+path+"?user_id="+url.QueryEscape(userID), reader)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, nil
}

// Login connects the clinic's Twilio number through the provisioning API.
func (s *Stack) Login(ctx context.Context, sid, token string) (int, map[string]any, error) {
	return s.LoginAs(ctx, s.AdminUser.String(), sid, token)
}

// LoginAs connects the clinic's Twilio number through the provisioning API as userID.
func (s *Stack) LoginAs(ctx context.Context, userID, sid, token string) (int, map[string]any, error) {
	status, start, err := s.ProvisionAs(ctx, userID, http.MethodPost, "/v3/login/start/twilio", map[string]any{})
	if err != nil {
		return 0, nil, err
	} else if status != http.StatusOK {
		return status, start, nil
	}
	path := fmt.Sprintf("/v3/login/step/%s/%s/user_input", start["login_id"], start["step_id"])
	return s.ProvisionAs(ctx, userID, http.MethodPost, path, map[string]string{
		"account_sid": sid, "auth_token": token, "phone_number": ClinicNumber, "messaging_service_sid": "-",
	})
}

// CreateDM opens a patient's room through the provisioning API.
func (s *Stack) CreateDM(ctx context.Context, number string) (id.RoomID, error) {
	status, out, err := s.Provision(ctx, http.MethodPost, "/v3/create_dm/"+url.PathEscape(number), map[string]any{})
	if err != nil {
		return "", err
	}
	roomID, _ := out["dm_room_mxid"].(string)
	// 201 when the room was just created, 200 when it already existed.
	if (status != http.StatusCreated && status != http.StatusOK) || roomID == "" {
		return "", fmt.Errorf("create_dm: HTTP %d %v", status, out)
	}
	return id.RoomID(roomID), nil
}

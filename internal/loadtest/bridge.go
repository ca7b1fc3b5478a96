// Package loadtest measures a Twilio bridge under load: it runs the bridge against a stub
// homeserver (internal/stubhs) and the fake Twilio, sends inbound webhooks signed as Twilio
// signs them, and reports acknowledgement and end-to-end latency, throughput, and the bridge
// process's CPU and memory. It drives careline and, for comparison, mautrix/twilio.
package loadtest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq"                // PostgreSQL, for the peer's login row
	_ "go.mau.fi/util/dbutil/litestream" // SQLite as bridgev2 opens it ("sqlite3-fk-wal")
	"gopkg.in/yaml.v3"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/stubhs"
	"github.com/careline/careline/internal/twiliofake"
)

// sqliteDriver is the database/sql driver of bridgev2's SQLite databases (WAL, foreign keys).
const sqliteDriver = "sqlite3-fk-wal"

// Kind names the bridge under test.
type Kind string

const (
	Careline Kind = "careline"
	Peer     Kind = "mautrix-twilio" // github.com/mautrix/twilio, built outside the repository
)

// BridgeOptions choose what to run.
type BridgeOptions struct {
	Kind        Kind
	Bin         string // the bridge binary
	Dir         string // working directory: config, registration, database, logs
	DatabaseURI string // PostgreSQL URI; "" means SQLite in Dir
	LogLevel    string // default "info"
	// WebhookURL overrides where inbound webhooks go (and what they are signed for).
	WebhookURL string
	// EditConfig, when set, edits the bridge's config before it starts (after the defaults).
	EditConfig func(cfg map[string]any)
	// OnMessage receives every m.room.message the stub homeserver gets.
	OnMessage func(stubhs.Message)
}

// Bridge is a bridge process under test with its stub homeserver and fake Twilio.
type Bridge struct {
	Opts       BridgeOptions
	ConfigPath string
	RegPath    string
	ASURL      string
	PublicURL  string
	WebhookURL string
	LoginID    string
	Secret     string
	HS         *stubhs.Server
	Twilio     *twiliofake.Server

	asPort, publicPort int
	cmd                *exec.Cmd
	done               chan error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Bridge) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, b.Opts.Bin, args...)
	cmd.Dir = b.Opts.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", b.Opts.Kind, args, err, out)
	}
	return nil
}

func (b *Bridge) editConfig(edit func(map[string]any)) error {
	data, err := os.ReadFile(b.ConfigPath)
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
	return os.WriteFile(b.ConfigPath, data, 0o600)
}

// StartBridge writes the bridge's config and registration, starts the fake Twilio and the stub
// homeserver, starts the bridge and logs it in to the clinic's number. Close stops it all.
func StartBridge(ctx context.Context, opts BridgeOptions) (b *Bridge, err error) {
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if err = os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	if opts.Bin, err = filepath.Abs(opts.Bin); err != nil {
		return nil, err
	}
	b = &Bridge{Opts: opts, Secret: randomHex(16)}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.ConfigPath = filepath.Join(opts.Dir, "config.yaml")
	b.RegPath = filepath.Join(opts.Dir, "registration.yaml")
	if b.Twilio, err = twiliofake.Start(twiliofake.Options{
		AccountSID: localstack.AccountSID, AuthToken: localstack.AuthToken, Numbers: []string{localstack.ClinicNumber},
	}); err != nil {
		return b, err
	}
	if err = b.pickPorts(); err != nil {
		return b, err
	}
	dbType, dbURI := "sqlite3-fk-wal", "file:"+filepath.Join(opts.Dir, "bridge.db")+"?_txlock=immediate&_stmt_cache_size=256"
	if opts.DatabaseURI != "" {
		dbType, dbURI = "postgres", opts.DatabaseURI
	}
	_ = os.Remove(b.ConfigPath)
	if err = b.run(ctx, "-e", "-c", b.ConfigPath); err != nil {
		return b, err
	}
	err = b.editConfig(func(cfg map[string]any) {
		set := localstack.SetPath
		set(cfg, localstack.ServerName, "homeserver", "domain")
		set(cfg, "http://127.0.0.1:1", "homeserver", "address") // the stub's, once it runs
		set(cfg, "127.0.0.1", "appservice", "hostname")
		b.applyPorts(cfg)
		set(cfg, dbType, "database", "type")
		set(cfg, dbURI, "database", "uri")
		set(cfg, b.Secret, "provisioning", "shared_secret")
		// /debug/pprof on the appservice port, behind the provisioning secret.
		set(cfg, true, "provisioning", "debug_endpoints")
		set(cfg, map[string]any{localstack.ServerName: "user", localstack.AdminUser: "admin"}, "bridge", "permissions")
		// The stub homeserver does not encrypt; both bridges run unencrypted rooms.
		set(cfg, false, "encryption", "allow")
		set(cfg, false, "encryption", "default")
		set(cfg, false, "encryption", "require")
		set(cfg, map[string]any{
			"min_level": opts.LogLevel,
			"writers":   []any{map[string]any{"type": "file", "format": "json", "filename": filepath.Join(opts.Dir, "bridge.log")}},
		}, "logging")
		if opts.Kind == Careline {
			network := cfg["network"].(map[string]any)
			set(network, b.Twilio.URL, "twilio", "api_url")
			network["clinic_name"] = localstack.ClinicName
			network["care_team"] = []any{}
			// The runs' senders (50, or 1,000 for the memory figure) are patients, not a flood.
			set(network, 1_000_000, "inbound", "max_new_patients_per_hour")
		}
		if opts.EditConfig != nil {
			opts.EditConfig(cfg)
		}
	})
	if err != nil {
		return b, err
	}
	if err = b.run(ctx, "-g", "-c", b.ConfigPath, "-r", b.RegPath); err != nil {
		return b, err
	}
	var reg struct {
		ASToken         string `yaml:"as_token"`
		SenderLocalpart string `yaml:"sender_localpart"`
	}
	data, err := os.ReadFile(b.RegPath)
	if err != nil {
		return b, err
	}
	if err = yaml.Unmarshal(data, &reg); err != nil {
		return b, fmt.Errorf("reading the registration: %w", err)
	}
	if b.HS, err = stubhs.Start("", stubhs.Options{
		ServerName: localstack.ServerName, ASToken: reg.ASToken,
		BotUser: "@" + reg.SenderLocalpart + ":" + localstack.ServerName, OnMessage: opts.OnMessage,
	}); err != nil {
		return b, err
	}
	if err = b.editConfig(func(cfg map[string]any) { localstack.SetPath(cfg, b.HS.URL, "homeserver", "address") }); err != nil {
		return b, err
	}
	if err = b.Start(ctx); err != nil {
		return b, err
	}
	if err = b.login(ctx); err != nil {
		return b, err
	}
	return b, b.resolveWebhookURL(ctx)
}

// pickPorts chooses free ports for the bridge's appservice and public listeners.
func (b *Bridge) pickPorts() (err error) {
	if b.asPort, err = freePort(); err == nil {
		b.publicPort, err = freePort()
	}
	b.ASURL = fmt.Sprintf("http://127.0.0.1:%d", b.asPort)
	b.PublicURL = fmt.Sprintf("http://127.0.0.1:%d", b.publicPort)
	if b.Opts.Kind == Peer {
		// mautrix/twilio serves its webhooks on the appservice listener under /_twilio/.
		b.PublicURL = b.ASURL
	}
	return err
}

// applyPorts writes the ports pickPorts chose into the bridge's config.
func (b *Bridge) applyPorts(cfg map[string]any) {
	set := localstack.SetPath
	set(cfg, b.ASURL, "appservice", "address")
	set(cfg, b.asPort, "appservice", "port")
	switch b.Opts.Kind {
	case Careline:
		network := cfg["network"].(map[string]any)
		set(network, b.PublicURL[len("http://"):], "http", "listen")
		set(network, b.PublicURL, "http", "public_url")
	case Peer:
		set(cfg, b.ASURL, "appservice", "public_address")
	}
}

// startAttempts bounds how often Start picks new ports when another process took one of the
// bridge's between choosing it and the bridge binding it (the machine is shared).
const startAttempts = 3

// Start starts the bridge process and waits until its listeners answer. A port taken in the
// meantime by another process is replaced by a new one and the bridge started again.
func (b *Bridge) Start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		output, err := b.startOnce(ctx)
		if err == nil || attempt == startAttempts || !strings.Contains(output, "address already in use") {
			return err
		}
		if err = b.pickPorts(); err != nil {
			return err
		}
		if err = b.editConfig(b.applyPorts); err != nil {
			return err
		}
		if b.WebhookURL != "" && b.Opts.WebhookURL == "" {
			if err = b.resolveWebhookURL(ctx); err != nil {
				return err
			}
		}
	}
}

// startOnce starts the bridge process once; when it exits during start it returns what the
// process wrote, too.
func (b *Bridge) startOnce(ctx context.Context) (string, error) {
	outPath := filepath.Join(b.Opts.Dir, "bridge.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	written, _ := out.Seek(0, io.SeekEnd)
	args := []string{"-c", b.ConfigPath, "-r", b.RegPath}
	if b.Opts.Kind == Careline {
		// The stub homeserver has no end-to-end encryption, which careline otherwise requires.
		args = append(args, "--allow-unencrypted-rooms")
	}
	b.cmd = exec.Command(b.Opts.Bin, args...)
	b.cmd.Dir = b.Opts.Dir
	b.cmd.Stdout, b.cmd.Stderr = out, out
	// mautrix/twilio checks its credentials against api.twilio.com on connect; there is no
	// internet here, so make that fail at once instead of waiting for a DNS timeout.
	b.cmd.Env = append(os.Environ(), "HTTPS_PROXY=http://127.0.0.1:9")
	if err = b.cmd.Start(); err != nil {
		out.Close()
		return "", err
	}
	done := make(chan error, 1)
	b.done = done
	go func() { done <- b.cmd.Wait(); out.Close() }()
	for !b.answering() {
		select {
		case err := <-done:
			b.cmd = nil
			output := readFrom(outPath, written)
			return output, fmt.Errorf("%s exited during start (%v): %s(see %s)", b.Opts.Kind, err, lastLines(output, 3), outPath)
		case <-ctx.Done():
			return "", fmt.Errorf("%s did not start in time: %w", b.Opts.Kind, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", nil
}

// answering reports whether the bridge's listeners answer: bridgev2's liveness endpoint on the
// appservice listener (so not some other process that took the port) and the public one.
func (b *Bridge) answering() bool {
	resp, err := http.Get(b.ASURL + "/_matrix/mau/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if resp, err = http.Get(b.PublicURL + "/"); err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func readFrom(path string, offset int64) string {
	data, _ := os.ReadFile(path)
	if offset > int64(len(data)) {
		offset = 0
	}
	return string(data[offset:])
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + " "
}

// PID is the bridge process's ID.
func (b *Bridge) PID() int {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Stop stops the bridge process gracefully (SIGINT), or kills it after 20 s.
func (b *Bridge) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	localstack.StopProcess(b.cmd.Process, b.done, os.Interrupt)
	b.cmd = nil
}

// Close stops the bridge, the stub homeserver and the fake Twilio.
func (b *Bridge) Close() {
	b.Stop()
	if b.HS != nil {
		_ = b.HS.Close()
	}
	if b.Twilio != nil {
		_ = b.Twilio.Close()
	}
}

func (b *Bridge) login(ctx context.Context) error {
	switch b.Opts.Kind {
	case Careline:
		return b.loginCareline(ctx)
	case Peer:
		return b.loginPeer(ctx)
	}
	return fmt.Errorf("unknown bridge kind %q", b.Opts.Kind)
}

// provision calls bridgev2's provisioning API as the clinic admin.
func (b *Bridge) provision(ctx context.Context, method, path string, body any) (int, map[string]any, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, b.ASURL+"/_matrix/provision"+path+"?user_id="+url.QueryEscape(localstack.AdminUser), bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, nil
}

// loginCareline logs in through the provisioning API, as an admin's integration would; careline
// checks the credentials against the fake Twilio.
func (b *Bridge) loginCareline(ctx context.Context) error {
	status, start, err := b.provision(ctx, http.MethodPost, "/v3/login/start/twilio", map[string]any{})
	if err != nil {
		return err
	} else if status != http.StatusOK {
		return fmt.Errorf("login start: HTTP %d %v", status, start)
	}
	path := fmt.Sprintf("/v3/login/step/%s/%s/user_input", start["login_id"], start["step_id"])
	status, done, err := b.provision(ctx, http.MethodPost, path, map[string]string{
		"account_sid": localstack.AccountSID, "auth_token": localstack.AuthToken,
		"phone_number": localstack.ClinicNumber, "messaging_service_sid": "-",
	})
	if err != nil {
		return err
	} else if status != http.StatusOK {
		return fmt.Errorf("login: HTTP %d %v", status, done)
	}
	loginID, _ := done["user_login_id"].(string)
	if loginID == "" {
		if complete, ok := done["complete"].(map[string]any); ok {
			loginID, _ = complete["user_login_id"].(string)
		}
	}
	if loginID == "" {
		return fmt.Errorf("login finished without a login ID: %v", done)
	}
	b.LoginID = loginID
	// Then restart, as the peer is after its login, and as a clinic's bridge runs: the login
	// loaded at start. A login bridgev2 creates in the running process has no in-portal cache
	// (mautrix v0.31.0 bridgev2/userlogin.go: NewLogin leaves inPortalCache nil), so until a
	// restart every event upserts user_portal and checks the login's membership: 3 more
	// statements and a commit per message, measured, which no running clinic pays.
	b.Stop()
	return b.Start(ctx)
}

// loginPeer writes mautrix/twilio's login into its database and restarts it. Its login flow
// lists the account's numbers at api.twilio.com, which has no base-URL setting and no internet
// here; the row is what that flow would have saved (same ID shape and metadata).
func (b *Bridge) loginPeer(ctx context.Context) error {
	b.Stop()
	const phoneSID = "PN0123456789abcdef0123456789abcdef"
	b.LoginID = localstack.AccountSID + ":" + phoneSID
	meta, _ := json.Marshal(map[string]string{
		"phone": localstack.ClinicNumber, "phone_sid": phoneSID,
		"auth_token": localstack.AuthToken, "account_sid": localstack.AccountSID,
	})
	driver, uri := "postgres", b.Opts.DatabaseURI
	if uri == "" {
		driver, uri = sqliteDriver, "file:"+filepath.Join(b.Opts.Dir, "bridge.db")+"?_busy_timeout=10000"
	}
	db, err := sql.Open(driver, uri)
	if err != nil {
		return err
	}
	defer db.Close()
	q := func(query string) string {
		if driver == sqliteDriver {
			return strings.NewReplacer("$1", "?1", "$2", "?2", "$3", "?3", "$4", "?4", "$5", "?5").Replace(query)
		}
		return query
	}
	// The bridge ID bridgev2 keys its rows by (empty in mxmain before mautrix v0.26), as the
	// bridge itself wrote it at its first start.
	var bridgeID string
	if err = db.QueryRowContext(ctx, `SELECT bridge_id FROM kv_store LIMIT 1`).Scan(&bridgeID); err != nil {
		return fmt.Errorf("peer login: reading the bridge ID: %w", err)
	}
	if _, err = db.ExecContext(ctx, q(`INSERT INTO "user" (bridge_id, mxid) VALUES ($1, $2) ON CONFLICT DO NOTHING`), bridgeID, localstack.AdminUser); err != nil {
		return fmt.Errorf("peer login: %w", err)
	}
	if _, err = db.ExecContext(ctx, q(`INSERT INTO user_login (bridge_id, user_mxid, id, remote_name, metadata) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`),
		bridgeID, localstack.AdminUser, b.LoginID, localstack.ClinicNumber, string(meta)); err != nil {
		return fmt.Errorf("peer login: %w", err)
	}
	return b.Start(ctx)
}

// resolveWebhookURL finds where inbound SMS webhooks go: the override, or for careline the
// per-login URL when the running careline has it (an unsigned POST there gets 403) and the
// older shared /twilio/sms otherwise.
func (b *Bridge) resolveWebhookURL(ctx context.Context) error {
	switch {
	case b.Opts.WebhookURL != "":
		b.WebhookURL = b.Opts.WebhookURL
		return nil
	case b.Opts.Kind == Peer:
		b.WebhookURL = b.PublicURL + "/_twilio/" + b.LoginID + "/receive"
		return nil
	}
	perLogin := b.PublicURL + "/twilio/" + url.PathEscape(b.LoginID) + "/sms"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, perLogin, strings.NewReader("x=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		b.WebhookURL = perLogin
	} else {
		b.WebhookURL = b.PublicURL + "/twilio/sms"
	}
	return nil
}

// CPUProfile fetches a CPU profile of the bridge over the given time from bridgev2's debug
// endpoint (provisioning.debug_endpoints) and writes it to path.
func (b *Bridge) CPUProfile(ctx context.Context, seconds int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.ASURL+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CPU profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

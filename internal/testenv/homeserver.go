package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// HomeserverOptions configures StartHomeserver. The zero value is a usable SQLite server.
type HomeserverOptions struct {
	ServerName        string   // default "careline.test"
	AppServiceConfigs []string // appservice registration YAML files (e.g. the bridge's registration.yaml)
	Dir               string   // config, databases, keys, media and log; default a new temp dir (kept, for its log)
	Postgres          string   // PostgreSQL connection string for all components; "" = SQLite files in Dir
	// Federation serves the federation API over TLS so another test homeserver can join this
	// one's rooms; ServerName must then come from FederationServerName (see federation.go).
	Federation bool
	Log        *zerolog.Logger
}

// Homeserver is a running Dendrite bound to 127.0.0.1.
type Homeserver struct {
	URL          string // http://127.0.0.1:PORT, client-server API
	ServerName   string
	SharedSecret string // registration_shared_secret
	Dir          string
	ConfigPath   string // the edited dendrite.yaml
	LogPath      string // Dendrite's stdout and stderr, appended across restarts
	Log          zerolog.Logger

	opts   HomeserverOptions
	binDir string
	addr   string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

// StartHomeserver builds (or reuses) the Dendrite binaries, writes a config and starts Dendrite,
// returning once the client-server API answers.
func StartHomeserver(ctx context.Context, opts HomeserverOptions) (*Homeserver, error) {
	if opts.ServerName == "" {
		opts.ServerName = "careline.test"
	}
	log := zerolog.Nop()
	if opts.Log != nil {
		log = opts.Log.With().Str("component", "dendrite").Logger()
	}
	bins, err := DendriteBinaries(ctx)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "careline-dendrite-"); err != nil {
			return nil, err
		}
	} else if err = os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	hs := &Homeserver{
		ServerName:   opts.ServerName,
		SharedSecret: randomHex(24),
		Dir:          dir,
		ConfigPath:   filepath.Join(dir, "dendrite.yaml"),
		LogPath:      filepath.Join(dir, "dendrite.log"),
		Log:          log,
		opts:         opts,
		binDir:       bins,
	}
	if err = hs.writeConfig(ctx); err != nil {
		return nil, err
	}
	// Picking a free port and handing it to Dendrite races with other processes; retry the
	// rare loser with a fresh port instead of failing the test.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		hs.addr = fmt.Sprintf("127.0.0.1:%d", port)
		hs.URL = "http://" + hs.addr
		err = hs.start(ctx)
		if err == nil {
			return hs, nil
		}
		if attempt >= 2 || !strings.Contains(hs.LogTail(20), "address already in use") {
			return nil, err
		}
	}
}

// StartTestHomeserver starts a homeserver in t.TempDir(), stops it when the test ends and prints
// the tail of Dendrite's log if the test failed.
func StartTestHomeserver(t testing.TB, opts HomeserverOptions) *Homeserver {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // includes a cold build
	defer cancel()
	hs, err := StartHomeserver(ctx, opts)
	if err != nil {
		t.Fatalf("starting dendrite: %v", err)
	}
	t.Cleanup(func() {
		_ = hs.Stop()
		if t.Failed() {
			t.Logf("tail of %s:\n%s", hs.LogPath, hs.LogTail(60))
		}
	})
	return hs
}

func (hs *Homeserver) start(ctx context.Context) error {
	logFile, err := os.OpenFile(hs.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// HTTPS is only served when -tls-cert is given (federation), so nothing else listens.
	args := append([]string{"-config", hs.ConfigPath, "-http-bind-address", hs.addr}, hs.federationArgs()...)
	cmd := exec.Command(filepath.Join(hs.binDir, "dendrite"), args...)
	cmd.Dir = hs.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	killWithParent(cmd)
	if err = cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting dendrite: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	hs.mu.Lock()
	hs.cmd, hs.exited, hs.logFile = cmd, exited, logFile
	hs.mu.Unlock()

	started := time.Now()
	if err = hs.waitReady(ctx, exited); err == nil {
		err = hs.waitFederationReady(ctx, exited)
	}
	if err != nil {
		_ = hs.Stop()
		return fmt.Errorf("%w; tail of %s:\n%s", err, hs.LogPath, hs.LogTail(30))
	}
	hs.Log.Debug().Str("url", hs.URL).Dur("startup", time.Since(started)).Msg("Dendrite is up")
	return nil
}

func (hs *Homeserver) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/_matrix/client/versions", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("dendrite exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("dendrite did not answer on %s: %w", hs.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM and waits for Dendrite to exit (SIGKILL after 15 s). Safe to call twice.
func (hs *Homeserver) Stop() error {
	hs.mu.Lock()
	cmd, exited, logFile := hs.cmd, hs.exited, hs.logFile
	hs.cmd, hs.exited, hs.logFile = nil, nil, nil
	hs.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer logFile.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = cmd.Process.Kill()
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		hs.Log.Warn().Msg("Dendrite ignored SIGTERM, killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// Restart stops Dendrite and starts it again on the same port with the same data, for tests of
// homeserver outages.
func (hs *Homeserver) Restart(ctx context.Context) error {
	if err := hs.Stop(); err != nil {
		return err
	}
	return hs.start(ctx)
}

// Running reports whether the Dendrite process is alive.
func (hs *Homeserver) Running() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.exited == nil {
		return false
	}
	select {
	case <-hs.exited:
		return false
	default:
		return true
	}
}

// LogTail returns the last n lines of Dendrite's log, for test failure output.
func (hs *Homeserver) LogTail(n int) string {
	data, err := os.ReadFile(hs.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

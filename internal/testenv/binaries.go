package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// DendriteVersion is the Dendrite release pinned by the dendrite/ module next to this file.
const DendriteVersion = "v0.15.2"

// dendriteCommands are the binaries DendriteBinaries builds, by output name.
var dendriteCommands = []string{"dendrite", "generate-config", "generate-keys"}

var (
	binMu  sync.Mutex
	binDir string // cached result for this process
)

// DendriteBinaries returns a directory holding the dendrite, generate-config and generate-keys
// binaries, building them from the pinned dendrite/ module on first use.
//
// The cache directory is $CARELINE_CACHE if it already holds the binaries, else
// $CARELINE_CACHE/dendrite-VERSION, else os.UserCacheDir()/careline/dendrite-VERSION. A cold
// build takes one to two minutes; a file lock plus an atomic rename keep parallel test packages
// from building twice or seeing a half-written directory.
func DendriteBinaries(ctx context.Context) (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir != "" {
		return binDir, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	if !hasBinaries(dir) {
		// A cold build downloads Dendrite's modules and compiles it: minutes on a fresh, busy
		// machine. It must not inherit the deadline of whichever test happened to ask first
		// (often a minute), or a fresh CI run fails before any test starts.
		buildCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
		defer cancel()
		if err = buildBinaries(buildCtx, dir); err != nil {
			return "", err
		}
	}
	binDir = dir
	return dir, nil
}

// buildTimeout bounds a cold Dendrite build, downloads included.
const buildTimeout = 15 * time.Minute

func cacheDir() (string, error) {
	sub := "dendrite-" + DendriteVersion
	if base := os.Getenv("CARELINE_CACHE"); base != "" {
		if hasBinaries(base) {
			return filepath.Abs(base)
		}
		return filepath.Abs(filepath.Join(base, sub))
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set CARELINE_CACHE): %w", err)
	}
	return filepath.Join(base, "careline", sub), nil
}

func hasBinaries(dir string) bool {
	for _, name := range dendriteCommands {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// dendriteModuleDir finds the dendrite/ module: next to this source file when the source tree
// is available (tests, go run), else under the main module found through `go env GOMOD`.
func dendriteModuleDir(ctx context.Context) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "dendrite")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err == nil {
		gomod := strings.TrimSpace(string(out))
		if gomod != "" && gomod != os.DevNull {
			dir := filepath.Join(filepath.Dir(gomod), "internal", "testenv", "dendrite")
			if _, err = os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, nil
			}
		}
	}
	return "", errors.New("cannot find the internal/testenv/dendrite module (run from inside the careline source tree)")
}

func buildBinaries(ctx context.Context, dir string) error {
	modDir, err := dendriteModuleDir(ctx)
	if err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err = os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(parent, filepath.Base(dir)+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if hasBinaries(dir) { // another process built them while we waited for the lock
		return nil
	}
	tmp, err := os.MkdirTemp(parent, ".build-"+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	args := []string{"build", "-trimpath", "-o", tmp + string(filepath.Separator)}
	for _, name := range dendriteCommands {
		args = append(args, "github.com/element-hq/dendrite/cmd/"+name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = modDir
	// The pinned module must build on its own terms: no workspace, no flags meant for careline
	// (such as -tags goolm), and go.sum is authoritative.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building dendrite %s in %s: %w\n%s", DendriteVersion, modDir, err, out)
	}
	if !hasBinaries(tmp) {
		return fmt.Errorf("go build in %s did not produce %v", modDir, dendriteCommands)
	}
	_ = os.RemoveAll(dir) // a partial directory left by hand; a complete one returned above
	if err = os.Rename(tmp, dir); err != nil {
		if hasBinaries(dir) {
			return nil
		}
		return fmt.Errorf("installing dendrite binaries: %w", err)
	}
	return nil
}

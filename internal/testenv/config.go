package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// writeConfig generates dendrite.yaml and the signing key in hs.Dir, then edits the generated
// config for a private, fast, single-host test server.
func (hs *Homeserver) writeConfig(ctx context.Context) error {
	genArgs := []string{"-server", hs.ServerName, "-dir", hs.Dir}
	if hs.opts.Postgres != "" {
		genArgs = append(genArgs, "-db", hs.opts.Postgres)
	}
	raw, err := runTool(ctx, filepath.Join(hs.binDir, "generate-config"), hs.Dir, genArgs...)
	if err != nil {
		return err
	}
	keyPath := filepath.Join(hs.Dir, "matrix_key.pem")
	if _, err = os.Stat(keyPath); os.IsNotExist(err) {
		if _, err = runTool(ctx, filepath.Join(hs.binDir, "generate-keys"), hs.Dir, "-private-key", keyPath); err != nil {
			return err
		}
	}

	var cfg map[string]any
	if err = yaml.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("parsing generated dendrite config: %w", err)
	}
	asConfigs := make([]any, 0, len(hs.opts.AppServiceConfigs))
	for _, p := range hs.opts.AppServiceConfigs {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		asConfigs = append(asConfigs, abs)
	}
	edits := []struct {
		path  []string
		value any
	}{
		{[]string{"global", "private_key"}, keyPath},
		{[]string{"global", "disable_federation"}, true},
		// Stop Dendrite from reaching out to the internet (matrix.org, vector.im).
		{[]string{"global", "trusted_third_party_id_servers"}, []any{}},
		{[]string{"federation_api", "key_perspectives"}, []any{}},
		{[]string{"global", "presence", "enable_inbound"}, false},
		{[]string{"global", "presence", "enable_outbound"}, false},
		{[]string{"global", "report_stats", "enabled"}, false},
		// A server-notices room per user would only add noise to the staff clients' room lists.
		{[]string{"global", "server_notices", "enabled"}, false},
		{[]string{"global", "jetstream", "storage_path"}, filepath.Join(hs.Dir, "jetstream")},
		{[]string{"global", "cache", "max_size_estimated"}, 64 << 20},
		{[]string{"client_api", "registration_disabled"}, true},
		{[]string{"client_api", "guests_disabled"}, true},
		{[]string{"client_api", "registration_shared_secret"}, hs.SharedSecret},
		{[]string{"client_api", "rate_limiting", "enabled"}, false},
		{[]string{"app_service_api", "config_files"}, asConfigs},
		{[]string{"app_service_api", "disable_tls_validation"}, true},
		{[]string{"media_api", "base_path"}, filepath.Join(hs.Dir, "media")},
		{[]string{"sync_api", "search", "enabled"}, false},
		// Bcrypt's minimum cost: logins in tests should take milliseconds, not 100 ms each.
		{[]string{"user_api", "bcrypt_cost"}, 4},
		{[]string{"tracing", "enabled"}, false},
		// Dendrite always logs info and above to stdout, which StartHomeserver captures in
		// LogPath; extra hooks would only duplicate it.
		{[]string{"logging"}, []any{}},
	}
	for _, e := range edits {
		if err = setPath(cfg, e.path, e.value); err != nil {
			return err
		}
	}
	if hs.opts.Federation {
		if err = hs.enableFederation(cfg); err != nil {
			return err
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(hs.ConfigPath, out, 0o600)
}

// setPath sets cfg[a][b]...= value, creating intermediate maps.
func setPath(cfg map[string]any, path []string, value any) error {
	m := cfg
	for i, key := range path[:len(path)-1] {
		next, ok := m[key]
		if !ok || next == nil {
			child := map[string]any{}
			m[key] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("dendrite config: %v is not a map", path[:i+1])
		}
		m = child
	}
	m[path[len(path)-1]] = value
	return nil
}

func runTool(ctx context.Context, bin, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		// No args in the message: they may hold a PostgreSQL password.
		return nil, fmt.Errorf("%s: %w\n%s", filepath.Base(bin), err, stderr)
	}
	return out, nil
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/careline/careline/apitoken"
)

func runToken(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runAPIToken(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestAPITokenCommand: create prints a token that authenticates, list shows it without the
// token, revoke ends it; each change is in the audit trail.
func TestAPITokenCommand(t *testing.T) {
	auditBackends(t, func(t *testing.T, b auditBackend) {
		l, db := seed(t, b, 1)
		cfg := writeConfig(t, b, testIdentityKey)
		code, out, errOut := runToken("create", "ehr", "-c", cfg)
		tok := strings.TrimSpace(out)
		if code != 0 || !strings.HasPrefix(tok, apitoken.Prefix) {
			t.Fatalf("create: %d %q %q", code, out, errOut)
		}
		tokens := apitoken.New(db, apitoken.KeyFromSecret(testIdentityKey), zerolog.Nop())
		if name, err := tokens.Authenticate(context.Background(), tok); err != nil || name != "ehr" {
			t.Fatalf("the printed token does not authenticate: %q %v", name, err)
		}
		if code, _, errOut = runToken("create", "-c", cfg, "ehr"); code != 1 || !strings.Contains(errOut, "exists") {
			t.Fatalf("second create: %d %q", code, errOut)
		}
		code, out, _ = runToken("list", "-c", cfg)
		if code != 0 || !strings.Contains(out, "ehr") || !strings.Contains(out, "active") || strings.Contains(out, tok) {
			t.Fatalf("list: %d %q", code, out)
		}
		if code, out, errOut = runToken("revoke", "ehr", "-c", cfg); code != 0 {
			t.Fatalf("revoke: %d %q %q", code, out, errOut)
		}
		if _, err := tokens.Authenticate(context.Background(), tok); err == nil {
			t.Fatal("a revoked token still authenticates")
		}
		if code, _, errOut = runToken("revoke", "ehr", "-c", cfg); code != 1 || !strings.Contains(errOut, "no active token") {
			t.Fatalf("revoking twice: %d %q", code, errOut)
		}
		if code, _, _ = runToken("create", "bad name", "-c", cfg); code != 2 {
			t.Fatalf("a bad name: exit %d", code)
		}
		report, err := l.Verify(context.Background())
		if err != nil || !report.Intact() || report.Entries != 3 {
			t.Fatalf("audit after create and revoke: %+v %v", report, err)
		}
	})
}

package apitoken

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func forEachDB(t *testing.T, fn func(t *testing.T, s *Store)) {
	dbtest.ForEach(t, "careline_apitoken", func(t *testing.T, db *dbutil.Database) {
		s := New(db, KeyFromSecret(strings.Repeat("k", 40)), zerolog.Nop())
		if err := s.Upgrade(context.Background()); err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
}

func TestCreateAuthenticateRevoke(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		tok, err := s.Create(ctx, "ehr", "cli:test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, Prefix) || len(tok) != len(Prefix)+43 {
			t.Fatalf("token %q has the wrong shape", tok)
		}
		if name, err := s.Authenticate(ctx, tok); err != nil || name != "ehr" {
			t.Fatalf("Authenticate = %q, %v", name, err)
		}
		// One character changed (the last one is "A" once in 64 tokens).
		wrong := tok[:len(tok)-1] + "A"
		if tok[len(tok)-1] == 'A' {
			wrong = tok[:len(tok)-1] + "B"
		}
		if _, err := s.Authenticate(ctx, wrong); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a wrong token: %v", err)
		}
		if _, err := s.Create(ctx, "ehr", "cli:test"); !errors.Is(err, ErrExists) {
			t.Fatalf("second token with the same name: %v", err)
		}
		if err := s.Revoke(ctx, "ehr"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrInvalid) {
			t.Fatalf("revoked token accepted: %v", err)
		}
		if err := s.Revoke(ctx, "ehr"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() || list[0].LastUsedAt.IsZero() {
			t.Fatalf("List = %+v, %v", list, err)
		}
		// The name is free again after revocation; the old token stays dead.
		tok2, err := s.Create(ctx, "ehr", "cli:test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrInvalid) {
			t.Fatal("the revoked token works again after its name was reused")
		}
		if name, err := s.Authenticate(ctx, tok2); err != nil || name != "ehr" {
			t.Fatalf("new token: %q, %v", name, err)
		}
	})
}

func TestOnlyKeyedHashStored(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		tok, err := s.Create(ctx, "ehr", "cli:test")
		if err != nil {
			t.Fatal(err)
		}
		var stored []byte
		if err = s.db.QueryRow(ctx, `SELECT hash FROM careline_api_token`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, []byte(tok)) || !bytes.Equal(stored, s.hash(tok)) {
			t.Fatal("the stored hash is not the keyed hash of the token")
		}
		// A row planted with someone else's key opens nothing.
		other := New(s.db, KeyFromSecret(strings.Repeat("x", 40)), zerolog.Nop())
		if _, err := other.Authenticate(ctx, tok); !errors.Is(err, ErrInvalid) {
			t.Fatal("a store with another key accepted the token")
		}
	})
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", "-x", "a b", strings.Repeat("a", 65), "ä"} {
		if CheckName(bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	for _, good := range []string{"ehr", "Epic-prod.1", "a_b"} {
		if err := CheckName(good); err != nil {
			t.Errorf("name %q refused: %v", good, err)
		}
	}
}

// Package apitoken keeps the bearer tokens integrations (an EHR, a scheduling system) use to
// call careline's API. A token is shown once when it is created; only its keyed hash is stored.
package apitoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/token"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Prefix starts every token, so one pasted into the wrong place (a log, a ticket) is
// recognisable and secret scanners can find it.
const Prefix = "careline_"

// namePattern keeps names short and printable: they appear in the audit trail and in rooms.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Errors callers tell apart.
var (
	ErrExists   = errors.New("a token with that name exists")
	ErrNotFound = errors.New("no token with that name")
	ErrInvalid  = errors.New("the token is missing, wrong or revoked")
)

// Token is a stored token's record, never the token itself.
type Token struct {
	Name       string
	CreatedAt  time.Time
	CreatedBy  string
	RevokedAt  time.Time
	LastUsedAt time.Time
}

// Store is the token table.
type Store struct {
	db  *dbutil.Database
	key []byte
	now func() time.Time
}

// KeyFromSecret derives the hashing key from network.privacy.identity_key; the label keeps it
// independent of every other key derived from that secret.
func KeyFromSecret(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("careline api token v1"))
	return m.Sum(nil)
}

// New returns the token store in db (own version table careline_apitoken_version); call Upgrade.
func New(db *dbutil.Database, key []byte, log zerolog.Logger) *Store {
	if len(key) < 32 {
		panic("apitoken: key must be at least 32 bytes")
	}
	return &Store{
		db:  db.Child("careline_apitoken_version", table, dbutil.ZeroLogger(log)),
		key: key,
		now: time.Now,
	}
}

// Upgrade creates or migrates the token table.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

func (s *Store) hash(tok string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tok))
	return m.Sum(nil)
}

// CheckName says what is wrong with a token name, or nil.
func CheckName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("token name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Create makes a token called name and returns it; it is never retrievable again. A revoked
// token's name can be used again.
func (s *Store) Create(ctx context.Context, name, createdBy string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	tok := Prefix + token.New()
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		var revoked sql.NullInt64
		err := s.db.QueryRow(ctx, `SELECT revoked_at FROM careline_api_token WHERE name=$1`, name).Scan(&revoked)
		switch {
		case err == nil && !revoked.Valid:
			return ErrExists
		case err == nil:
			if _, err = s.db.Exec(ctx, `DELETE FROM careline_api_token WHERE name=$1`, name); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = s.db.Exec(ctx, `INSERT INTO careline_api_token (name, hash, created_at, created_by) VALUES ($1, $2, $3, $4)`,
			name, s.hash(tok), s.now().UnixMilli(), createdBy)
		return err
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Revoke ends a token at once.
func (s *Store) Revoke(ctx context.Context, name string) error {
	res, err := s.db.Exec(ctx, `UPDATE careline_api_token SET revoked_at=$2 WHERE name=$1 AND revoked_at IS NULL`, name, s.now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// List returns every token's record, active and revoked, by name.
func (s *Store) List(ctx context.Context) ([]*Token, error) {
	rows, err := s.db.Query(ctx, `SELECT name, created_at, created_by, revoked_at, last_used_at FROM careline_api_token ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		var t Token
		var created int64
		var revoked, used sql.NullInt64
		if err = rows.Scan(&t.Name, &created, &t.CreatedBy, &revoked, &used); err != nil {
			return nil, err
		}
		t.CreatedAt = time.UnixMilli(created)
		if revoked.Valid {
			t.RevokedAt = time.UnixMilli(revoked.Int64)
		}
		if used.Valid {
			t.LastUsedAt = time.UnixMilli(used.Int64)
		}
		out = append(out, &t)
	}
	return out, rows.Err()
}

// Authenticate returns the name of the active token tok, or ErrInvalid. The lookup is by keyed
// hash, so its timing says nothing about how close a guess was.
func (s *Store) Authenticate(ctx context.Context, tok string) (string, error) {
	if !strings.HasPrefix(tok, Prefix) || len(tok) > 128 {
		return "", ErrInvalid
	}
	var name string
	err := s.db.QueryRow(ctx, `SELECT name FROM careline_api_token WHERE hash=$1 AND revoked_at IS NULL`, s.hash(tok)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrInvalid
	} else if err != nil {
		return "", err
	}
	// Last use helps an admin find tokens nobody uses; once a minute is enough.
	now := s.now().UnixMilli()
	_, _ = s.db.Exec(ctx, `UPDATE careline_api_token SET last_used_at=$2 WHERE name=$1 AND (last_used_at IS NULL OR last_used_at < $3)`,
		name, now, now-60_000)
	return name, nil
}

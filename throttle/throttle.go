// Package throttle lets an automatic text go at most once per window per key (a patient's
// after-hours reply, a caller's missed-call text), durably and atomically: two webhooks at
// once cannot both win.
package throttle

import (
	"context"
	"embed"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Store is the throttle's section of the bridge database.
type Store struct{ db *dbutil.Database }

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_throttle_version", table, dbutil.ZeroLogger(log))}
}

// Upgrade creates or migrates the table.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// Take reports whether key may act at now: true when it never did, or last did at least every
// ago, in which case now is recorded. Call it in the transaction that does the act, so a
// rolled-back act does not use up the window.
func (s *Store) Take(ctx context.Context, key string, now time.Time, every time.Duration) (bool, error) {
	rows, err := s.db.Query(ctx, `
		INSERT INTO careline_throttle (key, last_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET last_at=excluded.last_at WHERE careline_throttle.last_at <= $3
		RETURNING key`, key, now.UnixMilli(), now.Add(-every).UnixMilli())
	if err != nil {
		return false, err
	}
	defer rows.Close()
	taken := rows.Next()
	return taken, rows.Err()
}

// Forget removes a key, e.g. when the patient it names is deleted.
func (s *Store) Forget(ctx context.Context, key string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM careline_throttle WHERE key=$1`, key)
	return err
}

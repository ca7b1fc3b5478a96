// Package floodgate bounds how many unknown numbers may open a new patient room by texting a
// clinic number in a window: each new room invites and pings the whole care team, so a flood
// of first texts (a misdirected bulk text, or someone abusing the number) would bury the staff.
// The gate never drops a text: a text it does not admit waits, stored, until a place frees up.
package floodgate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// keepFor is how long a record is kept after its place is free again, so AdmittedAt can answer
// for as long as a let-through text may still be retried (network.twilio.give_up_after, at most 10h).
const keepFor = 24 * time.Hour

// Gate is the record of new rooms opened per clinic login, in the bridge database.
type Gate struct {
	db *dbutil.Database
	// mu makes count-then-insert atomic within the process (one careline per database), so
	// parallel inbox workers cannot together admit more than the limit.
	mu sync.Mutex
}

// New returns the gate on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, log zerolog.Logger) *Gate {
	return &Gate{db: db.Child("careline_floodgate_version", table, dbutil.ZeroLogger(log))}
}

// Upgrade creates or migrates the table.
func (g *Gate) Upgrade(ctx context.Context) error { return g.db.Upgrade(ctx) }

// Admit reports whether patient may open a new room on login at now, when at most limit may
// per window. A patient admitted before stays admitted (a retried text does not use a second
// place). When the answer is no, retryAt is when the oldest place in the window frees up.
func (g *Gate) Admit(ctx context.Context, login, patient string, limit int, window time.Duration, now time.Time) (ok bool, retryAt time.Time, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	since := now.Add(-window).UnixMilli()
	err = g.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		var opened int64
		err := g.db.QueryRow(ctx, `SELECT opened_at FROM careline_new_room WHERE login_id=$1 AND patient_id=$2`, login, patient).Scan(&opened)
		if err == nil {
			ok = true
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Places older than the window are free again; their rows are kept a while longer for
		// AdmittedAt, then dropped.
		if _, err = g.db.Exec(ctx, `DELETE FROM careline_new_room WHERE login_id=$1 AND opened_at <= $2`,
			login, now.Add(-max(window, keepFor)).UnixMilli()); err != nil {
			return err
		}
		var count int
		var oldest sql.NullInt64
		if err = g.db.QueryRow(ctx, `SELECT COUNT(*), MIN(opened_at) FROM careline_new_room WHERE login_id=$1 AND opened_at > $2`,
			login, since).Scan(&count, &oldest); err != nil {
			return err
		}
		if count >= limit {
			retryAt = time.UnixMilli(oldest.Int64).Add(window)
			return nil
		}
		ok = true
		_, err = g.db.Exec(ctx, `INSERT INTO careline_new_room (login_id, patient_id, opened_at) VALUES ($1, $2, $3)`, login, patient, now.UnixMilli())
		return err
	})
	if err != nil {
		return false, time.Time{}, err
	}
	return ok, retryAt, nil
}

// AdmittedAt returns when patient was admitted on login, or zero if not (or no longer) recorded.
func (g *Gate) AdmittedAt(ctx context.Context, login, patient string) (time.Time, error) {
	var opened int64
	err := g.db.QueryRow(ctx, `SELECT opened_at FROM careline_new_room WHERE login_id=$1 AND patient_id=$2`, login, patient).Scan(&opened)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(opened), nil
}

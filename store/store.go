// Package store keeps careline's own records next to bridgev2's: patients, the durable inbox
// of Twilio webhooks, and each conversation's messages, with patient data sealed at rest.
package store

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Store is careline's section of the bridge database.
type Store struct {
	DB   *dbutil.Database
	Seal *atrest.Keyring
	now  func() time.Time

	inboundGroup inboundGroup // webhooks sharing commits (SaveInbound)
}

// New returns careline's section of db; call Upgrade before use.
func New(db *dbutil.Database, seal *atrest.Keyring, log zerolog.Logger) *Store {
	return &Store{
		DB:   db.Child("careline_version", table, dbutil.ZeroLogger(log)),
		Seal: seal,
		now:  time.Now,
	}
}

// Upgrade creates or migrates careline's tables.
func (s *Store) Upgrade(ctx context.Context) error {
	return s.DB.Upgrade(ctx)
}

func (s *Store) nowMilli() int64 { return s.now().UnixMilli() }

func millis(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v)
}

// CommitWithoutDiskWait lets the transaction in ctx commit without waiting for PostgreSQL to
// flush it to disk (synchronous_commit off, for this transaction only); SQLite (WAL,
// synchronous=NORMAL) is left as it is. Use it only for commits whose loss in a crash of
// PostgreSQL itself is redone by the inbox: the rows stay pending until the finisher's
// commit, and the webhook's own commit, which Twilio's answer waits for, stays synchronous.
// A crash of careline loses nothing either way: PostgreSQL still writes the commit.
func (s *Store) CommitWithoutDiskWait(ctx context.Context) error {
	if s.DB.Dialect != dbutil.Postgres {
		return nil
	}
	if _, err := s.DB.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
		return fmt.Errorf("letting the commit skip the disk wait: %w", err)
	}
	return nil
}

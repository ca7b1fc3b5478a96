package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/util/dbutil"
	flag "maunium.net/go/mauflag"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"

	"github.com/careline/careline/bridge"
)

// allowUnencryptedRooms is for benchmarks against a homeserver that has no end-to-end
// encryption (internal/loadtest's stub); never for patients.
var allowUnencryptedRooms = flag.Make().LongKey("allow-unencrypted-rooms").
	Usage("Run with end-to-end encryption off (benchmarks only; never with patients).").Default("false").Bool()

// minIdleConns is the idle pool careline keeps at least: bridgev2's default of one idle
// connection makes PostgreSQL reconnect for nearly every query under load (measured 130 vs
// 464 inbound messages/s at 1 and 5 idle connections). On PostgreSQL careline keeps its whole
// pool idle (bridgeSettings).
const minIdleConns = 5

// minOpenConnsPostgres is the PostgreSQL pool careline keeps at least: its webhook handlers,
// inbox workers and the finisher share it, and bridgev2's default of 5 queues them
// behind each other's commits (measured 138 vs 215 inbound messages/s at 5 and 20).
const minOpenConnsPostgres = 20

// bridgeSettings checks bridgev2's sections of the config for what careline needs. Where
// careline cannot work otherwise it sets the value itself and says so in notes; where the
// setting is the admin's decision (encryption, who may write to patients) a wrong value is an
// error naming the key, and careline does not start.
func bridgeSettings(cfg *bridgeconfig.Config, allowUnencrypted bool) (notes []string, err error) {
	var errs []error
	if !allowUnencrypted {
		var off []string
		for _, s := range []struct {
			key string
			on  bool
		}{{"encryption.allow", cfg.Encryption.Allow}, {"encryption.default", cfg.Encryption.Default}, {"encryption.require", cfg.Encryption.Require}} {
			if !s.on {
				off = append(off, s.key)
			}
		}
		if len(off) > 0 {
			errs = append(errs, fmt.Errorf("%s must be true: careline keeps every patient's room end-to-end encrypted", strings.Join(off, ", ")))
		}
	}
	if everyone, ok := cfg.Bridge.Permissions["*"]; ok && everyone != nil && everyone.SendEvents {
		errs = append(errs, fmt.Errorf(`bridge.permissions gives "*" (everyone) the level %s: anyone a staff member invites into a patient's room could then text the patient in the clinic's name. Remove the "*" entry (or set it to block) and list your clinic's server and partner clinics instead`, bridge.LevelName(everyone)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// The durable inbox marks a message done only when bridgev2 has handled its event, which
	// bridgev2 reports only when a portal's events are handled as they arrive.
	if cfg.Bridge.PortalEventBuffer != 0 {
		notes = append(notes, fmt.Sprintf("bridge.portal_event_buffer is %d in the config; careline uses 0 (its inbox needs each event handled before it counts a message as bridged)", cfg.Bridge.PortalEventBuffer))
		cfg.Bridge.PortalEventBuffer = 0
	}
	if isPostgres(cfg.Database.Type) && cfg.Database.MaxOpenConns > 0 && cfg.Database.MaxOpenConns < minOpenConnsPostgres {
		notes = append(notes, fmt.Sprintf("database.max_open_conns is %d in the config; careline keeps %d open to PostgreSQL (its webhooks and inbox workers share the pool)", cfg.Database.MaxOpenConns, minOpenConnsPostgres))
		cfg.Database.MaxOpenConns = minOpenConnsPostgres
	}
	if sqlite := cfg.Database.Type == "sqlite3-fk-wal" || cfg.Database.Type == "litestream"; sqlite && cfg.Database.MaxOpenConns != 1 {
		notes = append(notes, fmt.Sprintf("database.max_open_conns is %d in the config; careline uses 1 connection to SQLite (SQLite has one writer, and each connection's cache is emptied by the others' commits: measured 1.8 vs 3.5 ms CPU per inbound message at 1 and 5)", cfg.Database.MaxOpenConns))
		cfg.Database.MaxOpenConns = 1
	}
	want := minIdleConns
	if isPostgres(cfg.Database.Type) {
		// Every connection database/sql lets go of beyond the idle pool is closed, and the
		// next burst opens a new one: a new PostgreSQL backend, forked, with cold caches.
		want = max(cfg.Database.MaxOpenConns, minOpenConnsPostgres)
	}
	if cfg.Database.MaxOpenConns > 0 { // 0 is no limit
		want = min(want, cfg.Database.MaxOpenConns)
	}
	if cfg.Database.MaxIdleConns < want {
		notes = append(notes, fmt.Sprintf("database.max_idle_conns is %d in the config; careline keeps %d idle connections (fewer closes connections after each burst and opens new ones for the next: measured 344 vs 447 inbound messages/s on PostgreSQL with 5 and 20)", cfg.Database.MaxIdleConns, want))
		cfg.Database.MaxIdleConns = want
	}
	if cfg.Database.MaxOpenConns > 0 && cfg.Database.MaxIdleConns > cfg.Database.MaxOpenConns {
		cfg.Database.MaxIdleConns = cfg.Database.MaxOpenConns // what database/sql would do anyway
	}
	// mxmain has opened the database before PostInit, so this one can only be advised.
	if sqlite := cfg.Database.Type == "sqlite3-fk-wal" || cfg.Database.Type == "litestream"; sqlite && !strings.Contains(cfg.Database.URI, "_stmt_cache_size=") {
		notes = append(notes, "database.uri has no _stmt_cache_size: add _stmt_cache_size=256 to keep prepared statements per connection (417 vs 580 inbound messages/s measured without and with it)")
	}
	return notes, nil
}

// walAutocheckpointPages is how large (in 4 KiB pages) careline lets SQLite's WAL grow before
// the committing connection copies it back into the database. SQLite's default of 1,000 pages
// made careline's one connection checkpoint every ~30 inbound messages (it writes ~23 pages a
// message), each time rereading the WAL, rewriting the same hot pages and waiting for two
// fsyncs while every webhook waits for the connection. 10,000: 9× fewer fsyncs, 5× fewer
// reads, 7% less CPU per message (BENCHMARKS.md, "SQLite settings"). With the checkpointer
// (walCheckpointer) copying the WAL on a connection of its own, this is the backstop that lets
// the WAL start over under sustained load.
const walAutocheckpointPages = 10_000

// raiseWALAutocheckpoint sets walAutocheckpointPages on SQLite's connection. It is a setting
// of the connection, not of the file, and go-sqlite3 has no DSN parameter for it, so it is made
// once the pool is sized to careline's one connection, which database/sql then keeps: every
// query runs on it. Should database/sql open another (after a broken connection, or with
// max_conn_lifetime set), that one checkpoints at SQLite's default: slower, as durable.
// Durability is unchanged: synchronous stays NORMAL, so a commit survives a crash of careline,
// and after a power loss the commits the kernel has not yet written back (≤30 s) may be lost
// either way; under load a checkpoint's fsync comes sooner (every ~30 messages before, ~300 now).
// Only SQLite's default is raised: litestream's driver sets 0, as litestream checkpoints.
func raiseWALAutocheckpoint(ctx context.Context, db *dbutil.Database) (raised bool, err error) {
	if db.Dialect != dbutil.SQLite {
		return false, nil
	}
	var pages int
	if err = db.RawDB.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		return false, err
	}
	if pages != 1000 { // not SQLite's default: someone chose it
		return false, nil
	}
	if _, err = db.RawDB.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpointPages)); err != nil {
		return false, err
	}
	return true, nil
}

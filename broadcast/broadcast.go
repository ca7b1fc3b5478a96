// Package broadcast sends one template to many patients: it records every target first, then
// hands them one by one to a delivery function at a steady pace, and can resume after a crash
// without sending anyone twice. Staff's `broadcast` command and the integration API's
// POST /api/v1/broadcasts are two faces of the same engine.
package broadcast

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/token"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Target states. Everything but Pending is final.
const (
	Pending       = "pending"
	Sent          = "sent"           // handed to the outbox
	OptedOut      = "opted_out"      // the patient replied STOP
	InvalidNumber = "invalid_number" // not a number a text can go to
	Duplicate     = "duplicate"      // the same patient listed twice
	MissingValue  = "missing_value"  // the template needs a value this patient lacks
	Failed        = "failed"         // could not be sent for another reason
)

// Broadcast is one send of a template to many.
type Broadcast struct {
	ID         string
	LoginID    string
	Template   string
	Values     map[string]string // given for everyone; each patient's name is added per target
	CreatedBy  string            // Matrix ID, or "api:" + token name
	Origin     string            // "command" or "api"
	ReportRoom string            // where progress and the report go (the bot room), if any
	CreatedAt  time.Time
	DoneAt     time.Time
}

// Target is one number of a broadcast.
type Target struct {
	BroadcastID string
	Position    int
	Number      string // as given (sealed at rest)
	PatientID   string
	State       string
	Detail      string // in words, no content
	MessageID   string
}

// Counts is a broadcast's report.
type Counts struct {
	Total   int
	Sent    int
	Skipped map[string]int // by state: opted_out, invalid_number, duplicate, missing_value
	Failed  int
	Pending int
	Done    bool
}

// Store is the broadcasts' section of the bridge database.
type Store struct {
	db   *dbutil.Database
	seal *atrest.Keyring
}

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, seal *atrest.Keyring, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_broadcast_version", table, dbutil.ZeroLogger(log)), seal: seal}
}

// Upgrade creates or migrates the tables.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

func valuesContext(id string) string { return "broadcast-values:" + id }
func numberContext(id string, position int) string {
	return "broadcast-number:" + id + ":" + strconv.Itoa(position)
}

// Create records a broadcast and all its targets in one transaction, so it either exists in
// full or not at all. It fills in the broadcast's ID (unless set) and creation time.
func (s *Store) Create(ctx context.Context, b *Broadcast, numbers []string) error {
	if len(numbers) == 0 {
		return errors.New("a broadcast needs at least one number")
	}
	if b.ID == "" { // the API names its broadcasts before creating them (idempotent retries)
		b.ID = "b" + token.New()[:15]
	}
	b.CreatedAt = time.Now()
	values, err := json.Marshal(b.Values)
	if err != nil {
		return err
	}
	var room any
	if b.ReportRoom != "" {
		room = b.ReportRoom
	}
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `
			INSERT INTO careline_broadcast (id, login_id, template, values_sealed, created_by, origin, report_room, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			b.ID, b.LoginID, b.Template, s.seal.Seal(values, valuesContext(b.ID)), b.CreatedBy, b.Origin, room, b.CreatedAt.UnixMilli())
		if err != nil {
			return err
		}
		for i, number := range numbers {
			_, err = s.db.Exec(ctx, `
				INSERT INTO careline_broadcast_target (broadcast_id, position, number_sealed, state) VALUES ($1, $2, $3, $4)`,
				b.ID, i, s.seal.SealString(number, numberContext(b.ID, i)), Pending)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

const broadcastColumns = `SELECT id, login_id, template, values_sealed, created_by, origin, report_room, created_at, done_at FROM careline_broadcast`

func (s *Store) scanBroadcast(row dbutil.Scannable) (*Broadcast, error) {
	var (
		b       Broadcast
		sealed  []byte
		room    sql.NullString
		created int64
		done    sql.NullInt64
	)
	if err := row.Scan(&b.ID, &b.LoginID, &b.Template, &sealed, &b.CreatedBy, &b.Origin, &room, &created, &done); err != nil {
		return nil, err
	}
	values, err := s.seal.Open(sealed, valuesContext(b.ID))
	if err != nil {
		return nil, err
	}
	if err = json.Unmarshal(values, &b.Values); err != nil {
		return nil, err
	}
	b.ReportRoom, b.CreatedAt = room.String, time.UnixMilli(created)
	if done.Valid {
		b.DoneAt = time.UnixMilli(done.Int64)
	}
	return &b, nil
}

// Get returns a broadcast, or nil.
func (s *Store) Get(ctx context.Context, id string) (*Broadcast, error) {
	b, err := s.scanBroadcast(s.db.QueryRow(ctx, broadcastColumns+` WHERE id=$1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// Unfinished lists broadcasts not yet done, oldest first (to resume at start).
func (s *Store) Unfinished(ctx context.Context) ([]*Broadcast, error) {
	rows, err := s.db.Query(ctx, broadcastColumns+` WHERE done_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	return dbutil.NewRowIterWithError(rows, s.scanBroadcast, nil).AsList()
}

func (s *Store) nextPending(ctx context.Context, id string) (*Target, error) {
	var (
		t      Target
		sealed []byte
	)
	err := s.db.QueryRow(ctx, `
		SELECT position, number_sealed FROM careline_broadcast_target
		WHERE broadcast_id=$1 AND state=$2 ORDER BY position LIMIT 1`, id, Pending).Scan(&t.Position, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	t.BroadcastID, t.State = id, Pending
	t.Number, err = s.seal.OpenString(sealed, numberContext(id, t.Position))
	return &t, err
}

// finish records a target's outcome if it is still pending; it reports whether it was.
func (s *Store) finish(ctx context.Context, t *Target) (bool, error) {
	var patient, message any
	if t.PatientID != "" {
		patient = t.PatientID
	}
	if t.MessageID != "" {
		message = t.MessageID
	}
	res, err := s.db.Exec(ctx, `
		UPDATE careline_broadcast_target SET state=$3, detail=$4, patient_id=$5, message_id=$6, done_at=$7
		WHERE broadcast_id=$1 AND position=$2 AND state='pending'`,
		t.BroadcastID, t.Position, t.State, t.Detail, patient, message, time.Now().UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SentTo reports whether a patient already got this broadcast (listed twice under two
// spellings of one number). Call it from a delivery, inside its transaction.
func (s *Store) SentTo(ctx context.Context, id, patientID string) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM careline_broadcast_target WHERE broadcast_id=$1 AND patient_id=$2 AND state=$3`,
		id, patientID, Sent).Scan(&n)
	return n > 0, err
}

func (s *Store) markDone(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE careline_broadcast SET done_at=$2 WHERE id=$1 AND done_at IS NULL`, id, time.Now().UnixMilli())
	return err
}

// Counts reports where a broadcast stands.
func (s *Store) Counts(ctx context.Context, id string) (Counts, error) {
	c := Counts{Skipped: map[string]int{}}
	var done sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT done_at FROM careline_broadcast WHERE id=$1`, id).Scan(&done); err != nil {
		return c, err
	}
	c.Done = done.Valid
	rows, err := s.db.Query(ctx, `SELECT state, COUNT(*) FROM careline_broadcast_target WHERE broadcast_id=$1 GROUP BY state`, id)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err = rows.Scan(&state, &n); err != nil {
			return c, err
		}
		c.Total += n
		switch state {
		case Sent:
			c.Sent = n
		case Pending:
			c.Pending = n
		case Failed:
			c.Failed = n
		default:
			c.Skipped[state] = n
		}
	}
	return c, rows.Err()
}

// Targets lists a broadcast's targets in order (numbers opened), for a detailed report.
func (s *Store) Targets(ctx context.Context, id string) ([]*Target, error) {
	rows, err := s.db.Query(ctx, `
		SELECT position, number_sealed, COALESCE(patient_id, ''), state, COALESCE(detail, ''), COALESCE(message_id, '')
		FROM careline_broadcast_target WHERE broadcast_id=$1 ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	return dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (*Target, error) {
		t := Target{BroadcastID: id}
		var sealed []byte
		if err := row.Scan(&t.Position, &sealed, &t.PatientID, &t.State, &t.Detail, &t.MessageID); err != nil {
			return nil, err
		}
		var err error
		t.Number, err = s.seal.OpenString(sealed, numberContext(id, t.Position))
		return &t, err
	}, nil).AsList()
}

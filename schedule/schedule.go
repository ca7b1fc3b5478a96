// Package schedule keeps sends for later: durable rows with a due time, and a runner that hands
// each to a delivery function once, within a minute of its time, even across crashes. It knows
// nothing of Twilio or Matrix: staff's `schedule` command and appointment reminders are both
// "a payload for a patient at a time".
package schedule

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbset"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// States of a scheduled send.
const (
	Pending   = "pending"
	Sent      = "sent"      // handed to the outbox
	Refused   = "refused"   // not sent by rule at its time (opted out, no longer allowed)
	Failed    = "failed"    // could not be sent (e.g. a template value went missing)
	Cancelled = "cancelled" // withdrawn by staff or by its owner (a moved appointment)
)

// Purposes tell apart who scheduled a send.
const (
	PurposeStaff = "staff" // a staff member's `schedule` command
)

// Payload is what to send: a text, or a template with its values (rendered when it goes, so
// a name recorded in between is used). Plain asks for plain SMS where the rules allow it.
type Payload struct {
	Text     string            `json:"text,omitempty"`
	Template string            `json:"template,omitempty"`
	Values   map[string]string `json:"values,omitempty"`
	Plain    bool              `json:"plain,omitempty"`
	From     string            `json:"from,omitempty"` // how the patient sees the sender
}

// Send is one scheduled send.
type Send struct {
	ID        string // short token staff type to cancel it
	LoginID   string
	PatientID string
	Due       time.Time
	Payload   Payload
	Purpose   string
	Ref       string // the owner's reference, e.g. an appointment id
	CreatedBy string // Matrix ID, or an integration's name
	CreatedAt time.Time
	State     string
	DoneAt    time.Time
	Outcome   string // in words, when done
}

// Store is the scheduled sends' section of the bridge database.
type Store struct {
	db   *dbutil.Database
	seal *atrest.Keyring
}

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, seal *atrest.Keyring, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_schedule_version", table, dbutil.ZeroLogger(log)), seal: seal}
}

// Upgrade creates or migrates the tables.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// payloadContext names the patient as well as the send, so a send moved to another patient's
// row does not open (and is not sent to them).
func payloadContext(patientID, id string) string {
	return atrest.Context("scheduled-send", patientID, id)
}

// idAlphabet leaves out characters read alike (0/o, 1/l/i) so staff can type an ID they see.
const idAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// idLength gives 31^6 ≈ 887 million IDs; a collision is retried.
const idLength = 6

func newID() string {
	b := make([]byte, idLength)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// Add stores a pending send and fills in its ID, state and creation time.
func (s *Store) Add(ctx context.Context, send *Send) error {
	if send.Purpose == "" {
		send.Purpose = PurposeStaff
	}
	payload, err := json.Marshal(send.Payload)
	if err != nil {
		return err
	}
	send.State, send.CreatedAt = Pending, time.Now()
	var ref any
	if send.Ref != "" {
		ref = send.Ref
	}
	for attempt := 0; ; attempt++ {
		send.ID = newID()
		res, err := s.db.Exec(ctx, `
			INSERT INTO careline_scheduled_send (id, login_id, patient_id, due_at, payload_sealed, purpose, ref, created_by, created_at, state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
			send.ID, send.LoginID, send.PatientID, send.Due.UnixMilli(), s.seal.Seal(payload, payloadContext(send.PatientID, send.ID)),
			send.Purpose, ref, send.CreatedBy, send.CreatedAt.UnixMilli(), Pending)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		} else if attempt == 5 {
			return errors.New("could not find a free scheduled-send ID")
		}
	}
}

const columns = `SELECT id, login_id, patient_id, due_at, payload_sealed, purpose, ref, created_by, created_at, state, done_at, outcome
	FROM careline_scheduled_send`

func (s *Store) scan(row dbutil.Scannable) (*Send, error) {
	var (
		send     Send
		sealed   []byte
		due, at  int64
		ref, out sql.NullString
		done     sql.NullInt64
	)
	err := row.Scan(&send.ID, &send.LoginID, &send.PatientID, &due, &sealed, &send.Purpose, &ref, &send.CreatedBy, &at, &send.State, &done, &out)
	if err != nil {
		return nil, err
	}
	payload, err := s.seal.Open(sealed, payloadContext(send.PatientID, send.ID))
	if err != nil {
		return nil, err
	}
	if err = json.Unmarshal(payload, &send.Payload); err != nil {
		return nil, err
	}
	send.Due, send.CreatedAt, send.Ref, send.Outcome = time.UnixMilli(due), time.UnixMilli(at), ref.String, out.String
	if done.Valid {
		send.DoneAt = time.UnixMilli(done.Int64)
	}
	return &send, nil
}

func (s *Store) list(ctx context.Context, query string, args ...any) ([]*Send, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return dbutil.NewRowIterWithError(rows, s.scan, nil).AsList()
}

// Get returns one send, or nil.
func (s *Store) Get(ctx context.Context, id string) (*Send, error) {
	send, err := s.scan(s.db.QueryRow(ctx, columns+` WHERE id=$1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return send, err
}

// PendingFor lists a patient's pending sends, soonest first.
func (s *Store) PendingFor(ctx context.Context, patientID string) ([]*Send, error) {
	return s.list(ctx, columns+` WHERE patient_id=$1 AND state=$2 ORDER BY due_at, id`, patientID, Pending)
}

// PendingByRef lists the pending sends an owner scheduled under one reference.
func (s *Store) PendingByRef(ctx context.Context, purpose, ref string) ([]*Send, error) {
	return s.list(ctx, columns+` WHERE purpose=$1 AND ref=$2 AND state=$3 ORDER BY due_at, id`, purpose, ref, Pending)
}

// Due lists pending sends whose time has come, oldest first, at most limit.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]*Send, error) {
	return s.list(ctx, columns+` WHERE state=$1 AND due_at<=$2 ORDER BY due_at, id LIMIT $3`, Pending, now.UnixMilli(), limit)
}

// NextDue is when the soonest pending send is due (zero if none).
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	var at sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT MIN(due_at) FROM careline_scheduled_send WHERE state=$1`, Pending).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(at.Int64), nil
}

// Cancel withdraws a pending send of a patient (patientID "" for any patient). It reports
// false when there is no such pending send: unknown, another patient's, or already gone.
func (s *Store) Cancel(ctx context.Context, id, patientID, outcome string) (bool, error) {
	res, err := s.db.Exec(ctx, `
		UPDATE careline_scheduled_send SET state=$3, done_at=$4, outcome=$5
		WHERE id=$1 AND state=$2 AND ($6='' OR patient_id=$6)`,
		id, Pending, Cancelled, time.Now().UnixMilli(), outcome, patientID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Finish records what happened to a pending send; it reports false if it was no longer
// pending (cancelled meanwhile). Call it in the transaction that handed the text on.
func (s *Store) Finish(ctx context.Context, id, state, outcome string) (bool, error) {
	res, err := s.db.Exec(ctx, `
		UPDATE careline_scheduled_send SET state=$3, done_at=$4, outcome=$5 WHERE id=$1 AND state=$2`,
		id, Pending, state, time.Now().UnixMilli(), outcome)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Unreminded tells which of the patients have pending sends staff were not reminded of yet,
// in one indexed query for all of them: almost always none, so MarkReminded (and its write)
// runs only for those.
func (s *Store) Unreminded(ctx context.Context, patientIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(patientIDs) == 0 {
		return out, nil
	}
	in, ids := dbset.In(s.db.Dialect, 2, patientIDs)
	rows, err := s.db.Query(ctx, `SELECT DISTINCT patient_id FROM careline_scheduled_send
		WHERE patient_id `+in+` AND state=$1 AND reminded_at IS NULL`, append([]any{Pending}, ids...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err = rows.Scan(&p); err != nil {
			return nil, err
		}
		out[p] = true
	}
	return out, rows.Err()
}

// MarkReminded records that staff were reminded of a patient's pending sends, and reports
// which of them had not been reminded of before. It runs for every incoming text, so it
// reads first, without a transaction: almost always there is nothing pending, and a write
// transaction would take SQLite's write lock for each text.
func (s *Store) MarkReminded(ctx context.Context, patientID string) ([]*Send, error) {
	fresh, err := s.list(ctx, columns+` WHERE patient_id=$1 AND state=$2 AND reminded_at IS NULL ORDER BY due_at, id`, patientID, Pending)
	if err != nil || len(fresh) == 0 {
		return nil, err
	}
	var marked []*Send
	for _, send := range fresh {
		res, err := s.db.Exec(ctx, `UPDATE careline_scheduled_send SET reminded_at=$2 WHERE id=$1 AND reminded_at IS NULL`,
			send.ID, time.Now().UnixMilli())
		if err != nil {
			return marked, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			marked = append(marked, send)
		}
	}
	return marked, nil
}

// InTransaction runs fn in a transaction of the database the store is on, so a delivery and
// its Finish commit together.
func (s *Store) InTransaction(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.db.DoTxn(ctx, nil, fn)
}

// Package teaminbox keeps the care team's shared inbox state per patient conversation: who
// owns it, whether it is closed, since when the patient has waited for a reply, and when staff
// first answered each wait. It holds Matrix IDs and times only, never names, numbers or words.
package teaminbox

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbset"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Store is the team inbox's section of the bridge database.
type Store struct{ db *dbutil.Database }

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_teaminbox_version", table, dbutil.ZeroLogger(log))}
}

// Upgrade creates or migrates the tables.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// Conversation is one patient conversation's inbox state. Zero times mean "not set".
type Conversation struct {
	PatientID     string
	RoomID        string
	Assignee      string // a Matrix ID, or "" when nobody owns it
	ClosedAt      time.Time
	WaitingSince  time.Time // the patient's oldest unanswered message
	LastPatientAt time.Time
	NudgedAt      time.Time
	StatusEventID string
}

// Open reports whether the conversation is open.
func (c *Conversation) Open() bool { return c.ClosedAt.IsZero() }

// Waiting reports whether the conversation is open and awaits a staff reply.
func (c *Conversation) Waiting() bool { return c.Open() && !c.WaitingSince.IsZero() }

const columns = `patient_id, room_id, assignee, closed_at, waiting_since, last_patient_at, nudged_at, status_event_id`

func scan(row dbutil.Scannable) (*Conversation, error) {
	var c Conversation
	var closed, waiting, last, nudged sql.NullInt64
	err := row.Scan(&c.PatientID, &c.RoomID, &c.Assignee, &closed, &waiting, &last, &nudged, &c.StatusEventID)
	if err != nil {
		return nil, err
	}
	c.ClosedAt, c.WaitingSince, c.LastPatientAt, c.NudgedAt = fromMilli(closed), fromMilli(waiting), fromMilli(last), fromMilli(nudged)
	return &c, nil
}

func fromMilli(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}

// Get returns a conversation's state; a conversation never seen is open, unassigned and not waiting.
func (s *Store) Get(ctx context.Context, patientID string) (*Conversation, error) {
	c, err := scan(s.db.QueryRow(ctx, `SELECT `+columns+` FROM careline_teaminbox_conversation WHERE patient_id=$1`, patientID))
	if errors.Is(err, sql.ErrNoRows) {
		return &Conversation{PatientID: patientID}, nil
	}
	return c, err
}

// ensure creates the conversation's row if it has none.
func (s *Store) ensure(ctx context.Context, patientID, roomID string) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO careline_teaminbox_conversation (patient_id, room_id) VALUES ($1, $2)
		ON CONFLICT (patient_id) DO UPDATE SET room_id=excluded.room_id
		WHERE careline_teaminbox_conversation.room_id <> excluded.room_id`, patientID, roomID)
	return err
}

// PatientWrote records a message from the patient at the given time: the conversation awaits a
// reply (since its oldest unanswered message) and a closed one opens again. It returns the state
// after the change and whether it reopened.
func (s *Store) PatientWrote(ctx context.Context, patientID, roomID string, at time.Time) (conv *Conversation, reopened bool, err error) {
	wrote, err := s.PatientsWrote(ctx, []Message{{PatientID: patientID, RoomID: roomID, At: at}})
	if err != nil {
		return nil, false, err
	}
	return wrote[0].Conv, wrote[0].Reopened, nil
}

// Message is a patient's message, for PatientsWrote.
type Message struct {
	PatientID string
	RoomID    string
	At        time.Time
}

// Wrote is what a patient's messages changed in their conversation.
type Wrote struct {
	Conv     *Conversation // the state after the change
	Reopened bool          // it was closed
	// SpacesChanged: the spaces it belongs in may differ now (a new wait, a new room).
	SpacesChanged bool
}

// PatientsWrote records messages from patients, as PatientWrote does for one, in the caller's
// transaction if ctx holds one: one read of all their conversations and one upsert for all of
// them, however many messages. It returns one Wrote per patient, in the order of their first
// message.
func (s *Store) PatientsWrote(ctx context.Context, msgs []Message) ([]Wrote, error) {
	var order []string
	spans := make(map[string]*wroteSpan, len(msgs))
	for _, m := range msgs {
		at := m.At.UnixMilli()
		if sp := spans[m.PatientID]; sp != nil {
			sp.roomID, sp.first, sp.last = m.RoomID, min(sp.first, at), max(sp.last, at)
			continue
		}
		order = append(order, m.PatientID)
		spans[m.PatientID] = &wroteSpan{roomID: m.RoomID, first: at, last: at}
	}
	if len(order) == 0 {
		return nil, nil
	}
	out := make([]Wrote, len(order))
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		// Read before the write, to know what changed. On PostgreSQL the rows are locked, so a
		// staff member's close cannot slip in between (SQLite writers are serialised anyway).
		lock := ""
		if s.db.Dialect == dbutil.Postgres {
			lock = " FOR UPDATE"
		}
		in, args := dbset.In(s.db.Dialect, 1, order)
		before, err := s.list(ctx, `SELECT `+columns+` FROM careline_teaminbox_conversation WHERE patient_id `+in+lock, args...)
		if err != nil {
			return err
		}
		rows, args := s.wroteRows(order, spans)
		// A new wait starts from the first of the messages, unless the patient waits already.
		after, err := s.list(ctx, `
			INSERT INTO careline_teaminbox_conversation AS c (patient_id, room_id, waiting_since, last_patient_at)
			`+rows+`
			ON CONFLICT (patient_id) DO UPDATE SET room_id=excluded.room_id, closed_at=NULL, last_patient_at=excluded.last_patient_at,
			    waiting_since=CASE WHEN c.waiting_since IS NULL OR c.closed_at IS NOT NULL THEN excluded.waiting_since ELSE c.waiting_since END,
			    nudged_at=CASE WHEN c.waiting_since IS NULL OR c.closed_at IS NOT NULL THEN NULL ELSE c.nudged_at END
			RETURNING `+columns, args...)
		if err != nil {
			return err
		}
		was := make(map[string]*Conversation, len(before))
		for _, conv := range before {
			was[conv.PatientID] = conv
		}
		now := make(map[string]*Conversation, len(after))
		for _, conv := range after {
			now[conv.PatientID] = conv
		}
		for i, p := range order {
			conv, old := now[p], was[p]
			if conv == nil {
				return fmt.Errorf("the team inbox did not return the conversation of %s", p)
			}
			out[i] = Wrote{Conv: conv, Reopened: old != nil && !old.Open(),
				SpacesChanged: old == nil || !old.Waiting() || old.RoomID != conv.RoomID}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording patients' messages in the team inbox: %w", err)
	}
	return out, nil
}

// wroteSpan is a patient's messages in one PatientsWrote: the room, the first and the last.
type wroteSpan struct {
	roomID      string
	first, last int64
}

// wroteRows is the rows PatientsWrote upserts (patient, room, first and last message), as
// the VALUES or SELECT of the INSERT, with its arguments. On PostgreSQL the same statement for
// any number of patients (see package dbset).
func (s *Store) wroteRows(order []string, spans map[string]*wroteSpan) (string, []any) {
	if s.db.Dialect == dbutil.Postgres {
		rooms, first, last := make([]string, len(order)), make([]int64, len(order)), make([]int64, len(order))
		for i, p := range order {
			rooms[i], first[i], last[i] = spans[p].roomID, spans[p].first, spans[p].last
		}
		return `SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])`, []any{order, rooms, first, last}
	}
	var values strings.Builder
	args := make([]any, 0, 4*len(order))
	values.WriteString("VALUES ")
	for i, p := range order {
		if i > 0 {
			values.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&values, "($%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4)
		sp := spans[p]
		args = append(args, p, sp.roomID, sp.first, sp.last)
	}
	return values.String(), args
}

// StaffReplied records a reply to the patient by staff: the wait, if any, ends, and its first
// response time is kept for the report. It reports whether a wait ended.
func (s *Store) StaffReplied(ctx context.Context, patientID, roomID, staff string, at time.Time) (answered bool, err error) {
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.ensure(ctx, patientID, roomID); err != nil {
			return err
		}
		conv, err := s.Get(ctx, patientID)
		if err != nil || conv.WaitingSince.IsZero() {
			return err
		}
		answered = true
		if _, err = s.db.Exec(ctx, `
			INSERT INTO careline_teaminbox_response (patient_id, waited_from, answered_at, responder) VALUES ($1, $2, $3, $4)
			ON CONFLICT (patient_id, waited_from) DO NOTHING`,
			patientID, conv.WaitingSince.UnixMilli(), at.UnixMilli(), staff); err != nil {
			return err
		}
		_, err = s.db.Exec(ctx, `UPDATE careline_teaminbox_conversation SET waiting_since=NULL, nudged_at=NULL WHERE patient_id=$1`, patientID)
		return err
	})
	return answered, err
}

// Assign sets the conversation's owner ("" for nobody) and returns the previous one.
func (s *Store) Assign(ctx context.Context, patientID, roomID, assignee string) (previous string, err error) {
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.ensure(ctx, patientID, roomID); err != nil {
			return err
		}
		conv, err := s.Get(ctx, patientID)
		if err != nil {
			return err
		}
		previous = conv.Assignee
		_, err = s.db.Exec(ctx, `UPDATE careline_teaminbox_conversation SET assignee=$2 WHERE patient_id=$1`, patientID, assignee)
		return err
	})
	return previous, err
}

// Close closes the conversation: it no longer awaits a reply. It reports false when it was
// already closed.
func (s *Store) Close(ctx context.Context, patientID, roomID string, at time.Time) (bool, error) {
	if err := s.ensure(ctx, patientID, roomID); err != nil {
		return false, err
	}
	res, err := s.db.Exec(ctx, `
		UPDATE careline_teaminbox_conversation SET closed_at=$2, waiting_since=NULL, nudged_at=NULL
		WHERE patient_id=$1 AND closed_at IS NULL`, patientID, at.UnixMilli())
	return changed(res, err)
}

// Reopen opens a closed conversation. It reports false when it was already open.
func (s *Store) Reopen(ctx context.Context, patientID, roomID string) (bool, error) {
	if err := s.ensure(ctx, patientID, roomID); err != nil {
		return false, err
	}
	res, err := s.db.Exec(ctx, `UPDATE careline_teaminbox_conversation SET closed_at=NULL WHERE patient_id=$1 AND closed_at IS NOT NULL`, patientID)
	return changed(res, err)
}

func changed(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// SetStatusEvent remembers the pinned notice that shows the conversation's owner and state.
func (s *Store) SetStatusEvent(ctx context.Context, patientID, eventID string) error {
	_, err := s.db.Exec(ctx, `UPDATE careline_teaminbox_conversation SET status_event_id=$2 WHERE patient_id=$1`, patientID, eventID)
	return err
}

// Waiting lists the open conversations awaiting a staff reply, the longest waiting first.
func (s *Store) Waiting(ctx context.Context) ([]*Conversation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM careline_teaminbox_conversation
		WHERE waiting_since IS NOT NULL AND closed_at IS NULL ORDER BY waiting_since, patient_id`)
}

// AssignedTo lists the open conversations owned by a staff member.
func (s *Store) AssignedTo(ctx context.Context, assignee string) ([]*Conversation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM careline_teaminbox_conversation
		WHERE assignee=$1 AND closed_at IS NULL ORDER BY patient_id`, assignee)
}

func (s *Store) list(ctx context.Context, query string, args ...any) ([]*Conversation, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Conversation
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// FirstInThread records a staff-only thread and reports whether it is new, so the thread is
// told once that nothing in it goes to the patient.
func (s *Store) FirstInThread(ctx context.Context, roomID, rootEventID string) (bool, error) {
	res, err := s.db.Exec(ctx, `INSERT INTO careline_teaminbox_thread (room_id, root_event_id) VALUES ($1, $2)
		ON CONFLICT (room_id, root_event_id) DO NOTHING`, roomID, rootEventID)
	return changed(res, err)
}

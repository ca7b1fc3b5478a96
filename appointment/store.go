// Package appointment keeps the appointments an EHR sends over FHIR, schedules their reminders
// at the configured offsets before the start, and records the patient's answer (confirm or
// cancel). It neither renders nor sends texts: the bridge does that through Sender.
package appointment

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Reminder states.
const (
	Scheduled = "scheduled"
	Sent      = "sent"
	Withdrawn = "withdrawn"
	Skipped   = "skipped"
	NotSent   = "not_sent"
)

// Answers, as FHIR participant statuses.
const (
	Accepted = "accepted"
	Declined = "declined"
)

// Appointment is an appointment as careline holds it.
type Appointment struct {
	ID          string
	PatientID   string
	Status      string
	Start       time.Time
	Resource    []byte // the FHIR resource as the EHR sent it
	Answer      string // "", Accepted or Declined
	AnsweredAt  time.Time
	AnsweredVia string // "sms" or "portal"
	DeletedAt   time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Reminders   []Reminder
}

// Reminder is one reminder of an appointment.
type Reminder struct {
	Offset    time.Duration
	DueAt     time.Time
	State     string
	SentAt    time.Time
	MessageID string
	Note      string
}

// Store is the appointment tables.
type Store struct {
	db   *dbutil.Database
	seal *atrest.Keyring
	// Now is the store's clock; tests replace it.
	Now func() time.Time
}

// New returns the store in db (own version table careline_appointment_version); call Upgrade.
func New(db *dbutil.Database, seal *atrest.Keyring, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_appointment_version", table, dbutil.ZeroLogger(log)), seal: seal, Now: time.Now}
}

// Upgrade creates or migrates the tables.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// resourceContext names the patient as well as the appointment, so an appointment moved to
// another patient's row does not open (nor remind them).
func resourceContext(patientID, id string) string {
	return atrest.Context("appointment", patientID, id)
}

func referenceContext(reference string) string { return "patient-reference:" + reference }

// Cancelled reports whether the appointment no longer takes place (deleted, or a cancelling status).
func (a *Appointment) Cancelled() bool {
	return !a.DeletedAt.IsZero() || a.Status == "cancelled" || a.Status == "noshow" || a.Status == "entered-in-error"
}

// Put creates or replaces an appointment and (re)schedules its reminders at offsets before
// its start; it returns whether it was created. A reminder whose time has passed is skipped,
// a cancelled appointment's reminders are withdrawn, and a moved start moves them (and clears
// an earlier answer, which was for the old time).
func (s *Store) Put(ctx context.Context, a *Appointment, offsets []time.Duration) (created bool, err error) {
	now := s.Now()
	err = s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		old, err := s.get(ctx, a.ID)
		if err != nil {
			return err
		}
		created = old == nil || !old.DeletedAt.IsZero()
		sealed := s.seal.Seal(a.Resource, resourceContext(a.PatientID, a.ID))
		if created {
			if old != nil {
				if _, err = s.db.Exec(ctx, `DELETE FROM careline_appointment WHERE id=$1`, a.ID); err != nil {
					return err
				}
			}
			a.CreatedAt = now
			_, err = s.db.Exec(ctx, `
				INSERT INTO careline_appointment (id, patient_id, status, start_at, resource_sealed, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6)`, a.ID, a.PatientID, a.Status, a.Start.UnixMilli(), sealed, now.UnixMilli())
			old = nil
		} else {
			a.CreatedAt = old.CreatedAt
			a.Answer, a.AnsweredAt, a.AnsweredVia = old.Answer, old.AnsweredAt, old.AnsweredVia
			if !old.Start.Equal(a.Start) || old.PatientID != a.PatientID {
				a.Answer, a.AnsweredAt, a.AnsweredVia = "", time.Time{}, ""
			}
			_, err = s.db.Exec(ctx, `
				UPDATE careline_appointment SET patient_id=$2, status=$3, start_at=$4, resource_sealed=$5, updated_at=$6,
					answer=$7, answered_at=$8, answered_via=$9 WHERE id=$1`,
				a.ID, a.PatientID, a.Status, a.Start.UnixMilli(), sealed, now.UnixMilli(),
				nullString(a.Answer), nullTime(a.AnsweredAt), nullString(a.AnsweredVia))
		}
		if err != nil {
			return err
		}
		a.UpdatedAt = now
		return s.schedule(ctx, a, old, offsets, now)
	})
	return created, err
}

func (s *Store) schedule(ctx context.Context, a *Appointment, old *Appointment, offsets []time.Duration, now time.Time) error {
	existing := map[time.Duration]Reminder{}
	if old != nil {
		for _, r := range old.Reminders {
			existing[r.Offset] = r
		}
	}
	moved := old != nil && (!old.Start.Equal(a.Start) || old.PatientID != a.PatientID)
	for offset, r := range existing {
		if !slices.Contains(offsets, offset) && r.State == Scheduled {
			// The clinic changed its offsets: a reminder no longer configured is withdrawn.
			if err := s.setState(ctx, a.ID, offset, Withdrawn, "offset no longer configured"); err != nil {
				return err
			}
		}
	}
	for _, offset := range offsets {
		due := a.Start.Add(-offset)
		state := Scheduled
		note := ""
		switch {
		case a.Cancelled():
			state, note = Withdrawn, "appointment "+a.Status
		case !due.After(now):
			state, note = Skipped, "its time had passed when the appointment arrived"
		}
		r, had := existing[offset]
		if !had {
			_, err := s.db.Exec(ctx, `INSERT INTO careline_reminder (appointment_id, offset_ms, due_at, state, note) VALUES ($1, $2, $3, $4, $5)`,
				a.ID, offset.Milliseconds(), due.UnixMilli(), state, nullString(note))
			if err != nil {
				return err
			}
			continue
		}
		if keep(r, state, moved) {
			continue
		}
		_, err := s.db.Exec(ctx, `UPDATE careline_reminder SET due_at=$3, state=$4, note=$5, sent_at=NULL, message_id=NULL
			WHERE appointment_id=$1 AND offset_ms=$2`, a.ID, offset.Milliseconds(), due.UnixMilli(), state, nullString(note))
		if err != nil {
			return err
		}
	}
	reminders, err := s.reminders(ctx, a.ID)
	a.Reminders = reminders
	return err
}

// keep reports whether an existing reminder stays as it is on an update.
func keep(r Reminder, want string, moved bool) bool {
	switch r.State {
	case Sent:
		// A sent reminder stands unless the appointment moved and the new time is ahead.
		return !(moved && want == Scheduled)
	case NotSent, Skipped:
		return !moved
	}
	return false // scheduled or withdrawn: follow the appointment
}

// Delete cancels an appointment: it stays (GET answers 410) and its pending reminders are
// withdrawn. It returns false when there was no such appointment.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	found := false
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		now := s.Now().UnixMilli()
		res, err := s.db.Exec(ctx, `UPDATE careline_appointment SET deleted_at=$2, updated_at=$2 WHERE id=$1 AND deleted_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if found = n > 0; !found {
			return nil
		}
		_, err = s.db.Exec(ctx, `UPDATE careline_reminder SET state=$2, note='appointment deleted' WHERE appointment_id=$1 AND state=$3`, id, Withdrawn, Scheduled)
		return err
	})
	return found, err
}

// Get returns an appointment with its reminders, or nil.
func (s *Store) Get(ctx context.Context, id string) (*Appointment, error) {
	return s.get(ctx, id)
}

const appointmentColumns = `SELECT id, patient_id, status, start_at, resource_sealed, answer, answered_at, answered_via,
	deleted_at, created_at, updated_at FROM careline_appointment`

func (s *Store) get(ctx context.Context, id string) (*Appointment, error) {
	a, err := s.scan(s.db.QueryRow(ctx, appointmentColumns+` WHERE id=$1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	a.Reminders, err = s.reminders(ctx, id)
	return a, err
}

type scannable interface{ Scan(dest ...any) error }

func (s *Store) scan(row scannable) (*Appointment, error) {
	var a Appointment
	var start, created, updated int64
	var sealed []byte
	var answer, via sql.NullString
	var answeredAt, deletedAt sql.NullInt64
	err := row.Scan(&a.ID, &a.PatientID, &a.Status, &start, &sealed, &answer, &answeredAt, &via, &deletedAt, &created, &updated)
	if err != nil {
		return nil, err
	}
	a.Start, a.CreatedAt, a.UpdatedAt = time.UnixMilli(start), time.UnixMilli(created), time.UnixMilli(updated)
	a.Answer, a.AnsweredVia = answer.String, via.String
	a.AnsweredAt, a.DeletedAt = fromNull(answeredAt), fromNull(deletedAt)
	if a.Resource, err = s.seal.Open(sealed, resourceContext(a.PatientID, a.ID)); err != nil {
		return nil, err
	}
	return &a, nil
}

func (s *Store) reminders(ctx context.Context, id string) ([]Reminder, error) {
	rows, err := s.db.Query(ctx, `SELECT offset_ms, due_at, state, sent_at, message_id, note FROM careline_reminder
		WHERE appointment_id=$1 ORDER BY due_at`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Reminder
	for rows.Next() {
		var r Reminder
		var offset, due int64
		var sent sql.NullInt64
		var msgID, note sql.NullString
		if err = rows.Scan(&offset, &due, &r.State, &sent, &msgID, &note); err != nil {
			return nil, err
		}
		r.Offset, r.DueAt, r.SentAt = time.Duration(offset)*time.Millisecond, time.UnixMilli(due), fromNull(sent)
		r.MessageID, r.Note = msgID.String, note.String
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) setState(ctx context.Context, id string, offset time.Duration, state, note string) error {
	_, err := s.db.Exec(ctx, `UPDATE careline_reminder SET state=$3, note=$4 WHERE appointment_id=$1 AND offset_ms=$2`,
		id, offset.Milliseconds(), state, nullString(note))
	return err
}

// RememberPatient keeps a contained Patient's details under the EHR's reference to it, for
// later appointments that only refer to it.
func (s *Store) RememberPatient(ctx context.Context, reference string, details any) error {
	data, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO careline_patient_reference (reference, patient_sealed, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (reference) DO UPDATE SET patient_sealed=excluded.patient_sealed, updated_at=excluded.updated_at`,
		reference, s.seal.Seal(data, referenceContext(reference)), s.Now().UnixMilli())
	return err
}

// RecallPatient fills details from a remembered reference; it returns false if unknown.
func (s *Store) RecallPatient(ctx context.Context, reference string, details any) (bool, error) {
	var sealed []byte
	err := s.db.QueryRow(ctx, `SELECT patient_sealed FROM careline_patient_reference WHERE reference=$1`, reference).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	data, err := s.seal.Open(sealed, referenceContext(reference))
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(data, details)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}

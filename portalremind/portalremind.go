// Package portalremind decides when a patient who has not opened a secure message gets one more
// text with a fresh link, and when staff are told that it is still unopened. It reads the
// message records (careline_message: read_at is set when the patient sees a message in the
// portal) and keeps its own record of the reminders sent; IDs and times only.
package portalremind

import (
	"context"
	"database/sql"
	"embed"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Store is the portal reminders' section of the bridge database.
type Store struct{ db *dbutil.Database }

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_portalremind_version", table, dbutil.ZeroLogger(log))}
}

// Upgrade creates or migrates the table.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// Unopened is a patient's oldest secure message not opened in the portal.
type Unopened struct {
	PatientID string
	MessageID string
	RoomID    string
	EventID   string // the message in the room, for staff notices to answer
	// At is when the message was stored (the text left soon after); from StillUnopened, when
	// the reminder went.
	At time.Time
}

// unopenedSecure selects staff messages sent by secure link whose text did not fail (a message
// 24 hours old is past the outbox's retries, so one not failed went out) and that the patient
// has not opened, not withdrawn since, newer than the patient's last end-access (after
// a lost phone or a recycled number no link goes out on careline's own initiative).
const unopenedSecure = `
	FROM careline_message m
	WHERE m.from_patient = false AND m.channel = 'secure' AND m.read_at IS NULL AND m.withdrawn_at IS NULL
	  AND m.status NOT IN ('failed', 'undelivered', 'canceled', 'refused', 'scheduled')
	  AND NOT EXISTS (SELECT 1 FROM careline_audit a WHERE a.patient_id = m.patient_id
	                  AND a.action = 'portal.access_ended' AND a.at >= m.created_at)`

// DueReminders lists, per patient, the oldest unopened secure message when it was sent in
// (from, to] and brought no reminder yet. Messages sent after an unopened reminded one share its
// reminder: the link opens them all. Older messages are left alone: a reminder long after its
// time (careline was down, or the message predates the reminders) would surprise the patient.
func (s *Store) DueReminders(ctx context.Context, from, to time.Time) ([]Unopened, error) {
	rows, err := s.db.Query(ctx, `SELECT m.patient_id, m.id, m.mx_room_id, m.mx_event_id, m.created_at`+unopenedSecure+`
		AND m.created_at > $1 AND m.created_at <= $2
		AND NOT EXISTS (SELECT 1 FROM careline_message o WHERE o.patient_id = m.patient_id AND o.from_patient = false
		                AND o.channel = 'secure' AND o.read_at IS NULL AND o.withdrawn_at IS NULL
		                AND o.status NOT IN ('failed', 'undelivered', 'canceled', 'refused', 'scheduled')
		                AND (o.created_at < m.created_at OR (o.created_at = m.created_at AND o.id < m.id)))
		AND NOT EXISTS (SELECT 1 FROM careline_portalremind r WHERE r.message_id = m.id)
		ORDER BY m.created_at, m.id`, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Unopened
	for rows.Next() {
		var u Unopened
		var sent int64
		var room, evt sql.NullString
		if err = rows.Scan(&u.PatientID, &u.MessageID, &room, &evt, &sent); err != nil {
			return nil, err
		}
		u.RoomID, u.EventID = room.String, evt.String
		u.At = time.UnixMilli(sent)
		out = append(out, u)
	}
	return out, rows.Err()
}

// TakeReminder records the reminder for an unopened message; it reports false when another
// run took it first, so a message brings at most one reminder. Run it in the transaction that
// queues the text.
func (s *Store) TakeReminder(ctx context.Context, u Unopened, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `INSERT INTO careline_portalremind (message_id, patient_id, room_id, reminded_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (message_id) DO NOTHING`, u.MessageID, u.PatientID, u.RoomID, at.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// StillUnopened lists the reminded messages whose reminder went before cutoff, that are still
// unopened and whose staff were not told yet.
func (s *Store) StillUnopened(ctx context.Context, cutoff time.Time) ([]Unopened, error) {
	rows, err := s.db.Query(ctx, `SELECT r.patient_id, r.message_id, r.room_id, m.mx_event_id, r.reminded_at FROM careline_portalremind r
		JOIN careline_message m ON m.id = r.message_id
		WHERE r.staff_told_at IS NULL AND r.reminded_at <= $1 AND m.read_at IS NULL AND m.withdrawn_at IS NULL
		ORDER BY r.reminded_at, r.message_id`, cutoff.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Unopened
	for rows.Next() {
		var u Unopened
		var reminded int64
		var evt sql.NullString
		if err = rows.Scan(&u.PatientID, &u.MessageID, &u.RoomID, &evt, &reminded); err != nil {
			return nil, err
		}
		u.EventID = evt.String
		u.At = time.UnixMilli(reminded)
		out = append(out, u)
	}
	return out, rows.Err()
}

// TakeStaffTold records that staff were told about a still unopened message; false when it was
// recorded already, so staff are told once.
func (s *Store) TakeStaffTold(ctx context.Context, messageID string, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE careline_portalremind SET staff_told_at=$2 WHERE message_id=$1 AND staff_told_at IS NULL`,
		messageID, at.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

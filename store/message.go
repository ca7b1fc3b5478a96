package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbset"
)

// Message is one message of a conversation.
type Message struct {
	ID          string
	PatientID   string
	FromPatient bool
	Channel     Channel
	SenderName  string
	Body        string
	TwilioSID   string
	RoomID      id.RoomID
	EventID     id.EventID
	MXSender    id.UserID
	Status      MessageStatus
	ErrorCode   int
	CreatedAt   time.Time
	ReadAt      time.Time
	WithdrawnAt time.Time
	Expired     bool // the content was erased by retention
	Attachments []*Attachment
}

// Attachment is a file of a message; Data is only filled by GetAttachment.
type Attachment struct {
	ID          string
	MessageID   string
	FileName    string
	ContentType string
	Size        int64
	Data        []byte
}

// The sealing contexts name the owning patient and message, so a sealed value moved to another
// patient's (or message's) row does not open there.
func bodyContext(patientID, id string) string { return atrest.Context("message-body", patientID, id) }
func attachmentContext(patientID, messageID, id string) string {
	return atrest.Context("attachment", patientID, messageID, id)
}
func attachmentNameContext(patientID, messageID, id string) string {
	return atrest.Context("attachment-name", patientID, messageID, id)
}

func (s *Store) openFileName(patientID string, a *Attachment, sealed []byte) (err error) {
	if a.FileName, err = s.Seal.OpenString(sealed, attachmentNameContext(patientID, a.MessageID, a.ID)); err != nil {
		return fmt.Errorf("opening the name of attachment %s of message %s (patient %s): %w", a.ID, a.MessageID, patientID, err)
	}
	return nil
}

func (s *Store) openAttachment(patientID string, a *Attachment, sealed []byte) (err error) {
	if a.Data, err = s.Seal.Open(sealed, attachmentContext(patientID, a.MessageID, a.ID)); err != nil {
		return fmt.Errorf("opening attachment %s of message %s (patient %s): %w", a.ID, a.MessageID, patientID, err)
	}
	return nil
}

// SaveMessage records a message and its attachments; a message id seen before is left alone.
func (s *Store) SaveMessage(ctx context.Context, m *Message) error {
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := s.insertMessage(ctx, m, s.Seal.SealString(m.Body, bodyContext(m.PatientID, m.ID)))
		return err
	})
}

// insertMessage is SaveMessage inside the caller's transaction, with the body sealed already.
// It reports whether the message was new.
func (s *Store) insertMessage(ctx context.Context, m *Message, bodySealed []byte) (bool, error) {
	var twilioSID any
	if m.TwilioSID != "" {
		twilioSID = m.TwilioSID
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	res, err := s.DB.Exec(ctx, `
		INSERT INTO careline_message (id, patient_id, from_patient, channel, sender_name, body_sealed,
			twilio_sid, mx_room_id, mx_event_id, mx_sender, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (id) DO NOTHING`,
		m.ID, m.PatientID, m.FromPatient, m.Channel, m.SenderName, bodySealed,
		twilioSID, string(m.RoomID), string(m.EventID), string(m.MXSender), m.Status, m.CreatedAt.UnixMilli())
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	for _, a := range m.Attachments {
		a.MessageID = m.ID
		_, err = s.DB.Exec(ctx, `
			INSERT INTO careline_attachment (id, message_id, name_sealed, content_type, size, data_sealed)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			a.ID, a.MessageID, s.Seal.SealString(a.FileName, attachmentNameContext(m.PatientID, a.MessageID, a.ID)), a.ContentType,
			int64(len(a.Data)), s.Seal.Seal(a.Data, attachmentContext(m.PatientID, a.MessageID, a.ID)))
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// SetMatrixEvent links a message to the Matrix event that carries it.
func (s *Store) SetMatrixEvent(ctx context.Context, messageID string, roomID id.RoomID, eventID id.EventID) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_message SET mx_room_id=$2, mx_event_id=$3 WHERE id=$1`, messageID, string(roomID), string(eventID))
	return err
}

// SetSent records the Twilio SID of the SMS that carried (or announced) a message, and
// Twilio's status unless a status callback already moved the message further.
func (s *Store) SetSent(ctx context.Context, messageID, twilioSID string, status MessageStatus) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_message SET twilio_sid=$2 WHERE id=$1`, messageID, twilioSID)
	if err == nil {
		_, err = s.advanceStatus(ctx, []string{messageID}, status, 0)
	}
	return err
}

// advanceStatus moves messages' status forward, never back; it reports whether any moved.
func (s *Store) advanceStatus(ctx context.Context, messageIDs []string, status MessageStatus, errorCode int) (bool, error) {
	var code any
	if errorCode != 0 {
		code = errorCode
	}
	// The rank check is in the statement, so two callbacks racing cannot move it back.
	var lower []string
	for st, rank := range statusRank {
		if rank < status.Rank() {
			lower = append(lower, string(st))
		}
	}
	if len(lower) == 0 {
		return false, nil
	}
	// In a fixed order, so the statement's text is the same each time (SQLite's statement cache).
	slices.Sort(lower)
	args := append(make([]any, 0, 2+len(lower)+len(messageIDs)), status, code)
	for _, st := range lower {
		args = append(args, st)
	}
	for _, id := range messageIDs {
		args = append(args, id)
	}
	query := `UPDATE careline_message SET status=$1, error_code=COALESCE($2, error_code) WHERE status IN (` +
		dbset.Placeholders(3, len(lower)) + `) AND id IN (` + dbset.Placeholders(3+len(lower), len(messageIDs)) + `)`
	res, err := s.DB.Exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// UpdateStatus applies a delivery status to the message an outbox text of this login
// carried, unless the message already went further. The text is named by careline's own
// outbox sequence number (from the callback's URL) and must carry this SID if one is recorded.
// It returns the message (nil if none) and whether anything changed.
func (s *Store) UpdateStatus(ctx context.Context, loginID string, seq int64, twilioSID string, status MessageStatus, errorCode int) (*Message, bool, error) {
	var m *Message
	var changed bool
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		var messageID, recordedSID sql.NullString
		err := s.DB.QueryRow(ctx, `SELECT message_id, twilio_sid FROM careline_outbox WHERE seq=$1 AND login_id=$2`, seq, loginID).
			Scan(&messageID, &recordedSID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		if recordedSID.Valid && recordedSID.String != twilioSID {
			return nil // not the text this callback URL was given to
		}
		if !messageID.Valid {
			return nil // a code or a HELP reply: no message to update
		}
		if changed, err = s.advanceStatus(ctx, []string{messageID.String}, status, errorCode); err != nil {
			return err
		}
		m, err = s.getMessage(ctx, `WHERE id=$1`, messageID.String)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("applying a delivery status: %w", err)
	}
	return m, changed, nil
}

// MarkRead records that the patient saw these staff messages in the portal; it returns those
// newly read. careline_message.read_at is the only record of it.
func (s *Store) MarkRead(ctx context.Context, patientID string, ids []string) ([]*Message, error) {
	var read []*Message
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, msgID := range ids {
			m, err := s.getMessage(ctx, `WHERE id=$1 AND patient_id=$2 AND read_at IS NULL AND from_patient=false`, msgID, patientID)
			if err != nil {
				return err
			} else if m == nil {
				continue
			}
			if _, err = s.DB.Exec(ctx, `UPDATE careline_message SET read_at=$2 WHERE id=$1`, m.ID, s.nowMilli()); err != nil {
				return err
			}
			read = append(read, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording messages read: %w", err)
	}
	return read, nil
}

// Withdraw marks a message redacted by staff: its body and attachments are erased.
func (s *Store) Withdraw(ctx context.Context, messageID string) error {
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := s.DB.Exec(ctx, `UPDATE careline_message SET withdrawn_at=$2, body_sealed=NULL WHERE id=$1`, messageID, s.nowMilli())
		if err == nil {
			_, err = s.DB.Exec(ctx, `DELETE FROM careline_attachment WHERE message_id=$1`, messageID)
		}
		return err
	})
}

// GetMessage returns a message by id, or nil.
func (s *Store) GetMessage(ctx context.Context, messageID string) (*Message, error) {
	return s.getMessage(ctx, `WHERE id=$1`, messageID)
}

// Thread returns a patient's conversation, oldest first, with attachment metadata.
func (s *Store) Thread(ctx context.Context, patientID string) ([]*Message, error) {
	rows, err := s.DB.Query(ctx, messageColumns+` WHERE patient_id=$1 ORDER BY created_at, id`, patientID)
	if err != nil {
		return nil, err
	}
	var msgs []*Message
	byID := map[string]*Message{}
	for rows.Next() {
		m, err := s.scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		msgs = append(msgs, m)
		byID[m.ID] = m
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	arows, err := s.DB.Query(ctx, `
		SELECT a.id, a.message_id, a.name_sealed, a.content_type, a.size FROM careline_attachment a
		JOIN careline_message m ON m.id = a.message_id WHERE m.patient_id=$1 ORDER BY a.id`, patientID)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var a Attachment
		var nameSealed []byte
		if err := arows.Scan(&a.ID, &a.MessageID, &nameSealed, &a.ContentType, &a.Size); err != nil {
			return nil, err
		}
		if err := s.openFileName(patientID, &a, nameSealed); err != nil {
			return nil, err
		}
		if m := byID[a.MessageID]; m != nil {
			m.Attachments = append(m.Attachments, &a)
		}
	}
	return msgs, arows.Err()
}

// MessageAttachments returns a message's attachments with their data.
func (s *Store) MessageAttachments(ctx context.Context, messageID string) ([]*Attachment, error) {
	rows, err := s.DB.Query(ctx, `SELECT a.id, a.message_id, m.patient_id, a.name_sealed, a.content_type, a.size, a.data_sealed
		FROM careline_attachment a JOIN careline_message m ON m.id = a.message_id WHERE a.message_id=$1 ORDER BY a.id`, messageID)
	if err != nil {
		return nil, fmt.Errorf("reading a message's attachments: %w", err)
	}
	defer rows.Close()
	var out []*Attachment
	for rows.Next() {
		var a Attachment
		var patientID string
		var sealed, nameSealed []byte
		if err = rows.Scan(&a.ID, &a.MessageID, &patientID, &nameSealed, &a.ContentType, &a.Size, &sealed); err != nil {
			return nil, err
		}
		if err = s.openFileName(patientID, &a, nameSealed); err != nil {
			return nil, err
		}
		if err = s.openAttachment(patientID, &a, sealed); err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// GetAttachment returns one attachment with its data, only if it belongs to the patient.
func (s *Store) GetAttachment(ctx context.Context, patientID, attachmentID string) (*Attachment, error) {
	var a Attachment
	var sealed, nameSealed []byte
	err := s.DB.QueryRow(ctx, `
		SELECT a.id, a.message_id, a.name_sealed, a.content_type, a.size, a.data_sealed FROM careline_attachment a
		JOIN careline_message m ON m.id = a.message_id WHERE a.id=$1 AND m.patient_id=$2`, attachmentID, patientID).
		Scan(&a.ID, &a.MessageID, &nameSealed, &a.ContentType, &a.Size, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err = s.openFileName(patientID, &a, nameSealed); err != nil {
		return nil, err
	}
	if err = s.openAttachment(patientID, &a, sealed); err != nil {
		return nil, err
	}
	return &a, nil
}

const messageColumns = `SELECT id, patient_id, from_patient, channel, sender_name, body_sealed, twilio_sid,
	mx_room_id, mx_event_id, mx_sender, status, error_code, created_at, read_at, withdrawn_at FROM careline_message`

func (s *Store) getMessage(ctx context.Context, where string, args ...any) (*Message, error) {
	m, err := s.scanMessage(s.DB.QueryRow(ctx, messageColumns+" "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return m, err
}

type scannable interface{ Scan(dest ...any) error }

func (s *Store) scanMessage(row scannable) (*Message, error) {
	var (
		m                       Message
		sealed                  []byte
		twilioSID               sql.NullString
		roomID, eventID, mxUser string
		code                    sql.NullInt64
		created                 int64
		readAt, withdrawnAt     sql.NullInt64
	)
	err := row.Scan(&m.ID, &m.PatientID, &m.FromPatient, &m.Channel, &m.SenderName, &sealed, &twilioSID,
		&roomID, &eventID, &mxUser, &m.Status, &code, &created, &readAt, &withdrawnAt)
	if err != nil {
		return nil, err
	}
	m.TwilioSID, m.RoomID, m.EventID, m.MXSender = twilioSID.String, id.RoomID(roomID), id.EventID(eventID), id.UserID(mxUser)
	m.ErrorCode = int(code.Int64)
	m.CreatedAt = time.UnixMilli(created)
	m.ReadAt = millis(nullPtr(readAt))
	m.WithdrawnAt = millis(nullPtr(withdrawnAt))
	if sealed != nil {
		if m.Body, err = s.Seal.OpenString(sealed, bodyContext(m.PatientID, m.ID)); err != nil {
			return nil, fmt.Errorf("opening the body of message %s (patient %s): %w", m.ID, m.PatientID, err)
		}
	}
	m.Expired = sealed == nil && !withdrawnAt.Valid
	return &m, nil
}

func nullPtr(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

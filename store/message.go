package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"maunium.net/go/mautrix/id"
)

// Channels a message can travel by.
const (
	ChannelSMS    = "sms"    // patient → clinic by SMS, or clinic → patient as plain SMS
	ChannelSecure = "secure" // clinic → patient through a portal link
	ChannelPortal = "portal" // patient → clinic through the portal
)

// Message is one message of a conversation.
type Message struct {
	ID          string
	PatientID   string
	FromPatient bool
	Channel     string
	SenderName  string
	Body        string
	TwilioSID   string
	RoomID      id.RoomID
	EventID     id.EventID
	MXSender    id.UserID
	Status      string
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

func bodyContext(id string) string       { return "message-body:" + id }
func attachmentContext(id string) string { return "attachment:" + id }

func attachmentNameContext(id string) string { return "attachment-name:" + id }

// openFileName opens a sealed file name; rows from before names were sealed keep theirs in
// file_name until sealLegacyFileNames runs.
func (s *Store) openFileName(a *Attachment, sealed []byte) (err error) {
	if sealed != nil {
		a.FileName, err = s.Seal.OpenString(sealed, attachmentNameContext(a.ID))
	}
	return err
}

// sealLegacyFileNames seals the file names stored readable before schema v5.
func (s *Store) sealLegacyFileNames(ctx context.Context) error {
	rows, err := s.DB.Query(ctx, `SELECT id, file_name FROM careline_attachment WHERE name_sealed IS NULL`)
	if err != nil {
		return err
	}
	legacy := map[string]string{}
	for rows.Next() {
		var id, name string
		if err = rows.Scan(&id, &name); err != nil {
			rows.Close()
			return err
		}
		legacy[id] = name
	}
	rows.Close()
	if err = rows.Err(); err != nil {
		return err
	}
	for id, name := range legacy {
		_, err = s.DB.Exec(ctx, `UPDATE careline_attachment SET name_sealed=$2, file_name='' WHERE id=$1`,
			id, s.Seal.SealString(name, attachmentNameContext(id)))
		if err != nil {
			return err
		}
	}
	return nil
}

// statusRank orders delivery statuses so late or repeated callbacks never move a message back.
var statusRank = map[string]int{
	"queued": 1, "accepted": 1, "scheduled": 1, "sending": 2, "sent": 3,
	"delivered": 4, "read": 5, "undelivered": 6, "failed": 6, "canceled": 6,
}

// StatusRank exposes the ordering for callers that decide what to tell staff.
func StatusRank(status string) int { return statusRank[status] }

// SaveMessage records a message and its attachments; a message id seen before is left alone.
func (s *Store) SaveMessage(ctx context.Context, m *Message) error {
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
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
			m.ID, m.PatientID, m.FromPatient, m.Channel, m.SenderName, s.Seal.SealString(m.Body, bodyContext(m.ID)),
			twilioSID, string(m.RoomID), string(m.EventID), string(m.MXSender), m.Status, m.CreatedAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		for _, a := range m.Attachments {
			a.MessageID = m.ID
			_, err = s.DB.Exec(ctx, `
				INSERT INTO careline_attachment (id, message_id, file_name, name_sealed, content_type, size, data_sealed)
				VALUES ($1, $2, '', $3, $4, $5, $6)`,
				a.ID, a.MessageID, s.Seal.SealString(a.FileName, attachmentNameContext(a.ID)), a.ContentType,
				int64(len(a.Data)), s.Seal.Seal(a.Data, attachmentContext(a.ID)))
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SetMatrixEvent links a message to the Matrix event that carries it.
func (s *Store) SetMatrixEvent(ctx context.Context, messageID string, roomID id.RoomID, eventID id.EventID) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_message SET mx_room_id=$2, mx_event_id=$3 WHERE id=$1`, messageID, string(roomID), string(eventID))
	return err
}

// SetSent records the Twilio SID of the SMS that carried (or announced) a message.
func (s *Store) SetSent(ctx context.Context, messageID, twilioSID, status string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_message SET twilio_sid=$2, status=$3 WHERE id=$1`, messageID, twilioSID, status)
	return err
}

// UpdateStatus applies a delivery status unless the message already went further.
// It returns the message and whether anything changed.
func (s *Store) UpdateStatus(ctx context.Context, twilioSID, status string, errorCode int) (*Message, bool, error) {
	var m *Message
	var changed bool
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		var err error
		m, err = s.getMessage(ctx, `WHERE twilio_sid=$1`, twilioSID)
		if err != nil || m == nil {
			return err
		}
		if statusRank[status] <= statusRank[m.Status] {
			return nil
		}
		var code any
		if errorCode != 0 {
			code = errorCode
		}
		_, err = s.DB.Exec(ctx, `UPDATE careline_message SET status=$2, error_code=$3 WHERE id=$1`, m.ID, status, code)
		m.Status, m.ErrorCode, changed = status, errorCode, err == nil
		return err
	})
	return m, changed, err
}

// MarkRead records that the patient saw these messages in the portal; it returns those newly read.
func (s *Store) MarkRead(ctx context.Context, patientID string, ids []string) ([]*Message, error) {
	var read []*Message
	for _, msgID := range ids {
		m, err := s.getMessage(ctx, `WHERE id=$1 AND patient_id=$2 AND read_at IS NULL AND from_patient=false`, msgID, patientID)
		if err != nil {
			return nil, err
		} else if m == nil {
			continue
		}
		if _, err = s.DB.Exec(ctx, `UPDATE careline_message SET read_at=$2 WHERE id=$1`, m.ID, s.nowMilli()); err != nil {
			return nil, err
		}
		read = append(read, m)
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

// GetMessageBySID returns the message a Twilio SID carried, or nil.
func (s *Store) GetMessageBySID(ctx context.Context, twilioSID string) (*Message, error) {
	return s.getMessage(ctx, `WHERE twilio_sid=$1`, twilioSID)
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
		SELECT a.id, a.message_id, a.file_name, a.name_sealed, a.content_type, a.size FROM careline_attachment a
		JOIN careline_message m ON m.id = a.message_id WHERE m.patient_id=$1 ORDER BY a.id`, patientID)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var a Attachment
		var nameSealed []byte
		if err := arows.Scan(&a.ID, &a.MessageID, &a.FileName, &nameSealed, &a.ContentType, &a.Size); err != nil {
			return nil, err
		}
		if err := s.openFileName(&a, nameSealed); err != nil {
			return nil, err
		}
		if m := byID[a.MessageID]; m != nil {
			m.Attachments = append(m.Attachments, &a)
		}
	}
	return msgs, arows.Err()
}

// GetAttachment returns one attachment with its data, only if it belongs to the patient.
func (s *Store) GetAttachment(ctx context.Context, patientID, attachmentID string) (*Attachment, error) {
	var a Attachment
	var sealed, nameSealed []byte
	err := s.DB.QueryRow(ctx, `
		SELECT a.id, a.message_id, a.file_name, a.name_sealed, a.content_type, a.size, a.data_sealed FROM careline_attachment a
		JOIN careline_message m ON m.id = a.message_id WHERE a.id=$1 AND m.patient_id=$2`, attachmentID, patientID).
		Scan(&a.ID, &a.MessageID, &a.FileName, &nameSealed, &a.ContentType, &a.Size, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err = s.openFileName(&a, nameSealed); err != nil {
		return nil, err
	}
	a.Data, err = s.Seal.Open(sealed, attachmentContext(a.ID))
	return &a, err
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
		if m.Body, err = s.Seal.OpenString(sealed, bodyContext(m.ID)); err != nil {
			return nil, err
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

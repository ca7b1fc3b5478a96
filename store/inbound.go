package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/careline/careline/atrest"
)

// MediaRef is one MMS attachment named in a webhook.
type MediaRef struct {
	Index       int    `json:"i"`
	URL         string `json:"u"`
	ContentType string `json:"t,omitempty"` // as Twilio declared it; the fetched content's own type wins
}

// Inbound is one message from a patient waiting to reach its Matrix room: an SMS webhook
// parsed once, or a portal post whose message is already stored.
type Inbound struct {
	MessageID string // the MessageSid of an SMS; careline's id of a portal message
	LoginID   string
	PatientID string
	Channel   Channel
	// What the webhook said (SMS only); sealed at rest.
	From  string
	Body  string
	Media []MediaRef

	State      InboundState
	Attempts   int
	ReceivedAt time.Time
	// SendingAt: when an earlier attempt was about to hand the message to bridgev2 (zero if
	// none was).
	SendingAt time.Time
}

type inboundPayload struct {
	From  string     `json:"f,omitempty"`
	Body  string     `json:"b,omitempty"`
	Media []MediaRef `json:"m,omitempty"`
}

// inboundContext names the patient as well as the message, so a waiting message moved to
// another patient's row is not bridged into their room.
func inboundContext(patientID, id string) string { return atrest.Context("inbound", patientID, id) }

// SaveInbound durably records an SMS webhook before it is acknowledged, together with its
// patient (created if new), in one transaction. It returns the patient and false when the
// MessageSid was already recorded (Twilio retried), so the caller acknowledges without redoing.
func (s *Store) SaveInbound(ctx context.Context, in *Inbound) (patient *Patient, isNew bool, err error) {
	payload, err := json.Marshal(inboundPayload{From: in.From, Body: in.Body, Media: in.Media})
	if err != nil {
		return nil, false, err
	}
	in.State, in.ReceivedAt = InboundPending, s.now()
	err = s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if patient, err = s.GetOrCreatePatient(ctx, in.PatientID, in.LoginID, in.From); err != nil {
			return err
		}
		isNew, err = s.insertInbound(ctx, in, payload)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("saving an incoming message: %w", err)
	}
	return patient, isNew, nil
}

func (s *Store) insertInbound(ctx context.Context, in *Inbound, payload []byte) (bool, error) {
	now := in.ReceivedAt.UnixMilli()
	res, err := s.DB.Exec(ctx, `
		INSERT INTO careline_inbound (message_id, login_id, patient_id, channel, payload_sealed, state, received_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (message_id) DO NOTHING`,
		in.MessageID, in.LoginID, in.PatientID, in.Channel, s.Seal.Seal(payload, inboundContext(in.PatientID, in.MessageID)), in.State, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SavePortalInbound records a message the patient posted in the portal and queues it for
// the room, in one transaction.
func (s *Store) SavePortalInbound(ctx context.Context, m *Message, loginID string) (*Inbound, error) {
	in := &Inbound{MessageID: m.ID, LoginID: loginID, PatientID: m.PatientID, Channel: ChannelPortal,
		State: InboundPending, ReceivedAt: s.now()}
	m.Status = StatusPending
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.SaveMessage(ctx, m); err != nil {
			return err
		}
		_, err := s.insertInbound(ctx, in, []byte("{}"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("saving a portal message: %w", err)
	}
	return in, nil
}

const inboundColumns = `SELECT message_id, login_id, patient_id, channel, payload_sealed, state, attempts, received_at,
	sending_at FROM careline_inbound`

// DueInbound lists messages not yet in their room whose next attempt is due, oldest first.
func (s *Store) DueInbound(ctx context.Context, limit int) ([]*Inbound, error) {
	rows, err := s.DB.Query(ctx, inboundColumns+` WHERE state='pending' AND next_attempt_at <= $1
		ORDER BY received_at, message_id LIMIT $2`, s.nowMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("listing incoming messages: %w", err)
	}
	defer rows.Close()
	var out []*Inbound
	for rows.Next() {
		in, err := s.scanInbound(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// GetInbound returns one stored incoming message, or nil.
func (s *Store) GetInbound(ctx context.Context, messageID string) (*Inbound, error) {
	in, err := s.scanInbound(s.DB.QueryRow(ctx, inboundColumns+` WHERE message_id=$1`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return in, err
}

func (s *Store) scanInbound(row scannable) (*Inbound, error) {
	var in Inbound
	var sealed []byte
	var received int64
	var sending *int64
	if err := row.Scan(&in.MessageID, &in.LoginID, &in.PatientID, &in.Channel, &sealed, &in.State, &in.Attempts,
		&received, &sending); err != nil {
		return nil, err
	}
	in.ReceivedAt, in.SendingAt = time.UnixMilli(received), millis(sending)
	if len(sealed) == 0 {
		return &in, nil // bridged: the message's own record keeps what the portal needs
	}
	plain, err := s.Seal.Open(sealed, inboundContext(in.PatientID, in.MessageID))
	if err != nil {
		return nil, fmt.Errorf("opening incoming message %s (patient %s): %w", in.MessageID, in.PatientID, err)
	}
	var p inboundPayload
	if err = json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("reading incoming message %s: %w", in.MessageID, err)
	}
	in.From, in.Body, in.Media = p.From, p.Body, p.Media
	return &in, nil
}

// MarkInboundSending records that the messages are about to be handed to bridgev2: a restart
// must check the room before sending them again.
func (s *Store) MarkInboundSending(ctx context.Context, messageIDs ...string) error {
	if len(messageIDs) == 0 {
		return nil
	}
	in, args := inList(2, messageIDs)
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET sending_at=$1 WHERE message_id IN `+in, append([]any{s.nowMilli()}, args...)...)
	if err != nil {
		return fmt.Errorf("marking incoming messages as sending: %w", err)
	}
	return nil
}

// MarkInboundBridged records that the messages are in their rooms, and marks their messages
// received. The sealed payloads are dropped: each message's own record keeps what the portal
// needs.
func (s *Store) MarkInboundBridged(ctx context.Context, messageIDs ...string) error {
	if len(messageIDs) == 0 {
		return nil
	}
	in, args := inList(3, messageIDs)
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET state='bridged', bridged_at=$1, payload_sealed=$2, last_error=NULL
			WHERE message_id IN `+in, append([]any{s.nowMilli(), []byte{}}, args...)...)
		if err == nil {
			in, args := inList(1, messageIDs)
			_, err = s.DB.Exec(ctx, `UPDATE careline_message SET status='received' WHERE status='pending' AND id IN `+in, args...)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("marking incoming messages bridged: %w", err)
	}
	return nil
}

// inList is "($first, $first+1, …)" for the values, and the values as arguments.
func inList(first int, values []string) (string, []any) {
	var b strings.Builder
	args := make([]any, len(values))
	b.WriteByte('(')
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
		args[i] = v
	}
	b.WriteByte(')')
	return b.String(), args
}

// RetryInbound counts a failed attempt and schedules the next; errText must not contain
// patient data.
func (s *Store) RetryInbound(ctx context.Context, messageID string, at time.Time, errText string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET attempts=attempts+1, next_attempt_at=$2, last_error=$3 WHERE message_id=$1`,
		messageID, at.UnixMilli(), errText)
	if err != nil {
		return fmt.Errorf("scheduling an incoming message's retry: %w", err)
	}
	return nil
}

// GiveUpInbound records that a message will not reach its room, and fails its message record
// so the portal shows the patient it did not arrive.
func (s *Store) GiveUpInbound(ctx context.Context, messageID, errText string) error {
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET state='failed', attempts=attempts+1, last_error=$2 WHERE message_id=$1`,
			messageID, errText)
		if err == nil {
			_, err = s.DB.Exec(ctx, `UPDATE careline_message SET status='failed' WHERE id=$1 AND from_patient`, messageID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("giving up an incoming message: %w", err)
	}
	return nil
}

// RecordKeyword records that a keyword message was acted on. It reports false when this
// message was acted on before (a retry or a replayed webhook), so it is not acted on twice.
func (s *Store) RecordKeyword(ctx context.Context, messageID, patientID string, kw Keyword) (bool, error) {
	res, err := s.DB.Exec(ctx, `INSERT INTO careline_keyword (message_id, patient_id, keyword, applied_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (message_id) DO NOTHING`, messageID, patientID, kw, s.nowMilli())
	if err != nil {
		return false, fmt.Errorf("recording a keyword: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbset"
)

// Outgoing is one text waiting in (or gone through) the outbox.
type Outgoing struct {
	Seq            int64
	LoginID        string
	PatientID      string
	MessageID      string
	Kind           OutboxKind
	Body           string
	StatusCallback bool
	State          OutboxState
	Attempts       int
	NextAttemptAt  time.Time
	GiveUpAt       time.Time
	TwilioSID      string
	ErrorCode      int
	LastError      string
	CreatedAt      time.Time

	// Read with the text by ClaimDue, so the sender does not read the patient again.
	To              string // the patient's number
	PatientOptedOut bool
	PatientGone     bool // the patient's record was deleted
	// Unreadable says why the text or its patient's number did not open (a storage key
	// missing from the config, or a row altered or moved by hand). Such a text is never sent;
	// it fails on its own instead of stopping every text of the clinic number behind it.
	Unreadable error
	Channel    Channel // how the message it carries travels (secure or sms); "" for codes and HELP
}

// outboxContext names the text's patient and message (if any) as well as its row, so a sealed
// text moved to another patient's row does not open there.
func outboxContext(patientID, messageID string, seq int64) string {
	return atrest.Context("outbox", patientID, messageID, strconv.FormatInt(seq, 10))
}

// The outbox's two priorities: codes, and every other text. dueTexts asks for each by
// equality, so the pending index (login_id, state, priority, seq) hands it the rows in seq
// order and the scan stops at its limit; "priority <> 0" made PostgreSQL read, join and sort
// the whole backlog on every claim.
const (
	priorityCode  = 0
	priorityOther = 1
)

// Enqueue writes a text to the outbox. The body is sealed under the row's sequence number,
// known only after the insert, so it is written in a second statement of the same transaction.
func (s *Store) Enqueue(ctx context.Context, o *Outgoing) error {
	now := s.now()
	o.State, o.CreatedAt, o.NextAttemptAt = OutboxPending, now, now
	priority := priorityOther
	if o.Kind == KindCode {
		priority = priorityCode
	}
	var messageID any
	if o.MessageID != "" {
		messageID = o.MessageID
	}
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		err := s.DB.QueryRow(ctx, `
			INSERT INTO careline_outbox (login_id, patient_id, message_id, kind, priority, body_sealed, status_callback,
				state, next_attempt_at, give_up_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
			o.LoginID, o.PatientID, messageID, o.Kind, priority, []byte{}, o.StatusCallback,
			o.State, now.UnixMilli(), o.GiveUpAt.UnixMilli(), now.UnixMilli()).Scan(&o.Seq)
		if err != nil {
			return err
		}
		_, err = s.DB.Exec(ctx, `UPDATE careline_outbox SET body_sealed=$2 WHERE seq=$1`,
			o.Seq, s.Seal.SealString(o.Body, outboxContext(o.PatientID, o.MessageID, o.Seq)))
		return err
	})
}

const outboxColumns = `SELECT seq, login_id, patient_id, message_id, kind, body_sealed, status_callback, state, attempts,
	next_attempt_at, give_up_at, twilio_sid, error_code, last_error, created_at FROM careline_outbox`

// ClaimDue marks up to limit texts of a login that may be sent now as "sending", and returns
// them with their patient's number, in one transaction: oldest first, and never one whose
// patient has an earlier text still waiting (so each patient's texts arrive in order even when
// one is being retried). Codes and other texts share the batch fairly: each kind gets at least
// half of it while it has texts due (the odd place goes to codes when codesFirst), and a kind
// with too few due leaves its places to the other. The sender alternates codesFirst, so at one
// text per second staff texts keep half the rate however many codes are asked for, and a
// waiting patient's code is not stuck behind a broadcast. A crash before their outcome is
// recorded leaves them "sending", which the sender reconciles with Twilio at its next start.
func (s *Store) ClaimDue(ctx context.Context, loginID string, limit int, codesFirst bool) ([]*Outgoing, error) {
	return s.RecordAndClaim(ctx, nil, loginID, limit, codesFirst)
}

// RecordAndClaim records the outcomes of the sender's last batch (as RecordOutcomes) and claims
// the next batch (as ClaimDue) in one transaction: one commit per batch instead of two, and the
// claim, which must be on disk before its texts go to Twilio, puts the record there with it.
// Texts just recorded as sent free their patients' next texts for this claim.
func (s *Store) RecordAndClaim(ctx context.Context, outcomes []Outcome, loginID string, limit int, codesFirst bool) ([]*Outgoing, error) {
	var out []*Outgoing
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.recordOutcomes(ctx, outcomes); err != nil {
			return fmt.Errorf("recording the outcome of texts: %w", err)
		}
		codes, err := s.dueTexts(ctx, loginID, true, limit)
		if err != nil {
			return err
		}
		others, err := s.dueTexts(ctx, loginID, false, limit)
		if err != nil {
			return err
		}
		out = shareBatch(codes, others, limit, codesFirst)
		if len(out) == 0 {
			return nil
		}
		// One statement for the batch, not one per text.
		query := `UPDATE careline_outbox SET state='sending', attempts=attempts+1 WHERE seq IN (`
		args := make([]any, len(out))
		for i, o := range out {
			o.State = OutboxSending
			o.Attempts++
			args[i] = o.Seq
		}
		_, err = s.DB.Exec(ctx, query+dbset.Placeholders(1, len(args))+")", args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming due texts: %w", err)
	}
	return out, nil
}

// shareBatch fills a batch of limit from codes and others, each kind getting at least its half
// while it has texts; the kind that goes first gets the odd place and is listed first.
func shareBatch(codes, others []*Outgoing, limit int, codesFirst bool) []*Outgoing {
	first, second := codes, others
	if !codesFirst {
		first, second = others, codes
	}
	nFirst := min(len(first), limit-limit/2)
	nSecond := min(len(second), limit-nFirst)
	nFirst = min(len(first), limit-nSecond)
	return append(first[:nFirst:nFirst], second[:nSecond]...)
}

// dueTexts lists the due codes (codes true) or other texts of a login, oldest first, with
// their patient's number. Codes are exempt from the per-patient order: each stands alone.
func (s *Store) dueTexts(ctx context.Context, loginID string, codes bool, limit int) ([]*Outgoing, error) {
	priority := "o.priority = " + strconv.Itoa(priorityOther)
	if codes {
		priority = "o.priority = " + strconv.Itoa(priorityCode)
	}
	rows, err := s.DB.Query(ctx, `SELECT o.seq, o.login_id, o.patient_id, o.message_id, o.kind, o.body_sealed, o.status_callback,
			o.state, o.attempts, o.next_attempt_at, o.give_up_at, o.twilio_sid, o.error_code, o.last_error, o.created_at,
			p.phone_sealed, p.opted_out_at IS NOT NULL, m.channel
		FROM careline_outbox o LEFT JOIN careline_patient p ON p.id = o.patient_id
		LEFT JOIN careline_message m ON m.id = o.message_id
		WHERE o.login_id=$1 AND o.state='pending' AND o.next_attempt_at <= $2 AND `+priority+`
		AND NOT EXISTS (SELECT 1 FROM careline_outbox e WHERE e.patient_id=o.patient_id
			AND e.state IN ('pending', 'sending') AND e.seq < o.seq AND e.kind <> 'code' AND o.kind <> 'code')
		ORDER BY o.seq LIMIT $3`, loginID, s.nowMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Outgoing
	for rows.Next() {
		var phoneSealed []byte
		var optedOut sql.NullBool
		var channel sql.NullString
		o, err := s.scanOutgoing(rows, &phoneSealed, &optedOut, &channel)
		if err != nil {
			return nil, err
		}
		if phoneSealed == nil {
			o.PatientGone = true
		} else if o.To, err = s.Seal.OpenString(phoneSealed, phoneContext(o.PatientID)); err != nil && o.Unreadable == nil {
			o.Unreadable = fmt.Errorf("opening the number of outbox text %d (patient %s): %w", o.Seq, o.PatientID, err)
		}
		o.PatientOptedOut, o.Channel = optedOut.Bool, Channel(channel.String)
		out = append(out, o)
	}
	return out, rows.Err()
}

// Outcome is what happened to one claimed text.
type Outcome struct {
	Text *Outgoing
	// Exactly one of: SID (Twilio accepted it), RetryAt (try again), or Failed.
	SID       string
	Status    MessageStatus
	RetryAt   time.Time
	Failed    bool
	ErrorCode int
	Error     string // no patient data
}

// RecordOutcomes records what happened to texts the sender handed to Twilio, in one
// transaction, and the SID and status on the messages they carry.
func (s *Store) RecordOutcomes(ctx context.Context, outcomes []Outcome) error {
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error { return s.recordOutcomes(ctx, outcomes) })
	if err != nil {
		return fmt.Errorf("recording the outcome of texts: %w", err)
	}
	return nil
}

// recordOutcomes writes the texts Twilio accepted in a few statements for the whole batch
// (their rows, their messages' SIDs, one status update per status); the rarer retries and
// failures one by one.
func (s *Store) recordOutcomes(ctx context.Context, outcomes []Outcome) error {
	var sent []Outcome
	for _, oc := range outcomes {
		var err error
		switch {
		case oc.SID != "":
			sent = append(sent, oc)
		case oc.Failed:
			err = s.markFailed(ctx, oc.Text, oc.ErrorCode, oc.Error)
		default:
			err = s.Retry(ctx, oc.Text.Seq, oc.RetryAt, oc.Error)
		}
		if err != nil {
			return err
		}
	}
	if len(sent) == 0 {
		return nil
	}
	seqs, sids := make([]any, len(sent)), make([]any, len(sent))
	var messageIDs, messageSIDs []any
	byStatus := map[MessageStatus][]string{}
	for i, oc := range sent {
		seqs[i], sids[i] = oc.Text.Seq, oc.SID
		if oc.Text.MessageID != "" {
			messageIDs, messageSIDs = append(messageIDs, oc.Text.MessageID), append(messageSIDs, oc.SID)
			byStatus[oc.Status] = append(byStatus[oc.Status], oc.Text.MessageID)
		}
	}
	query, args := caseUpdate(`UPDATE careline_outbox SET state='sent', last_error=NULL, twilio_sid=`, "seq", seqs, sids)
	if _, err := s.DB.Exec(ctx, query, args...); err != nil {
		return err
	}
	if len(messageIDs) == 0 {
		return nil
	}
	query, args = caseUpdate(`UPDATE careline_message SET twilio_sid=`, "id", messageIDs, messageSIDs)
	if _, err := s.DB.Exec(ctx, query, args...); err != nil {
		return err
	}
	for status, ids := range byStatus {
		if _, err := s.advanceStatus(ctx, ids, status, 0); err != nil {
			return err
		}
	}
	return nil
}

// caseUpdate completes update (ending in "column=") to set each row named by keys[i] in
// keyColumn to values[i], in one statement.
func caseUpdate(update, keyColumn string, keys, values []any) (string, []any) {
	var b strings.Builder
	b.WriteString(update + "CASE " + keyColumn)
	args := make([]any, 0, 2*len(keys))
	for i := range keys {
		args = append(args, keys[i], values[i])
		fmt.Fprintf(&b, " WHEN $%d THEN $%d", len(args)-1, len(args))
	}
	b.WriteString(" END WHERE " + keyColumn + " IN (" + dbset.Placeholders(len(args)+1, len(keys)) + ")")
	return b.String(), append(args, keys...)
}

// NextWake is when the earliest pending text of a login becomes due (zero if none).
func (s *Store) NextWake(ctx context.Context, loginID string) (time.Time, error) {
	var at sql.NullInt64
	err := s.DB.QueryRow(ctx, `SELECT MIN(next_attempt_at) FROM careline_outbox WHERE login_id=$1 AND state='pending'`, loginID).Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return time.UnixMilli(at.Int64), nil
}

// Sending lists texts handed to Twilio whose outcome was never recorded (a crash).
func (s *Store) Sending(ctx context.Context, loginID string) ([]*Outgoing, error) {
	rows, err := s.DB.Query(ctx, outboxColumns+` WHERE login_id=$1 AND state='sending' ORDER BY seq`, loginID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Outgoing
	for rows.Next() {
		o, err := s.scanOutgoing(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// GetOutgoing returns one outbox row.
func (s *Store) GetOutgoing(ctx context.Context, seq int64) (*Outgoing, error) {
	return s.scanOutgoing(s.DB.QueryRow(ctx, outboxColumns+` WHERE seq=$1`, seq))
}

// MarkOutboxSent records Twilio's acceptance, and the SID on the message the text carries.
func (s *Store) MarkOutboxSent(ctx context.Context, o *Outgoing, twilioSID string, status MessageStatus) error {
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error { return s.markSent(ctx, o, twilioSID, status) })
}

func (s *Store) markSent(ctx context.Context, o *Outgoing, twilioSID string, status MessageStatus) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_outbox SET state='sent', twilio_sid=$2, last_error=NULL WHERE seq=$1`, o.Seq, twilioSID)
	if err == nil && o.MessageID != "" {
		err = s.SetSent(ctx, o.MessageID, twilioSID, status)
	}
	return err
}

// Retry puts a text back in the queue after a temporary failure.
func (s *Store) Retry(ctx context.Context, seq int64, at time.Time, errText string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_outbox SET state='pending', next_attempt_at=$2, last_error=$3 WHERE seq=$1`,
		seq, at.UnixMilli(), errText)
	return err
}

// MarkOutboxFailed records that the text will not be sent, and fails the message it carries.
func (s *Store) MarkOutboxFailed(ctx context.Context, o *Outgoing, code int, errText string) error {
	return s.DB.DoTxn(ctx, nil, func(ctx context.Context) error { return s.markFailed(ctx, o, code, errText) })
}

func (s *Store) markFailed(ctx context.Context, o *Outgoing, code int, errText string) error {
	var codeArg any
	if code != 0 {
		codeArg = code
	}
	_, err := s.DB.Exec(ctx, `UPDATE careline_outbox SET state='failed', error_code=$2, last_error=$3 WHERE seq=$1`, o.Seq, codeArg, errText)
	if err == nil && o.MessageID != "" {
		_, err = s.DB.Exec(ctx, `UPDATE careline_message SET status='failed', error_code=$2 WHERE id=$1`, o.MessageID, codeArg)
	}
	return err
}

// OutboxLogins lists logins with texts pending or being sent, for startup.
func (s *Store) OutboxLogins(ctx context.Context) ([]string, error) {
	rows, err := s.DB.Query(ctx, `SELECT DISTINCT login_id FROM careline_outbox WHERE state IN ('pending', 'sending')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (s *Store) scanOutgoing(row scannable, extra ...any) (*Outgoing, error) {
	var (
		o                       Outgoing
		messageID, sid, lastErr sql.NullString
		code                    sql.NullInt64
		sealed                  []byte
		next, giveUp, created   int64
	)
	err := row.Scan(append([]any{&o.Seq, &o.LoginID, &o.PatientID, &messageID, &o.Kind, &sealed, &o.StatusCallback, &o.State, &o.Attempts,
		&next, &giveUp, &sid, &code, &lastErr, &created}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	o.MessageID, o.TwilioSID, o.LastError, o.ErrorCode = messageID.String, sid.String, lastErr.String, int(code.Int64)
	o.NextAttemptAt, o.GiveUpAt, o.CreatedAt = time.UnixMilli(next), time.UnixMilli(giveUp), time.UnixMilli(created)
	if o.Body, err = s.Seal.OpenString(sealed, outboxContext(o.PatientID, o.MessageID, o.Seq)); err != nil {
		o.Unreadable = fmt.Errorf("opening outbox text %d (patient %s): %w", o.Seq, o.PatientID, err)
	}
	return &o, nil
}

package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbset"
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
	// SendingAt: when the message was marked as about to be handed to bridgev2, which a
	// restart must check in the room before sending it again (zero if not marked): on arrival
	// for an SMS without media and a portal post, else by the inbox's first attempt.
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
// patient (created if new). It returns the patient and false when the MessageSid was already
// recorded (Twilio retried), so the caller acknowledges without redoing. Concurrent calls share
// a commit (see inboundGroup); each returns only once its own message is committed.
//
// An SMS without media is also recorded as a message of the conversation and marked
// "sending" (in.SendingAt set) in that same commit, so the inbox can hand it to bridgev2
// without a commit of its own. An MMS is not: the inbox fetches its media first, and media
// Twilio no longer has change its body, so the inbox records it then.
func (s *Store) SaveInbound(ctx context.Context, in *Inbound) (patient *Patient, isNew bool, err error) {
	payload, err := json.Marshal(inboundPayload{From: in.From, Body: in.Body, Media: in.Media})
	if err != nil {
		return nil, false, err
	}
	in.State, in.ReceivedAt, in.SendingAt = InboundPending, s.now(), time.Time{}
	// Sealed here, on the caller's goroutine, rather than by whichever call writes.
	save := &inboundSave{ctx: ctx, in: in, sealed: s.Seal.Seal(payload, inboundContext(in.PatientID, in.MessageID))}
	if in.Channel == ChannelSMS && len(in.Media) == 0 {
		in.SendingAt = in.ReceivedAt
		save.msg = in.SMSMessage("", nil)
		save.bodySealed = s.Seal.SealString(save.msg.Body, bodyContext(in.PatientID, in.MessageID))
	}
	s.inboundGroup.save(s, save, s.inboundWriters())
	if !save.isNew {
		in.SendingAt = time.Time{} // a retried SID leaves the stored row as it was
	}
	if save.err != nil {
		return nil, false, fmt.Errorf("saving an incoming message: %w", save.err)
	}
	return save.patient, save.isNew, nil
}

// SMSMessage is the conversation's record of an incoming SMS: its body with note appended
// (say, that media were missing) and its fetched media.
func (in *Inbound) SMSMessage(note string, attachments []*Attachment) *Message {
	return &Message{
		ID: in.MessageID, PatientID: in.PatientID, FromPatient: true, Channel: ChannelSMS,
		Body: in.Body + note, TwilioSID: in.MessageID, Status: StatusPending,
		CreatedAt: in.ReceivedAt, Attachments: attachments,
	}
}

// inboundSave is one SaveInbound call: its message, and once committed, the outcome.
type inboundSave struct {
	ctx    context.Context
	in     *Inbound
	sealed []byte
	// msg: the message to record with it (an SMS without media), its body sealed already.
	msg        *Message
	bodySealed []byte
	// lead is created when the call has to wait: it receives true when the call is to write
	// the next commit, false when another call committed its message (or failed to).
	lead    chan bool
	patient *Patient
	isNew   bool
	// committed: the message's commit is done (isNew and patient are set); err is for those not.
	committed bool
	err       error
}

// maxInboundGroup bounds the messages of one commit, so a burst does not hold the database's
// write lock (SQLite's is the whole database) for long.
const maxInboundGroup = 64

// inboundGroup lets concurrent webhooks share commits, a commit being the dearest part of
// storing a message (SQLite's BEGIN and COMMIT; PostgreSQL's WAL flush). A call that finds
// fewer than the allowed writers at work writes at once, on its own goroutine, together with
// whatever has queued; a call that finds them all busy queues. A writer done with its commit
// hands the writing to the oldest queued call, which takes everything queued since, and then
// wakes the calls it committed. So grouping costs nothing unless calls overlap, and a call
// waits for at most the commit under way and its own.
//
// SQLite has one writer at a time anyway, and a second one would only sleep in its busy
// handler. PostgreSQL flushes the WAL of transactions committing together once, so two
// writers keep that for two webhooks that overlap (with one writer they took turns).
func (s *Store) inboundWriters() int {
	if s.DB.Dialect == dbutil.Postgres {
		return 2
	}
	return 1
}

type inboundGroup struct {
	mu      sync.Mutex
	queue   []*inboundSave
	writing int
}

func (g *inboundGroup) save(s *Store, mine *inboundSave, writers int) {
	g.mu.Lock()
	if g.writing >= writers {
		mine.lead = make(chan bool, 1)
		g.queue = append(g.queue, mine)
		g.mu.Unlock()
		if !<-mine.lead {
			return
		}
		g.mu.Lock() // handed the writing (and its count) by a writer done
	} else {
		g.writing++
	}
	n := min(len(g.queue), maxInboundGroup-1)
	batch := append([]*inboundSave{mine}, g.queue[:n]...)
	g.queue = g.queue[n:]
	g.mu.Unlock()

	s.saveInbounds(batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].lead <- true
		g.queue = g.queue[1:]
	} else {
		g.writing--
		g.queue = nil
	}
	g.mu.Unlock()
	for _, other := range batch[1:] {
		other.lead <- false
	}
}

// saveInbounds commits the messages and their patients. If that fails and there was more
// than one, each is tried again on its own, so one message cannot fail another.
func (s *Store) saveInbounds(batch []*inboundSave) {
	// One caller giving up (its client hung up) must not fail the others' commit.
	ctx := context.WithoutCancel(batch[0].ctx)
	err := s.commitInbounds(ctx, batch)
	if err == nil || len(batch) == 1 {
		for _, save := range batch {
			if !save.committed {
				save.err, save.patient, save.isNew = err, nil, false
			}
		}
		return
	}
	zerolog.Ctx(ctx).Warn().Err(err).Int("messages", len(batch)).Msg("Storing incoming messages together failed; storing each on its own")
	for _, save := range batch {
		if save.committed {
			continue
		}
		if save.err = s.commitInbounds(save.ctx, []*inboundSave{save}); save.err != nil {
			save.patient, save.isNew = nil, false
		}
	}
}

// commitInbounds commits the messages, marking each committed. On PostgreSQL the messages of
// known patients (nearly all) are written by one statement, committed on its own: one
// statement and one wait for the disk instead of BEGIN, three statements and COMMIT, each a
// round trip (two for a statement with parameters: lib/pq prepares, then executes) and a
// wake-up of the PostgreSQL backend. The others, and all on SQLite, go in one transaction
// with their new patients.
func (s *Store) commitInbounds(ctx context.Context, batch []*inboundSave) error {
	rest := batch
	if s.DB.Dialect == dbutil.Postgres {
		var err error
		if rest, err = s.insertKnownInbounds(ctx, batch); err != nil {
			return err
		}
	}
	if len(rest) == 0 {
		return nil
	}
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error { return s.insertInbounds(ctx, rest) })
	if err == nil {
		for _, save := range rest {
			save.committed = true
		}
	}
	return err
}

// insertKnownInbounds writes, in one statement outside any transaction (PostgreSQL commits it
// when it ends, waiting for the disk), the messages whose patient is recorded, with the
// records of those that are SMSes without media, and reads their patients. It returns the
// messages left for insertInbounds: those of patients not yet recorded.
//
// The statement's parts see the database as it was when it began: a patient recorded
// meanwhile by another writer counts as new, and a message retried by Twilio (its MessageSid
// already recorded) is committed as not new.
func (s *Store) insertKnownInbounds(ctx context.Context, batch []*inboundSave) (rest []*inboundSave, err error) {
	batch = slices.Clone(batch)
	slices.SortFunc(batch, func(a, b *inboundSave) int { // see insertInbounds
		return cmp.Or(strings.Compare(a.in.PatientID, b.in.PatientID), strings.Compare(a.in.MessageID, b.in.MessageID))
	})
	args := make([]any, 0, 2+knownInboundColumns*len(batch))
	args = append(args, InboundPending, StatusPending)
	for _, save := range batch {
		in := save.in
		var sendingAt, bodySealed any
		if !in.SendingAt.IsZero() {
			sendingAt = in.SendingAt.UnixMilli()
		}
		if save.msg != nil {
			bodySealed = save.bodySealed
		}
		args = append(args, in.MessageID, in.LoginID, in.PatientID, in.Channel, save.sealed, in.ReceivedAt.UnixMilli(), sendingAt, bodySealed)
	}
	rows, err := s.DB.Query(ctx, knownInboundsStatement(len(batch)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	patients := make(map[string]*Patient, len(batch))
	inserted := make(map[string]bool, len(batch))
	for rows.Next() {
		var messageID sql.NullString
		p, err := s.scanPatient(withColumn{rows, &messageID})
		if err != nil {
			return nil, err
		}
		patients[p.ID] = p
		if messageID.Valid {
			inserted[messageID.String] = true
		}
	}
	// Rows ends with the statement, once its commit is on disk (or failed).
	if err = rows.Err(); err != nil {
		return nil, err
	}
	for _, save := range batch {
		if save.patient = patients[save.in.PatientID]; save.patient == nil {
			rest = append(rest, save)
			continue
		}
		// A MessageSid twice in one statement is new once.
		save.isNew, save.committed = inserted[save.in.MessageID], true
		delete(inserted, save.in.MessageID)
	}
	return rest, nil
}

// knownInboundColumns is how many parameters each message takes in insertKnownInbounds.
const knownInboundColumns = 8

// knownInboundsStatements keeps insertKnownInbounds' statement for each number of messages:
// its text depends on nothing else, so it is written once per count, and pgx prepares one
// statement per count and connection.
var knownInboundsStatements [maxInboundGroup + 1]atomic.Pointer[string]

// knownInboundsStatement is insertKnownInbounds' statement for n messages. $1 is the inbound
// rows' state and $2 the records' status; then each message's row. The record of an SMS
// without media is the one Inbound.SMSMessage makes with no note and no media (all SaveInbound
// records): everything but its sealed body comes from the inbound row, so it costs one
// parameter, NULL for a message without a record. The patients read back are those of the
// rows, so a patient's id is not passed twice.
func knownInboundsStatement(n int) string {
	if n < len(knownInboundsStatements) {
		if q := knownInboundsStatements[n].Load(); q != nil {
			return *q
		}
	}
	var q strings.Builder
	q.WriteString(`WITH v (message_id, login_id, patient_id, channel, payload_sealed, received_at, sending_at, body_sealed) AS (VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		writeTypedPlaceholders(&q, 3+i*knownInboundColumns, "text", "text", "text", "text", "bytea", "bigint", "bigint", "bytea")
	}
	q.WriteString(`), inbound AS (
		INSERT INTO careline_inbound (message_id, login_id, patient_id, channel, payload_sealed, state, received_at, next_attempt_at, sending_at)
		SELECT message_id, login_id, patient_id, channel, payload_sealed, $1::text, received_at, received_at, sending_at FROM v
		WHERE EXISTS (SELECT 1 FROM careline_patient p WHERE p.id = v.patient_id)
		ON CONFLICT (message_id) DO NOTHING
		RETURNING message_id, patient_id), record AS (
		INSERT INTO careline_message (id, patient_id, from_patient, channel, sender_name, body_sealed, twilio_sid, mx_room_id, mx_event_id, mx_sender, status, created_at)
		SELECT message_id, patient_id, true, channel, '', body_sealed, message_id, '', '', '', $2::text, received_at FROM v
		WHERE body_sealed IS NOT NULL AND message_id IN (SELECT message_id FROM inbound)
		ON CONFLICT (id) DO NOTHING)
		SELECT ` + patientColumns + `, inbound.message_id
		FROM careline_patient p LEFT JOIN inbound ON inbound.patient_id = p.id WHERE p.id IN (SELECT patient_id FROM v)`)
	text := q.String()
	if n < len(knownInboundsStatements) {
		knownInboundsStatements[n].Store(&text)
	}
	return text
}

// withColumn scans a row's last column into extra, the others as the caller asks.
type withColumn struct {
	row   scannable
	extra any
}

func (w withColumn) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra)...) }

// writeTypedPlaceholders writes "($first::type, …)", one per type: in a VALUES list that is
// not an INSERT's own, PostgreSQL does not take the parameters' types from the columns.
func writeTypedPlaceholders(b *strings.Builder, first int, types ...string) {
	b.WriteByte('(')
	for i, t := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
		b.WriteString("::")
		b.WriteString(t)
	}
	b.WriteByte(')')
}

// insertInbounds records the messages and any new patients. With several messages, one
// statement reads their known patients. They go in (patient, message) order, so two writers
// (PostgreSQL) cannot deadlock on each other's new patients or repeated MessageSids.
func (s *Store) insertInbounds(ctx context.Context, batch []*inboundSave) error {
	patients := map[string]*Patient{}
	if len(batch) > 1 {
		var err error
		if patients, err = s.patientsOf(ctx, batch); err != nil {
			return err
		}
		batch = slices.Clone(batch)
		slices.SortFunc(batch, func(a, b *inboundSave) int {
			return cmp.Or(strings.Compare(a.in.PatientID, b.in.PatientID), strings.Compare(a.in.MessageID, b.in.MessageID))
		})
	}
	for _, save := range batch {
		in := save.in
		if patients[in.PatientID] == nil {
			p, err := s.GetOrCreatePatient(ctx, in.PatientID, in.LoginID, in.From)
			if err != nil {
				return err
			}
			patients[in.PatientID] = p
		}
		save.patient = patients[in.PatientID]
		// A MessageSid twice in one commit (Twilio retried while the first waited) is new once.
		var err error
		if save.isNew, err = s.insertInbound(ctx, in, save.sealed); err != nil {
			return err
		}
		if save.isNew && save.msg != nil {
			if _, err = s.insertMessage(ctx, save.msg, save.bodySealed); err != nil {
				return err
			}
		}
	}
	return nil
}

// patientsOf reads the known patients of the messages in one statement.
func (s *Store) patientsOf(ctx context.Context, batch []*inboundSave) (map[string]*Patient, error) {
	ids := make([]string, 0, len(batch))
	for _, save := range batch {
		if !slices.Contains(ids, save.in.PatientID) {
			ids = append(ids, save.in.PatientID)
		}
	}
	in, args := dbset.List(1, ids)
	rows, err := s.DB.Query(ctx, `SELECT `+patientColumns+` FROM careline_patient WHERE id IN `+in, args...)
	if err != nil {
		return nil, fmt.Errorf("reading patients: %w", err)
	}
	defer rows.Close()
	patients := make(map[string]*Patient, len(ids))
	for rows.Next() {
		p, err := s.scanPatient(rows)
		if err != nil {
			return nil, err
		}
		patients[p.ID] = p
	}
	return patients, rows.Err()
}

func (s *Store) insertInbound(ctx context.Context, in *Inbound, sealed []byte) (bool, error) {
	var sendingAt any
	if !in.SendingAt.IsZero() {
		sendingAt = in.SendingAt.UnixMilli()
	}
	res, err := s.DB.Exec(ctx, `
		INSERT INTO careline_inbound (message_id, login_id, patient_id, channel, payload_sealed, state, received_at, next_attempt_at, sending_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
		ON CONFLICT (message_id) DO NOTHING`,
		in.MessageID, in.LoginID, in.PatientID, in.Channel, sealed, in.State, in.ReceivedAt.UnixMilli(), sendingAt)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SavePortalInbound records a message the patient posted in the portal and queues it for
// the room, marked "sending" (see Inbound.SendingAt), in one transaction.
func (s *Store) SavePortalInbound(ctx context.Context, m *Message, loginID string) (*Inbound, error) {
	now := s.now()
	in := &Inbound{MessageID: m.ID, LoginID: loginID, PatientID: m.PatientID, Channel: ChannelPortal,
		State: InboundPending, ReceivedAt: now, SendingAt: now}
	m.Status = StatusPending
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.SaveMessage(ctx, m); err != nil {
			return err
		}
		_, err := s.insertInbound(ctx, in, s.Seal.Seal([]byte("{}"), inboundContext(in.PatientID, in.MessageID)))
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
	in, ids := dbset.In(s.DB.Dialect, 2, messageIDs)
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET sending_at=$1 WHERE message_id `+in, append([]any{s.nowMilli()}, ids...)...)
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
	if s.DB.Dialect == dbutil.Postgres {
		// One statement for both tables: one round trip fewer in the finisher's commit.
		_, err := s.DB.Exec(ctx, `WITH inbound AS (
			UPDATE careline_inbound SET state='bridged', bridged_at=$1, payload_sealed=$2, last_error=NULL WHERE message_id = ANY($3))
			UPDATE careline_message SET status='received' WHERE status='pending' AND id = ANY($3)`, s.nowMilli(), []byte{}, messageIDs)
		if err != nil {
			return fmt.Errorf("marking incoming messages bridged: %w", err)
		}
		return nil
	}
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		in, ids := dbset.In(s.DB.Dialect, 3, messageIDs)
		_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET state='bridged', bridged_at=$1, payload_sealed=$2, last_error=NULL
			WHERE message_id `+in, append([]any{s.nowMilli(), []byte{}}, ids...)...)
		if err == nil {
			in, ids := dbset.In(s.DB.Dialect, 1, messageIDs)
			_, err = s.DB.Exec(ctx, `UPDATE careline_message SET status='received' WHERE status='pending' AND id `+in, ids...)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("marking incoming messages bridged: %w", err)
	}
	return nil
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

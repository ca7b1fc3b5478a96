// Package audit keeps careline's audit trail: an append-only record of every event that
// touched a patient's data — who did what, when, by which channel — and never message content.
//
// Each entry carries an HMAC-SHA256 over the previous entry's hash and all of its own fields,
// so an entry that is edited, deleted or moved breaks the chain, and someone with only database
// access cannot compute a new chain over their changes. Verify walks the chain and says where
// it breaks.
package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// DefaultRetentionYears is how long audit entries are kept by default (HIPAA asks for six
// years), independently of how long messages are kept.
const DefaultRetentionYears = 6

// Entry is one audited event.
//
// Callers must never put message content, codes, tokens, patient names or phone numbers in
// any field: the trail is kept for years and exported to people who need not see them. Detail
// is for short facts like "status=delivered" or "attempt 2 of 5".
type Entry struct {
	Seq       int64     // assigned by Append: 1, 2, 3, … without gaps
	At        time.Time // assigned by Append: UTC, millisecond precision
	Actor     string    // Matrix user ID, "patient:<id>", "twilio", "system", "cli:<OS user>", "api:<token name>"
	Action    string    // e.g. "message.sent", "code.failed", "portal.view", "audit.exported"
	PatientID string    // opaque patient id, or ""
	Channel   string    // "sms", "secure", "portal", "plain" or ""
	TwilioSID string    // Twilio message SID, or ""
	Detail    string    // short, never message content and never a phone number
	PrevHash  []byte    // Hash of the entry before (empty for the first entry ever written)
	Hash      []byte    // HMAC-SHA256(key, canonical encoding of PrevHash and all fields above)
}

// MaxFieldLen bounds each text field, so that a caller passing a message body by mistake is
// refused rather than recorded for six years.
const MaxFieldLen = 512

// Log is the audit trail in careline's database.
type Log struct {
	db        *dbutil.Database
	key       []byte
	log       zerolog.Logger
	now       func() time.Time
	retention time.Duration // entries younger than this are never purged; see SetRetention
	// known is the chain's head as this Log last wrote it, which the next append assumes
	// (see appendAtKnownHead); nil when there is none to assume.
	known atomic.Pointer[head]
}

// KeyFromSecret derives the audit key from a configured secret (network.privacy.identity_key).
// The label keeps it independent of every other key derived from the same secret.
func KeyFromSecret(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("careline audit v1"))
	return m.Sum(nil)
}

// New returns the audit trail in db, keyed with key (see KeyFromSecret); call Upgrade before
// use. Its tables have their own version table, careline_audit_version.
func New(db *dbutil.Database, key []byte, log zerolog.Logger) *Log {
	if len(key) < 32 {
		panic("audit: key must be at least 32 bytes")
	}
	return &Log{
		db:        db.Child("careline_audit_version", table, dbutil.ZeroLogger(log)),
		key:       bytes.Clone(key),
		log:       log,
		now:       time.Now,
		retention: DefaultRetentionYears * 365 * 24 * time.Hour,
	}
}

// SetRetention sets how long entries are kept (network.retention.audit). PurgeBefore refuses
// to delete younger entries and Verify reports a purge that did.
func (l *Log) SetRetention(d time.Duration) {
	l.retention = d
}

// Upgrade creates or migrates the audit tables.
func (l *Log) Upgrade(ctx context.Context) error {
	return l.db.Upgrade(ctx)
}

// Append records e, assigning its Seq, At, PrevHash and Hash, and returns the stored entry.
//
// It is safe to call from many goroutines and many processes sharing the database. Called with
// a ctx that carries a transaction of the same database, the entry joins it, so it is kept
// exactly when the audited change is.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	entries := []Entry{e}
	if err := l.AppendAll(ctx, entries); err != nil {
		return Entry{}, err
	}
	return entries[0], nil
}

// maxEntriesPerInsert keeps one INSERT of a batch well below the parameter limits of SQLite
// (32,766) and PostgreSQL (65,535).
const maxEntriesPerInsert = 500

// AppendAll records entries in order, like Append for each, assigning their Seq, At, PrevHash
// and Hash in place. The chain's head is locked, advanced and written once for all of them:
// appends serialise on the head row, so one lock per batch instead of one per entry is what
// lets many messages' entries share a commit.
func (l *Log) AppendAll(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		e := &entries[i]
		if e.Actor == "" || e.Action == "" {
			return errors.New("audit: actor and action are required")
		}
		for _, f := range [...]string{e.Actor, e.Action, e.PatientID, e.Channel, e.TwilioSID, e.Detail} {
			if len(f) > MaxFieldLen {
				return fmt.Errorf("audit: a field of the %s entry is longer than %d bytes", e.Action, MaxFieldLen)
			}
		}
	}
	return l.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if done, err := l.appendAtKnownHead(ctx, entries); done || err != nil {
			return err
		}
		// Write before reading anything: the UPDATE takes the head row's lock on PostgreSQL and
		// the write lock on SQLite (even in a deferred transaction), so no two writers, in
		// this process or another, ever see the same head.
		var last int64
		var prev []byte
		err := l.db.QueryRow(ctx, `
			UPDATE careline_audit_head SET last_seq = last_seq + $1 WHERE id = 1
			RETURNING last_seq, last_hash`, len(entries)).Scan(&last, &prev)
		if err != nil {
			return fmt.Errorf("audit: locking the head: %w", err)
		}
		// Taken under the lock, so entries written by one clock never go back in time.
		l.chain(entries, last-int64(len(entries)), prev, l.now())
		for chunk := range slices.Chunk(entries, maxEntriesPerInsert) {
			query, params := l.insertEntries(chunk)
			if _, err = l.db.Exec(ctx, query, params...); err != nil {
				return fmt.Errorf("audit: inserting entries %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
			}
		}
		last, prev = entries[len(entries)-1].Seq, entries[len(entries)-1].Hash
		if _, err = l.db.Exec(ctx, `UPDATE careline_audit_head SET last_hash = $1 WHERE id = 1`, prev); err != nil {
			return err
		}
		l.known.Store(&head{lastSeq: last, lastHash: prev})
		return nil
	})
}

// chain assigns the entries their places after the entry seq with hash prev, at at.
func (l *Log) chain(entries []Entry, seq int64, prev []byte, at time.Time) {
	at = at.UTC().Truncate(time.Millisecond)
	// One MAC and one buffer for the batch, each entry hashed as hash does.
	mac := hmac.New(sha256.New, l.key)
	var buf []byte
	for i := range entries {
		e := &entries[i]
		e.Seq, e.At = seq+1+int64(i), at
		e.PrevHash = append([]byte{}, prev...) // never nil: lib/pq would store nil as NULL
		buf = appendEncoding(buf[:0], e)
		mac.Reset()
		mac.Write(buf)
		e.Hash = mac.Sum(nil)
		prev = e.Hash
	}
}

// appendAtKnownHead appends the entries after the head this Log wrote last, in one statement
// on PostgreSQL (two on SQLite) instead of AppendAll's three: it moves the head on only if the
// head is still exactly that one (its seq and hash), which also takes the head's lock as
// AppendAll's first UPDATE does. It reports false, having written nothing, when the head
// moved meanwhile (another process, or a transaction of this one that rolled back), and
// AppendAll then goes the long way. The entries' time is taken before the lock, but after
// the write that made the head known, so a later entry is never dated before an earlier one
// of this Log; of another writer's, it may be by as long as its clock and this one's differ,
// as before.
func (l *Log) appendAtKnownHead(ctx context.Context, entries []Entry) (bool, error) {
	known := l.known.Load()
	if known == nil || len(entries) > maxEntriesPerInsert {
		return false, nil
	}
	l.chain(entries, known.lastSeq, known.lastHash, l.now())
	last, hash := entries[len(entries)-1].Seq, entries[len(entries)-1].Hash
	if l.db.Dialect == dbutil.Postgres {
		_, params := l.insertEntries(entries)
		res, err := l.db.Exec(ctx, insertAtKnownHeadPostgres, append(params, last, hash, known.lastSeq, known.lastHash)...)
		if err != nil {
			return false, fmt.Errorf("audit: inserting entries %d to %d: %w", entries[0].Seq, last, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return false, err
		}
	} else {
		res, err := l.db.Exec(ctx, `UPDATE careline_audit_head SET last_seq = $1, last_hash = $2
			WHERE id = 1 AND last_seq = $3 AND last_hash = $4`, last, hash, known.lastSeq, known.lastHash)
		if err != nil {
			return false, fmt.Errorf("audit: moving the head: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return false, err
		}
		query, params := l.insertEntries(entries)
		if _, err = l.db.Exec(ctx, query, params...); err != nil {
			return false, fmt.Errorf("audit: inserting entries %d to %d: %w", entries[0].Seq, last, err)
		}
	}
	l.known.Store(&head{lastSeq: last, lastHash: hash})
	return true, nil
}

// insertEntries is the INSERT of entries, with its arguments. On PostgreSQL the entries go
// as one array per column, so the statement is the same for any number of them (see package
// dbset); on SQLite as rows of VALUES.
func (l *Log) insertEntries(entries []Entry) (string, []any) {
	if l.db.Dialect != dbutil.Postgres {
		return insertEntriesSQLite.Build([0]any{}, entryRows(entries))
	}
	seq, at := make([]int64, len(entries)), make([]int64, len(entries))
	var text [6][]string
	prev, hash := make([][]byte, len(entries)), make([][]byte, len(entries))
	for i := range text {
		text[i] = make([]string, len(entries))
	}
	for i, e := range entries {
		seq[i], at[i], prev[i], hash[i] = e.Seq, e.At.UnixMilli(), e.PrevHash, e.Hash
		for j, f := range [...]string{e.Actor, e.Action, e.PatientID, e.Channel, e.TwilioSID, e.Detail} {
			text[j][i] = f
		}
	}
	return insertEntriesPostgres, []any{seq, at, text[0], text[1], text[2], text[3], text[4], text[5], prev, hash}
}

const insertEntriesPostgres = `
	INSERT INTO careline_audit (seq, at, actor, action, patient_id, channel, twilio_sid, detail, prev_hash, hash)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::bytea[], $10::bytea[])`

// insertAtKnownHeadPostgres is insertEntriesPostgres behind a move of the head from a known
// one ($13, $14) to its last entry ($11, $12); it inserts nothing when the head is elsewhere.
const insertAtKnownHeadPostgres = `
	WITH head AS (UPDATE careline_audit_head SET last_seq = $11, last_hash = $12 WHERE id = 1 AND last_seq = $13 AND last_hash = $14
		RETURNING 1)` + insertEntriesPostgres + `
	WHERE EXISTS (SELECT 1 FROM head)`

// entryRow is an entry as one row of a multi-row INSERT.
type entryRow struct{ *Entry }

func (r entryRow) GetMassInsertValues() [10]any {
	e := r.Entry
	return [10]any{e.Seq, e.At.UnixMilli(), e.Actor, e.Action, e.PatientID, e.Channel, e.TwilioSID, e.Detail, e.PrevHash, e.Hash}
}

func entryRows(entries []Entry) []entryRow {
	rows := make([]entryRow, len(entries))
	for i := range entries {
		rows[i] = entryRow{&entries[i]}
	}
	return rows
}

var insertEntriesSQLite = dbutil.NewMassInsertBuilder[entryRow, [0]any](`
	INSERT INTO careline_audit (seq, at, actor, action, patient_id, channel, twilio_sid, detail, prev_hash, hash)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)")

// encode is the canonical form of an entry that the hash covers. Every variable-length field
// is length-prefixed, so two different entries never encode alike ("ab"+"c" vs "a"+"bc").
func encode(e *Entry) []byte { return appendEncoding(nil, e) }

// appendEncoding appends encode's form of e to b.
func appendEncoding(b []byte, e *Entry) []byte {
	b = append(b, "careline audit entry v1\x00"...)
	b = appendField(b, e.PrevHash)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixMilli()))
	for _, f := range [...]string{e.Actor, e.Action, e.PatientID, e.Channel, e.TwilioSID, e.Detail} {
		b = appendField(b, f)
	}
	return b
}

func appendField[T ~[]byte | ~string](b []byte, f T) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

func (l *Log) hash(e *Entry) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write(encode(e))
	return m.Sum(nil)
}

// valid reports, in constant time, whether e's stored hash is the one its fields call for.
func (l *Log) valid(e *Entry) bool {
	return hmac.Equal(l.hash(e), e.Hash)
}

type head struct {
	lastSeq      int64
	lastHash     []byte
	purgedSeq    int64
	purgedHash   []byte
	purgedCutoff int64 // Unix ms: the purge deleted entries written before this
	purgedMAC    []byte
}

func (l *Log) head(ctx context.Context) (head, error) {
	var h head
	err := l.db.QueryRow(ctx, `
		SELECT last_seq, last_hash, purged_seq, purged_hash, purged_cutoff, purged_mac FROM careline_audit_head WHERE id = 1`).
		Scan(&h.lastSeq, &h.lastHash, &h.purgedSeq, &h.purgedHash, &h.purgedCutoff, &h.purgedMAC)
	if err != nil {
		return head{}, fmt.Errorf("audit: reading the head: %w", err)
	}
	return h, nil
}

// scan calls fn for each entry matching where, in seq order.
func (l *Log) scan(ctx context.Context, where string, args []any, fn func(*Entry) error) error {
	rows, err := l.db.Query(ctx, `
		SELECT seq, at, actor, action, patient_id, channel, twilio_sid, detail, prev_hash, hash
		FROM careline_audit `+where+` ORDER BY seq`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var at int64
		err = rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.PatientID, &e.Channel, &e.TwilioSID, &e.Detail, &e.PrevHash, &e.Hash)
		if err != nil {
			return err
		}
		e.At = time.UnixMilli(at).UTC()
		if err = fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// anchorMAC authenticates the purge anchor: without the key nobody can move it forward to hide
// entries deleted from the oldest end.
func (l *Log) anchorMAC(seq int64, hash []byte, cutoffMillis int64) []byte {
	b := []byte("careline audit anchor v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = appendField(b, hash)
	b = binary.BigEndian.AppendUint64(b, uint64(cutoffMillis))
	m := hmac.New(sha256.New, l.key)
	m.Write(b)
	return m.Sum(nil)
}

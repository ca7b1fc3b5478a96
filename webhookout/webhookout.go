// Package webhookout delivers careline's events to the clinic's integration: JSON POSTs to
// network.api.webhook_url signed with network.api.webhook_secret, stored before they are sent
// and retried with backoff until the receiver answers 2xx.
package webhookout

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/util/random"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body.
const SignatureHeader = "X-Careline-Signature"

// Sign returns the signature header value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header value in constant time (for receivers and tests).
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Event is what a webhook reports. Fields hold ids and codes only.
type Event struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"` // appointment.confirmed, appointment.declined, message.failed
	CreatedAt     time.Time `json:"created_at"`
	AppointmentID string    `json:"appointment_id,omitempty"`
	AnsweredVia   string    `json:"answered_via,omitempty"` // sms or portal
	MessageID     string    `json:"message_id,omitempty"`
	Error         string    `json:"error,omitempty"` // why a message failed, in words
}

// Queue is the durable outgoing webhook queue.
type Queue struct {
	db     *dbutil.Database
	url    string
	secret string
	client *http.Client
	wake   chan struct{}
	// Now is the queue's clock; tests replace it.
	Now func() time.Time
}

// New returns the queue in db (own version table careline_webhookout_version); url "" turns
// webhooks off (events are then not stored).
func New(db *dbutil.Database, url, secret string, log zerolog.Logger) *Queue {
	return &Queue{
		db:     db.Child("careline_webhookout_version", table, dbutil.ZeroLogger(log)),
		url:    url,
		secret: secret,
		client: &http.Client{Timeout: 15 * time.Second},
		wake:   make(chan struct{}, 1),
		Now:    time.Now,
	}
}

// Upgrade creates or migrates the queue's table.
func (q *Queue) Upgrade(ctx context.Context) error { return q.db.Upgrade(ctx) }

// Add stores an event for delivery. Called with a ctx carrying a transaction of the same
// database, it joins it, so the event is kept exactly when the change it reports is; call
// Wake after that transaction commits.
func (q *Queue) Add(ctx context.Context, e Event) error {
	if q.url == "" {
		return nil
	}
	if e.ID == "" {
		e.ID = "evt_" + random.String(20)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = q.Now().UTC().Truncate(time.Millisecond)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	now := q.Now().UnixMilli()
	err = q.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := q.db.Exec(ctx, `INSERT INTO careline_webhook_out (event_type, body, created_at, next_attempt_at)
			VALUES ($1, $2, $3, $3)`, e.Type, string(body), now)
		return err
	})
	if err == nil {
		q.Wake()
	}
	return err
}

// Wake makes the queue look for events at once. Add wakes it too, but an Add inside a caller's
// transaction is only visible once that commits: such callers call Wake after committing.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers stored events until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	if q.url == "" {
		return
	}
	for {
		wait := q.deliverDue(ctx)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-q.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// backoff is the wait after the nth failed attempt: 2 s doubling up to 10 minutes.
func backoff(attempts int) time.Duration {
	d := 2 * time.Second << min(attempts-1, 9)
	return min(d, 10*time.Minute)
}

// deliverDue sends every due event, oldest first, and returns how long to wait for the next.
func (q *Queue) deliverDue(ctx context.Context) time.Duration {
	log := zerolog.Ctx(ctx)
	rows, err := q.db.Query(ctx, `SELECT seq, event_type, body, attempts FROM careline_webhook_out
		WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY seq LIMIT 100`, q.Now().UnixMilli())
	if err != nil {
		log.Err(err).Msg("Could not read the outgoing webhook queue")
		return 5 * time.Second
	}
	type pending struct {
		seq      int64
		kind     string
		body     string
		attempts int
	}
	var due []pending
	for rows.Next() {
		var p pending
		if err = rows.Scan(&p.seq, &p.kind, &p.body, &p.attempts); err != nil {
			break
		}
		due = append(due, p)
	}
	rows.Close()
	for _, p := range due {
		err := q.post(ctx, []byte(p.body))
		now := q.Now()
		if err == nil {
			_, err = q.db.Exec(ctx, `UPDATE careline_webhook_out SET delivered_at=$2, attempts=$3, last_error=NULL WHERE seq=$1`, p.seq, now.UnixMilli(), p.attempts+1)
			log.Info().Int64("seq", p.seq).Str("event", p.kind).Int("attempt", p.attempts+1).Msg("Webhook delivered")
			if err != nil {
				log.Err(err).Msg("Could not record a delivered webhook")
			}
			continue
		}
		next := now.Add(backoff(p.attempts + 1))
		log.Warn().Err(err).Int64("seq", p.seq).Str("event", p.kind).Int("attempt", p.attempts+1).Time("next_attempt", next).
			Msg("Webhook not accepted; will retry")
		_, _ = q.db.Exec(ctx, `UPDATE careline_webhook_out SET attempts=$2, next_attempt_at=$3, last_error=$4 WHERE seq=$1`,
			p.seq, p.attempts+1, next.UnixMilli(), err.Error())
	}
	var next *int64
	if err := q.db.QueryRow(ctx, `SELECT MIN(next_attempt_at) FROM careline_webhook_out WHERE delivered_at IS NULL`).Scan(&next); err != nil || next == nil {
		return time.Minute
	}
	return min(max(time.UnixMilli(*next).Sub(q.Now()), 0), time.Minute)
}

func (q *Queue) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "careline-webhook/1")
	req.Header.Set(SignatureHeader, Sign(q.secret, body))
	resp, err := q.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// PurgeDelivered deletes events delivered before cutoff.
func (q *Queue) PurgeDelivered(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := q.db.Exec(ctx, `DELETE FROM careline_webhook_out WHERE delivered_at < $1`, cutoff.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

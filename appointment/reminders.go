package appointment

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Due is a reminder whose time has come.
type Due struct {
	Appointment *Appointment
	Offset      time.Duration
}

// ErrNotSendable wraps the reason a reminder cannot be sent (e.g. the template needs a value
// the appointment lacks); the reminder is then marked not_sent instead of being retried.
var ErrNotSendable = errors.New("reminder cannot be sent")

// Sender sends reminders. Send must call mark, with the message it created, inside the
// database transaction that stores that message, so a reminder is sent once.
type Sender interface {
	SendReminder(ctx context.Context, due *Due, mark func(ctx context.Context, messageID string) error) error
	// ReminderNotSent tells staff why a reminder did not go out.
	ReminderNotSent(ctx context.Context, due *Due, reason error)
}

// MaxWait bounds how long the runner sleeps between looks at the table, so a reminder another
// process scheduled (or a clock that jumped) is still sent within a minute of its time.
const MaxWait = time.Minute

// Runner sends reminders as they fall due.
type Runner struct {
	Store  *Store
	Sender Sender
	wake   chan struct{}
}

// NewRunner returns a runner; call Run in a goroutine, and Wake after scheduling changes.
func NewRunner(store *Store, sender Sender) *Runner {
	return &Runner{Store: store, Sender: sender, wake: make(chan struct{}, 1)}
}

// Wake makes the runner look at the schedule again at once.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run sends due reminders until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	for {
		if err := r.SendDue(ctx); err != nil && ctx.Err() == nil {
			log.Err(err).Msg("Sending due appointment reminders failed; trying again shortly")
		}
		wait := MaxWait
		if next, err := r.Store.NextDue(ctx); err == nil && !next.IsZero() {
			wait = min(max(next.Sub(r.Store.Now()), 0), MaxWait)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// SendDue sends every reminder due at the store's clock. A reminder whose appointment has
// started meanwhile (careline was down) is skipped, not sent late.
func (r *Runner) SendDue(ctx context.Context) error {
	due, err := r.Store.due(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range due {
		id, offset := d.Appointment.ID, d.Offset
		err := r.Sender.SendReminder(ctx, d, func(ctx context.Context, messageID string) error {
			return r.Store.markSent(ctx, id, offset, messageID)
		})
		switch {
		case errors.Is(err, ErrNotSendable):
			if merr := r.Store.setState(ctx, id, offset, NotSent, err.Error()); merr != nil {
				errs = append(errs, merr)
				continue
			}
			r.Sender.ReminderNotSent(ctx, d, err)
		case err != nil:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// due returns the reminders due now; ones whose appointment already started are skipped.
func (s *Store) due(ctx context.Context) ([]*Due, error) {
	now := s.Now().UnixMilli()
	if _, err := s.db.Exec(ctx, `UPDATE careline_reminder SET state=$1, note='the appointment had started before it could be sent'
		WHERE state=$2 AND due_at <= $3 AND appointment_id IN (SELECT id FROM careline_appointment WHERE start_at <= $3)`,
		Skipped, Scheduled, now); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT appointment_id, offset_ms FROM careline_reminder WHERE state=$1 AND due_at <= $2 ORDER BY due_at LIMIT 100`, Scheduled, now)
	if err != nil {
		return nil, err
	}
	type key struct {
		id     string
		offset int64
	}
	var keys []key
	for rows.Next() {
		var k key
		if err = rows.Scan(&k.id, &k.offset); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err = rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*Due, 0, len(keys))
	for _, k := range keys {
		a, err := s.get(ctx, k.id)
		if err != nil {
			return nil, err
		}
		out = append(out, &Due{Appointment: a, Offset: time.Duration(k.offset) * time.Millisecond})
	}
	return out, nil
}

// markSent records a reminder as sent, only if it is still scheduled (not withdrawn meanwhile).
func (s *Store) markSent(ctx context.Context, id string, offset time.Duration, messageID string) error {
	res, err := s.db.Exec(ctx, `UPDATE careline_reminder SET state=$3, sent_at=$4, message_id=$5, note=NULL
		WHERE appointment_id=$1 AND offset_ms=$2 AND state=$6`, id, offset.Milliseconds(), Sent, s.Now().UnixMilli(), messageID, Scheduled)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("the reminder was withdrawn while it was being sent")
	}
	return nil
}

// NextDue is the time of the earliest scheduled reminder, or zero.
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	var next *int64
	err := s.db.QueryRow(ctx, `SELECT MIN(due_at) FROM careline_reminder WHERE state=$1`, Scheduled).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return time.UnixMilli(*next), nil
}

package schedule

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Outcome is what a delivery did with a due send.
type Outcome struct {
	State  string // Sent, Refused or Failed
	Detail string // in words, for staff and the record (no message content)
}

// Runner hands due sends to Deliver. Deliver runs inside a database transaction that also
// finishes the send, so it must only write to the database (e.g. enqueue in the outbox);
// a returned error rolls both back and the send is tried again. After runs once the
// transaction has committed, for notices in Matrix.
type Runner struct {
	Store   *Store
	Deliver func(ctx context.Context, send *Send) (Outcome, error)
	After   func(ctx context.Context, send *Send, outcome Outcome)
	// Poll bounds how long the runner sleeps; sends are due within Poll (plus the time to
	// deliver those before them). Default 30 s, so a send goes within a minute of its time.
	Poll time.Duration

	wake chan struct{}
}

// retryAfter is the wait after a delivery failed for a reason that may pass (the database).
const retryAfter = 5 * time.Second

// batch bounds how many due sends are read at once.
const batch = 50

// Wake makes the runner look again now (after Add, so an early send is not missed).
func (r *Runner) Wake() {
	if r.wake == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start runs the runner until ctx ends; the returned channel closes when it has stopped.
func (r *Runner) Start(ctx context.Context) <-chan struct{} {
	if r.Poll <= 0 {
		r.Poll = 30 * time.Second
	}
	r.wake = make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	return done
}

func (r *Runner) run(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	for ctx.Err() == nil {
		wait := r.Poll
		if err := r.RunDue(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Err(err).Msg("Could not send due scheduled texts; will retry")
			wait = retryAfter
		} else if next, err := r.Store.NextDue(ctx); err == nil && !next.IsZero() {
			wait = min(max(time.Until(next), 10*time.Millisecond), r.Poll)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// RunDue delivers every send due at now. Each goes in its own transaction; the first error
// stops the round (the send stays pending and is tried again).
func (r *Runner) RunDue(ctx context.Context, now time.Time) error {
	for {
		due, err := r.Store.Due(ctx, now, batch)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, send := range due {
			if err = r.deliverOne(ctx, send); err != nil {
				return err
			}
		}
		if len(due) < batch {
			return nil
		}
	}
}

func (r *Runner) deliverOne(ctx context.Context, send *Send) error {
	log := zerolog.Ctx(ctx).With().Str("scheduled_id", send.ID).Str("purpose", send.Purpose).Logger()
	var (
		outcome  Outcome
		finished bool
	)
	err := r.Store.InTransaction(ctx, func(ctx context.Context) error {
		var err error
		if outcome, err = r.Deliver(ctx, send); err != nil {
			return err
		}
		finished, err = r.Store.Finish(ctx, send.ID, outcome.State, outcome.Detail)
		if err == nil && !finished {
			// Cancelled between reading it and now: undo the delivery.
			return errCancelledMeanwhile
		}
		return err
	})
	if err == errCancelledMeanwhile {
		log.Info().Msg("Scheduled text was cancelled as it fell due; not sent")
		return nil
	} else if err != nil {
		return err
	}
	log.Info().Str("state", outcome.State).Msg("Scheduled text handled")
	if r.After != nil {
		send.State, send.Outcome = outcome.State, outcome.Detail
		r.After(ctx, send, outcome)
	}
	return nil
}

type cancelledMeanwhile struct{}

func (cancelledMeanwhile) Error() string { return "the scheduled send was cancelled meanwhile" }

var errCancelledMeanwhile error = cancelledMeanwhile{}

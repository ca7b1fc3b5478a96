package broadcast

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Engine sends broadcasts. Prepare (optional) runs outside any transaction and may do slow,
// idempotent work such as opening the patient's room, or settle the target (set State).
// Deliver runs inside the transaction that records the target's outcome, so it must only
// write to the database; it sets t.State (Sent or a skip) and may set PatientID, MessageID
// and Detail. After (optional) runs once that transaction committed.
type Engine struct {
	Store    *Store
	Prepare  func(ctx context.Context, b *Broadcast, t *Target) error
	Deliver  func(ctx context.Context, b *Broadcast, t *Target) error
	After    func(ctx context.Context, b *Broadcast, t *Target)
	Progress func(ctx context.Context, b *Broadcast, c Counts) // every ProgressEvery and at the end
	// ProgressEvery is the time between progress reports (default 30 s).
	ProgressEvery time.Duration
	// Pace is the least time between two sends, so a broadcast never fills the outbox ahead
	// of staff's own messages (the login's rate limit).
	Pace time.Duration
	// RetryAfter is the wait before trying a target again after an error (default 5 s);
	// after MaxAttempts errors the target is recorded as failed.
	RetryAfter  time.Duration
	MaxAttempts int

	mu      sync.Mutex
	running map[string]bool
}

// Start runs a broadcast in the background until it is done or ctx ends. Starting one that
// already runs does nothing.
func (e *Engine) Start(ctx context.Context, b *Broadcast) {
	e.mu.Lock()
	if e.running == nil {
		e.running = map[string]bool{}
	}
	if e.running[b.ID] {
		e.mu.Unlock()
		return
	}
	e.running[b.ID] = true
	e.mu.Unlock()
	go func() {
		defer func() {
			e.mu.Lock()
			delete(e.running, b.ID)
			e.mu.Unlock()
		}()
		log := zerolog.Ctx(ctx).With().Str("broadcast_id", b.ID).Logger()
		if err := e.Run(log.WithContext(ctx), b); err != nil && ctx.Err() == nil {
			log.Err(err).Msg("Broadcast stopped")
		}
	}()
}

// Resume starts every broadcast a crash or a stop left unfinished.
func (e *Engine) Resume(ctx context.Context) error {
	unfinished, err := e.Store.Unfinished(ctx)
	if err != nil {
		return err
	}
	for _, b := range unfinished {
		zerolog.Ctx(ctx).Info().Str("broadcast_id", b.ID).Msg("Resuming a broadcast interrupted by a restart")
		e.Start(ctx, b)
	}
	return nil
}

// Run sends the broadcast's pending targets in order and returns when all are settled (or
// ctx ends).
func (e *Engine) Run(ctx context.Context, b *Broadcast) error {
	progressEvery := e.ProgressEvery
	if progressEvery <= 0 {
		progressEvery = 30 * time.Second
	}
	retryAfter, maxAttempts := e.RetryAfter, e.MaxAttempts
	if retryAfter <= 0 {
		retryAfter = 5 * time.Second
	}
	if maxAttempts <= 0 {
		maxAttempts = 5
	}
	lastProgress := time.Now()
	var nextSend time.Time
	attempts := map[int]int{}
	for {
		t, err := e.Store.nextPending(ctx, b.ID)
		if err != nil {
			return err
		}
		if t == nil {
			break
		}
		if wait := time.Until(nextSend); wait > 0 && !sleep(ctx, wait) {
			return ctx.Err()
		}
		err = e.settle(ctx, b, t)
		if err != nil {
			attempts[t.Position]++
			zerolog.Ctx(ctx).Warn().Err(err).Int("position", t.Position).Int("attempt", attempts[t.Position]).Msg("Could not send to a broadcast target; will retry")
			if attempts[t.Position] < maxAttempts {
				if !sleep(ctx, retryAfter) {
					return ctx.Err()
				}
				continue
			}
			t.State, t.Detail = Failed, err.Error()
			if err = e.record(ctx, b, t, nil); err != nil {
				return err
			}
		}
		if t.State == Sent {
			nextSend = time.Now().Add(e.Pace)
		}
		if e.Progress != nil && time.Since(lastProgress) >= progressEvery {
			lastProgress = time.Now()
			if c, err := e.Store.Counts(ctx, b.ID); err == nil {
				e.Progress(ctx, b, c)
			}
		}
	}
	if err := e.Store.markDone(ctx, b.ID); err != nil {
		return err
	}
	c, err := e.Store.Counts(ctx, b.ID)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int("sent", c.Sent).Int("failed", c.Failed).Int("total", c.Total).Msg("Broadcast done")
	if e.Progress != nil {
		e.Progress(ctx, b, c)
	}
	return nil
}

// settle prepares and delivers one target, recording its outcome.
func (e *Engine) settle(ctx context.Context, b *Broadcast, t *Target) error {
	if e.Prepare != nil {
		if err := e.Prepare(ctx, b, t); err != nil {
			return err
		}
	}
	return e.record(ctx, b, t, e.Deliver)
}

// record runs deliver (when the target is still pending) and stores the outcome in one
// transaction, then calls After.
func (e *Engine) record(ctx context.Context, b *Broadcast, t *Target, deliver func(context.Context, *Broadcast, *Target) error) error {
	var recorded bool
	err := e.Store.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if t.State == Pending && deliver != nil {
			if err := deliver(ctx, b, t); err != nil {
				return err
			}
		}
		if t.State == Pending {
			t.State, t.Detail = Failed, "the delivery settled nothing"
		}
		var err error
		recorded, err = e.Store.finish(ctx, t)
		return err
	})
	if err == nil && recorded && e.After != nil {
		e.After(ctx, b, t)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

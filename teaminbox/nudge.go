package teaminbox

import (
	"context"
	"time"
)

// longOverdue bounds the office-hours count: a wait this long is due whatever the hours.
const longOverdue = 31 * 24 * time.Hour

// NudgeDue reports whether a wait that began at since has lasted after by now. With open set
// (the clinic's office hours) only open time counts, to the minute.
func NudgeDue(since, now time.Time, after time.Duration, open func(time.Time) bool) bool {
	elapsed := now.Sub(since)
	if open == nil || elapsed >= longOverdue {
		return elapsed >= after
	}
	var counted time.Duration
	for t := since; t.Before(now); t = t.Add(time.Minute) {
		if open(t) {
			counted += min(time.Minute, now.Sub(t))
			if counted >= after {
				return true
			}
		}
	}
	return false
}

// Unnudged lists the waiting conversations whose current wait has not been nudged, oldest first.
func (s *Store) Unnudged(ctx context.Context) ([]*Conversation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM careline_teaminbox_conversation
		WHERE waiting_since IS NOT NULL AND closed_at IS NULL AND nudged_at IS NULL ORDER BY waiting_since`)
}

// MarkNudged takes the one nudge of the wait that began at waitingSince. It reports false when
// that wait was already nudged, answered or closed meanwhile, so a nudge goes at most once.
func (s *Store) MarkNudged(ctx context.Context, patientID string, waitingSince, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE careline_teaminbox_conversation SET nudged_at=$3
		WHERE patient_id=$1 AND waiting_since=$2 AND nudged_at IS NULL AND closed_at IS NULL`,
		patientID, waitingSince.UnixMilli(), at.UnixMilli())
	return changed(res, err)
}

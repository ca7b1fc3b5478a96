package store

import (
	"context"
	"fmt"
	"time"
)

// heldMark starts the last_error of a held message, so holds can be told from retries.
const heldMark = "held: "

// HoldInbound puts off a stored incoming message until at without counting a failed attempt:
// it waits for a place (network.inbound.max_new_patients_per_hour), it did not fail.
func (s *Store) HoldInbound(ctx context.Context, messageID string, at time.Time, reason string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET next_attempt_at=$2, last_error=$3 WHERE message_id=$1 AND state='pending'`,
		messageID, at.UnixMilli(), heldMark+reason)
	if err != nil {
		return fmt.Errorf("holding an incoming message: %w", err)
	}
	return nil
}

// ReleaseHeldInbound makes every held message due now, at start: the admin may have raised
// the limit, and each is admitted or held again by the limit in force.
func (s *Store) ReleaseHeldInbound(ctx context.Context) (int64, error) {
	now := s.nowMilli()
	res, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET next_attempt_at=$1
		WHERE state='pending' AND next_attempt_at > $1 AND last_error LIKE '`+heldMark+`%'`, now)
	if err != nil {
		return 0, fmt.Errorf("releasing held incoming messages: %w", err)
	}
	return res.RowsAffected()
}

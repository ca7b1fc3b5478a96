package store

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// RetryingInbound lists the pending messages waiting for their next attempt after a failure
// (not those held by the new-patient limit): at start the inbox keeps each patient's later
// messages behind them, as it did before the restart.
func (s *Store) RetryingInbound(ctx context.Context) ([]*Inbound, error) {
	rows, err := s.DB.Query(ctx, `SELECT message_id, patient_id, received_at FROM careline_inbound
		WHERE state='pending' AND next_attempt_at > $1 AND (last_error IS NULL OR last_error NOT LIKE '`+heldMark+`%')`, s.nowMilli())
	list, err := dbutil.NewRowIterWithError(rows, scanRetrying, err).AsList()
	if err != nil {
		return nil, fmt.Errorf("listing incoming messages waiting for a retry: %w", err)
	}
	return list, nil
}

func scanRetrying(row dbutil.Scannable) (*Inbound, error) {
	var in Inbound
	var received int64
	if err := row.Scan(&in.MessageID, &in.PatientID, &received); err != nil {
		return nil, err
	}
	in.ReceivedAt = time.UnixMilli(received)
	return &in, nil
}

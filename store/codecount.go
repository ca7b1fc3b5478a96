package store

import (
	"context"
	"fmt"
	"time"
)

// CodesSince counts the code texts a login queued since a time: the outbox keeps every text
// for at least a day (network.retention.messages), so it is the durable record of the codes
// the clinic number sent in the last hour, across restarts.
func (s *Store) CodesSince(ctx context.Context, loginID string, since time.Time) (int, error) {
	var n int
	err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_outbox
		WHERE login_id=$1 AND state IN ('pending', 'sending', 'sent', 'failed') AND priority=0 AND created_at > $2`,
		loginID, since.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting code texts: %w", err)
	}
	return n, nil
}

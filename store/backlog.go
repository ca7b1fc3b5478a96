package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Backlog is a durable queue seen from outside: how many items wait, and since when the
// oldest of those that could go now has been due (zero when none is due). Items waiting on
// purpose (a retry's backoff, a held first text) count in Depth but not in OldestDue until
// their time comes.
type Backlog struct {
	Depth     int
	OldestDue time.Time
}

// OutboxBacklog is the outbox of every login: texts waiting or being handed to Twilio.
func (s *Store) OutboxBacklog(ctx context.Context) (Backlog, error) {
	return s.backlog(ctx, `SELECT COUNT(*), MIN(CASE WHEN state='pending' AND next_attempt_at <= $1 THEN next_attempt_at END)
		FROM careline_outbox WHERE state IN ('pending', 'sending')`)
}

// InboundBacklog is the inbox: patients' messages not yet in their rooms.
func (s *Store) InboundBacklog(ctx context.Context) (Backlog, error) {
	return s.backlog(ctx, `SELECT COUNT(*), MIN(CASE WHEN next_attempt_at <= $1 THEN next_attempt_at END)
		FROM careline_inbound WHERE state='pending'`)
}

func (s *Store) backlog(ctx context.Context, query string) (Backlog, error) {
	var b Backlog
	var oldest sql.NullInt64
	if err := s.DB.QueryRow(ctx, query, s.nowMilli()).Scan(&b.Depth, &oldest); err != nil {
		return Backlog{}, fmt.Errorf("reading a queue's backlog: %w", err)
	}
	if oldest.Valid {
		b.OldestDue = time.UnixMilli(oldest.Int64)
	}
	return b, nil
}

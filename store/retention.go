package store

import (
	"context"
	"time"
)

// Purged counts what a retention run erased.
type Purged struct {
	Messages    int64 // bodies erased
	Attachments int64
	Inbound     int64 // delivered webhook records
	Outbox      int64 // settled texts
}

// PurgeBefore erases message content and delivery records older than before. The messages'
// metadata (who, when, status) stays for the audit; bodies and files do not.
func (s *Store) PurgeBefore(ctx context.Context, before time.Time) (Purged, error) {
	var p Purged
	cutoff := before.UnixMilli()
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		steps := []struct {
			count *int64
			query string
		}{
			{&p.Attachments, `DELETE FROM careline_attachment WHERE message_id IN (SELECT id FROM careline_message WHERE created_at < $1)`},
			{&p.Messages, `UPDATE careline_message SET body_sealed=NULL WHERE created_at < $1 AND body_sealed IS NOT NULL`},
			{&p.Inbound, `DELETE FROM careline_inbound WHERE state <> 'pending' AND received_at < $1`},
			{&p.Outbox, `DELETE FROM careline_outbox WHERE state IN ('sent', 'failed') AND created_at < $1`},
		}
		for _, step := range steps {
			res, err := s.DB.Exec(ctx, step.query, cutoff)
			if err != nil {
				return err
			}
			if *step.count, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	return p, err
}

package store

import (
	"context"
	"time"
)

// Traffic counts a period's messages from careline's records: no content is read.
type Traffic struct {
	In, Out int // messages from patients (SMS and portal), messages to patients
	Failed  int // messages to patients that finally failed
	OptOuts int // STOP and the other opt-out keywords
}

// Traffic counts the messages created, and the opt-outs applied, in [since, until).
func (s *Store) Traffic(ctx context.Context, since, until time.Time) (Traffic, error) {
	var t Traffic
	err := s.DB.QueryRow(ctx, `
		SELECT
			COALESCE(SUM(CASE WHEN from_patient THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN NOT from_patient THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN NOT from_patient AND status IN ($3, $4, $5) THEN 1 ELSE 0 END), 0)
		FROM careline_message WHERE created_at >= $1 AND created_at < $2`,
		since.UnixMilli(), until.UnixMilli(), StatusFailed, StatusUndelivered, StatusCanceled).Scan(&t.In, &t.Out, &t.Failed)
	if err != nil {
		return t, err
	}
	err = s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_keyword WHERE keyword=$3 AND applied_at >= $1 AND applied_at < $2`,
		since.UnixMilli(), until.UnixMilli(), KeywordOptOut).Scan(&t.OptOuts)
	return t, err
}

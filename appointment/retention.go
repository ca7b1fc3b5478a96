package appointment

import (
	"context"
	"time"
)

// PurgeBefore deletes appointments (with their reminders) that started before cutoff, and
// patient references not used since: the resource names the patient and their number, kept
// no longer than messages are. It returns how many appointments went.
func (s *Store) PurgeBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, `DELETE FROM careline_reminder WHERE appointment_id IN
			(SELECT id FROM careline_appointment WHERE start_at < $1)`, cutoff.UnixMilli()); err != nil {
			return err
		}
		res, err := s.db.Exec(ctx, `DELETE FROM careline_appointment WHERE start_at < $1`, cutoff.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = s.db.Exec(ctx, `DELETE FROM careline_patient_reference WHERE updated_at < $1`, cutoff.UnixMilli())
		return err
	})
	return n, err
}

package appointment

import (
	"context"
	"database/sql"
	"errors"
)

// Awaiting returns the patient's appointment whose reminder was sent most recently and is
// still unanswered and ahead, or nil: the one a reply of 1 or 2 answers.
func (s *Store) Awaiting(ctx context.Context, patientID string) (*Appointment, error) {
	var id string
	err := s.db.QueryRow(ctx, `
		SELECT a.id FROM careline_appointment a JOIN careline_reminder r ON r.appointment_id = a.id
		WHERE a.patient_id=$1 AND r.state=$2 AND a.answer IS NULL AND a.deleted_at IS NULL AND a.start_at > $3
			AND a.status NOT IN ('cancelled', 'noshow', 'entered-in-error')
		ORDER BY r.sent_at DESC, a.id LIMIT 1`, patientID, Sent, s.Now().UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return s.get(ctx, id)
}

// Answer records the patient's answer (Accepted or Declined) if the appointment still awaits
// one; it returns false when it no longer does (answered, cancelled or started meanwhile).
func (s *Store) Answer(ctx context.Context, id, patientID, answer, via string) (bool, error) {
	now := s.Now().UnixMilli()
	res, err := s.db.Exec(ctx, `
		UPDATE careline_appointment SET answer=$3, answered_at=$4, answered_via=$5
		WHERE id=$1 AND patient_id=$2 AND answer IS NULL AND deleted_at IS NULL AND start_at > $4
			AND status NOT IN ('cancelled', 'noshow', 'entered-in-error')
			AND EXISTS (SELECT 1 FROM careline_reminder r WHERE r.appointment_id = careline_appointment.id AND r.state=$6)`,
		id, patientID, answer, now, via, Sent)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

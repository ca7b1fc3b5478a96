package store

import (
	"context"

	"go.mau.fi/util/dbutil"
)

// PatientIDs lists the ids of a login's patients, oldest first (for a broadcast to all).
func (s *Store) PatientIDs(ctx context.Context, loginID string) ([]string, error) {
	rows, err := s.DB.Query(ctx, `SELECT id FROM careline_patient WHERE login_id=$1 ORDER BY created_at, id`, loginID)
	return dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[string], err).AsList()
}

// PatientIDsByLast4 lists a login's patients whose number ends in last4 (for `find`).
func (s *Store) PatientIDsByLast4(ctx context.Context, loginID, last4 string) ([]string, error) {
	rows, err := s.DB.Query(ctx, `SELECT id FROM careline_patient WHERE login_id=$1 AND phone_last4=$2 ORDER BY created_at, id`, loginID, last4)
	return dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[string], err).AsList()
}

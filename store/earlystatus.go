package store

import (
	"context"
	"database/sql"
	"sort"
)

// EarlyStatus is a delivery status that arrived before the text's SID was recorded.
type EarlyStatus struct {
	TwilioSID string
	Status    string
	ErrorCode int
}

// HoldStatus keeps a status for a SID careline does not know yet, unless the SID belongs to
// an outbox text that carries no message (a code or a HELP reply), whose status is of no use.
// It reports whether the status was held.
func (s *Store) HoldStatus(ctx context.Context, twilioSID, status string, errorCode int) (bool, error) {
	var held bool
	err := s.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		var known int
		err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM careline_outbox WHERE twilio_sid=$1`, twilioSID).Scan(&known)
		if err != nil || known > 0 {
			return err
		}
		var code any
		if errorCode != 0 {
			code = errorCode
		}
		_, err = s.DB.Exec(ctx, `
			INSERT INTO careline_early_status (twilio_sid, status, error_code, received_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (twilio_sid, status) DO NOTHING`, twilioSID, status, code, s.now().UnixMilli())
		held = err == nil
		return err
	})
	return held, err
}

// TakeEarlyStatuses removes and returns the statuses held for a SID, least advanced first.
func (s *Store) TakeEarlyStatuses(ctx context.Context, twilioSID string) ([]EarlyStatus, error) {
	// One statement, so no transaction: each held status is returned to exactly one caller.
	rows, err := s.DB.Query(ctx, `DELETE FROM careline_early_status WHERE twilio_sid=$1 RETURNING status, error_code`, twilioSID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EarlyStatus
	for rows.Next() {
		st := EarlyStatus{TwilioSID: twilioSID}
		var code sql.NullInt64
		if err := rows.Scan(&st.Status, &code); err != nil {
			return nil, err
		}
		st.ErrorCode = int(code.Int64)
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return StatusRank(out[i].Status) < StatusRank(out[j].Status) })
	return out, rows.Err()
}

package store

import (
	"context"
	"net/url"
)

// Inbound is one webhook from Twilio waiting to reach its Matrix room.
type Inbound struct {
	MessageSID string
	LoginID    string
	PatientID  string
	Params     url.Values
	Attempts   int
	// WasSending: an earlier attempt got as far as handing the message to the homeserver.
	WasSending bool
}

func inboundContext(sid string) string { return "inbound:" + sid }

// SaveInbound durably records a webhook before it is acknowledged. It reports false when the
// MessageSid was already recorded (Twilio retried), so the caller acknowledges without redoing.
func (s *Store) SaveInbound(ctx context.Context, in *Inbound) (bool, error) {
	res, err := s.DB.Exec(ctx, `
		INSERT INTO careline_inbound (message_sid, login_id, patient_id, params_sealed, received_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (message_sid) DO NOTHING`,
		in.MessageSID, in.LoginID, in.PatientID,
		s.Seal.SealString(in.Params.Encode(), inboundContext(in.MessageSID)), s.nowMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PendingInbound lists webhooks not yet in their room, oldest first.
func (s *Store) PendingInbound(ctx context.Context, limit int) ([]*Inbound, error) {
	rows, err := s.DB.Query(ctx, `
		SELECT message_sid, login_id, patient_id, params_sealed, attempts, sending_at IS NOT NULL
		FROM careline_inbound WHERE bridged_at IS NULL ORDER BY received_at, message_sid LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Inbound
	for rows.Next() {
		var in Inbound
		var sealed []byte
		if err := rows.Scan(&in.MessageSID, &in.LoginID, &in.PatientID, &sealed, &in.Attempts, &in.WasSending); err != nil {
			return nil, err
		}
		encoded, err := s.Seal.OpenString(sealed, inboundContext(in.MessageSID))
		if err != nil {
			return nil, err
		}
		if in.Params, err = url.ParseQuery(encoded); err != nil {
			return nil, err
		}
		out = append(out, &in)
	}
	return out, rows.Err()
}

// MarkInboundBridged records that the message is in its room. The sealed parameters are
// dropped: the message's own record keeps what the portal needs.
func (s *Store) MarkInboundBridged(ctx context.Context, sid string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET bridged_at=$2, params_sealed=$3, last_error=NULL WHERE message_sid=$1`,
		sid, s.nowMilli(), []byte{})
	return err
}

// MarkInboundSending records that the message is about to be handed to the homeserver.
func (s *Store) MarkInboundSending(ctx context.Context, sid string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET sending_at=$2 WHERE message_sid=$1`, sid, s.nowMilli())
	return err
}

// MarkInboundFailed counts a failed attempt; errText must not contain patient data.
func (s *Store) MarkInboundFailed(ctx context.Context, sid, errText string) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_inbound SET attempts=attempts+1, last_error=$2 WHERE message_sid=$1`, sid, errText)
	return err
}

package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"net/http"
	"time"
)

// MaxIdempotencyKey bounds the Idempotency-Key header.
const MaxIdempotencyKey = 255

// idempotencyWindow is how long a key's answer is kept to be replayed.
const idempotencyWindow = 24 * time.Hour

// abandonedAfter: a request still unfinished after this long is taken to have died with
// careline; a retry then completes it under the object id it had reserved.
const abandonedAfter = 30 * time.Second

// reservation is an Idempotency-Key claimed for one request.
type reservation struct {
	objectID string
	// replay is the stored answer of the earlier request with this key, when it finished.
	replayStatus int
	replay       string
	// resumed: the earlier request reserved objectID but did not record an answer.
	resumed bool
}

var errKeyReused = errors.New("this Idempotency-Key was used for a different request")
var errInFlight = errors.New("a request with this Idempotency-Key is still being handled; retry in a second")

// reserve claims key for this request, or returns the earlier request's reservation.
func (s *Server) reserve(ctx context.Context, token, key, kind string, body []byte, newID string) (*reservation, error) {
	h := sha256.Sum256(append([]byte(kind+"\x00"), body...))
	now := s.cfg.Now()
	var res *reservation
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, `DELETE FROM careline_api_idempotency WHERE created_at < $1`, now.Add(-idempotencyWindow).UnixMilli()); err != nil {
			return err
		}
		var hash []byte
		var objectID, response string
		var status int
		var created int64
		err := s.db.QueryRow(ctx, `SELECT request_hash, object_id, status, response, created_at FROM careline_api_idempotency
			WHERE token_name=$1 AND idem_key=$2`, token, key).Scan(&hash, &objectID, &status, &response, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = s.db.Exec(ctx, `INSERT INTO careline_api_idempotency (token_name, idem_key, request_hash, object_id, status, response, created_at)
				VALUES ($1, $2, $3, $4, 0, '', $5)`, token, key, h[:], newID, now.UnixMilli())
			res = &reservation{objectID: newID}
			return err
		case err != nil:
			return err
		case !bytes.Equal(hash, h[:]):
			return errKeyReused
		case status != 0:
			res = &reservation{objectID: objectID, replayStatus: status, replay: response}
		case now.Sub(time.UnixMilli(created)) < abandonedAfter:
			return errInFlight
		default:
			res = &reservation{objectID: objectID, resumed: true}
		}
		return nil
	})
	return res, err
}

// finish stores the answer to replay, or (status not 2xx) frees the key: a refused request
// changed nothing, so a corrected retry with the same key may go ahead.
func (s *Server) finish(ctx context.Context, token, key string, status int, response string) error {
	if status < 200 || status > 299 {
		_, err := s.db.Exec(ctx, `DELETE FROM careline_api_idempotency WHERE token_name=$1 AND idem_key=$2`, token, key)
		return err
	}
	_, err := s.db.Exec(ctx, `UPDATE careline_api_idempotency SET status=$3, response=$4 WHERE token_name=$1 AND idem_key=$2`, token, key, status, response)
	return err
}

// idempotencyError answers a reservation that failed.
func idempotencyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errKeyReused):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, errInFlight):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "careline could not record the request; nothing was sent, try again")
	}
}

// own records that token created the object.
func (s *Server) own(ctx context.Context, kind, id, token string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO careline_api_object (kind, id, token_name, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, id) DO NOTHING`, kind, id, token, s.cfg.Now().UnixMilli())
	return err
}

// disown forgets an object that was never created (the request was refused).
func (s *Server) disown(ctx context.Context, kind, id string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM careline_api_object WHERE kind=$1 AND id=$2`, kind, id)
	return err
}

// owns reports whether token created the object.
func (s *Server) owns(ctx context.Context, kind, id, token string) (bool, error) {
	var owner string
	err := s.db.QueryRow(ctx, `SELECT token_name FROM careline_api_object WHERE kind=$1 AND id=$2`, kind, id).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && owner == token, err
}

package portal

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/careline/careline/token"
)

// The portal's queries. Every token and code is looked up by its keyed hash (token.Hasher,
// keyed from network.privacy.identity_key); the raw value never reaches the database, and
// someone who can write the database cannot make a hash that a token of theirs matches.

func (p *Portal) linkHash(raw string) []byte    { return p.hasher.Hash("link", raw) }
func (p *Portal) preauthHash(raw string) []byte { return p.hasher.Hash("preauth", raw) }
func (p *Portal) sessionHash(raw string) []byte { return p.hasher.Hash("session", raw) }

type link struct {
	hash      []byte
	patientID string
	expiresAt time.Time
}

type preauth struct {
	hash      []byte
	linkHash  []byte
	patientID string
	csrf      string // derived from the raw cookie value; see csrfToken
}

type session struct {
	hash      []byte
	patientID string
	linkHash  []byte
	csrf      string
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// CreateLink makes a new secure link for the patient and returns its full URL
// (PublicURL + "/l/" + token). Only the token's hash is stored.
func (p *Portal) CreateLink(ctx context.Context, patientID string) (string, error) {
	if patientID == "" {
		return "", errors.New("portal: empty patient id")
	}
	tok := token.New()
	now := p.now()
	_, err := p.db.Exec(ctx, `
		INSERT INTO careline_portal_link (token_hash, patient_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`,
		p.linkHash(tok), patientID, ms(now), ms(now.Add(p.cfg.LinkLifetime)))
	if err != nil {
		return "", err
	}
	return p.cfg.PublicURL + "/l/" + tok, nil
}

// findLink returns the unexpired link with this token hash, or nil.
func (p *Portal) findLink(ctx context.Context, hash []byte) (*link, error) {
	l := &link{hash: hash}
	var expires int64
	err := p.db.QueryRow(ctx, `
		SELECT patient_id, expires_at FROM careline_portal_link
		WHERE token_hash=$1 AND expires_at > $2`, hash, ms(p.now())).Scan(&l.patientID, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	l.expiresAt = time.UnixMilli(expires)
	return l, nil
}

// createPreauth binds a new pre-auth token to the link and returns the raw token for the
// cookie.
func (p *Portal) createPreauth(ctx context.Context, l *link) (string, time.Time, error) {
	tok := token.New()
	now := p.now()
	expires := now.Add(preauthLifetime)
	if l.expiresAt.Before(expires) {
		expires = l.expiresAt
	}
	_, err := p.db.Exec(ctx, `
		INSERT INTO careline_portal_preauth (token_hash, link_hash, patient_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		p.preauthHash(tok), l.hash, l.patientID, ms(now), ms(expires))
	return tok, expires, err
}

// findPreauth returns the pre-auth for the raw cookie value if it and its link are
// unexpired, or nil.
func (p *Portal) findPreauth(ctx context.Context, raw string) (*preauth, error) {
	pa := &preauth{hash: p.preauthHash(raw), csrf: csrfToken(raw)}
	now := ms(p.now())
	err := p.db.QueryRow(ctx, `
		SELECT pa.link_hash, pa.patient_id
		FROM careline_portal_preauth pa
		JOIN careline_portal_link l ON l.token_hash = pa.link_hash
		WHERE pa.token_hash=$1 AND pa.expires_at > $2 AND l.expires_at > $2`,
		pa.hash, now).Scan(&pa.linkHash, &pa.patientID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return pa, nil
}

func (p *Portal) deletePreauth(ctx context.Context, hash []byte) error {
	_, err := p.db.Exec(ctx, `DELETE FROM careline_portal_preauth WHERE token_hash=$1`, hash)
	return err
}

// Locked reports whether the patient is locked out of the portal after too many wrong codes.
func (p *Portal) Locked(ctx context.Context, patientID string) (bool, error) {
	var failures int
	var lockedAt sql.NullInt64
	err := p.db.QueryRow(ctx, `
		SELECT failures, locked_at FROM careline_portal_attempts WHERE patient_id=$1`,
		patientID).Scan(&failures, &lockedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return lockedAt.Valid || failures >= p.cfg.MaxFailures, nil
}

// Unlock is the staff-assisted unlock: it clears the lock and the failure count.
func (p *Portal) Unlock(ctx context.Context, patientID string) error {
	_, err := p.db.Exec(ctx, `
		UPDATE careline_portal_attempts SET failures=0, locked_at=NULL WHERE patient_id=$1`,
		patientID)
	return err
}

// Results of claimCodeSend.
const (
	sendOK       = iota
	sendCooldown // a code went out within the resend cool-down
	sendCapped   // the patient's codes per hour or per day are used up
)

// claimCodeSend records that a code is being sent now, unless one was sent within the
// cool-down or the patient's hourly or daily cap is reached.
func (p *Portal) claimCodeSend(ctx context.Context, patientID string) (result int, err error) {
	now := p.now()
	err = p.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		res, err := p.db.Exec(ctx, `
			INSERT INTO careline_portal_attempts (patient_id, failures, last_code_sent_at)
			VALUES ($1, 0, NULL)
			ON CONFLICT (patient_id) DO UPDATE SET patient_id=excluded.patient_id
			WHERE careline_portal_attempts.last_code_sent_at IS NULL
			   OR careline_portal_attempts.last_code_sent_at <= $2`,
			patientID, ms(now.Add(-p.cfg.ResendCooldown)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			result = sendCooldown
			return nil
		}
		var lastHour, lastDay int
		err = p.db.QueryRow(ctx, `
			SELECT COUNT(CASE WHEN sent_at > $2 THEN 1 END), COUNT(*)
			FROM careline_portal_code_send WHERE patient_id=$1 AND sent_at > $3`,
			patientID, ms(now.Add(-time.Hour)), ms(now.Add(-24*time.Hour))).Scan(&lastHour, &lastDay)
		if err != nil {
			return err
		}
		if lastHour >= p.cfg.MaxCodesPerHour || lastDay >= p.cfg.MaxCodesPerDay {
			result = sendCapped
			return nil
		}
		if _, err = p.db.Exec(ctx, `
			UPDATE careline_portal_attempts SET last_code_sent_at=$2 WHERE patient_id=$1`, patientID, ms(now)); err != nil {
			return err
		}
		_, err = p.db.Exec(ctx, `INSERT INTO careline_portal_code_send (patient_id, sent_at) VALUES ($1, $2)`, patientID, ms(now))
		return err
	})
	return result, err
}

// linkThrottled reports whether this link must wait before another try: after
// linkThrottleFailures wrong codes, one try per linkThrottleDelay.
func (p *Portal) linkThrottled(ctx context.Context, linkHash []byte) (bool, error) {
	var failures int
	var last int64
	err := p.db.QueryRow(ctx, `
		SELECT failures, last_failure_at FROM careline_portal_link WHERE token_hash=$1`, linkHash).Scan(&failures, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return failures >= linkThrottleFailures && p.now().Before(time.UnixMilli(last).Add(linkThrottleDelay)), nil
}

// recordLinkFailure counts a wrong code entered through the link.
func (p *Portal) recordLinkFailure(ctx context.Context, linkHash []byte) error {
	_, err := p.db.Exec(ctx, `
		UPDATE careline_portal_link SET failures = failures + 1, last_failure_at = $2 WHERE token_hash=$1`,
		linkHash, ms(p.now()))
	return err
}

// EndAccess ends every link, pending code, pre-auth and session of the patient (lost phone,
// recycled number, STOP) and returns how many rows went. The lock-out state stays.
func (p *Portal) EndAccess(ctx context.Context, patientID string) (int64, error) {
	var total int64
	err := p.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, q := range []string{
			`DELETE FROM careline_portal_session WHERE patient_id=$1`,
			`DELETE FROM careline_portal_code WHERE patient_id=$1`,
			`DELETE FROM careline_portal_preauth WHERE patient_id=$1`,
			`DELETE FROM careline_portal_link WHERE patient_id=$1`,
		} {
			res, err := p.db.Exec(ctx, q, patientID)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

// codeHash binds a code to the link it was requested from. Keyed, so a stolen hash cannot
// be matched by trying all million codes.
func (p *Portal) codeHash(linkHash []byte, code string) []byte {
	return p.hasher.Hash("code", string(linkHash), code)
}

// storeCode makes code the patient's only valid code, replacing any older one.
func (p *Portal) storeCode(ctx context.Context, patientID string, linkHash []byte, code string) error {
	now := p.now()
	_, err := p.db.Exec(ctx, `
		INSERT INTO careline_portal_code (patient_id, link_hash, code_hash, created_at, expires_at, used_at)
		VALUES ($1, $2, $3, $4, $5, NULL)
		ON CONFLICT (patient_id) DO UPDATE SET link_hash=excluded.link_hash,
			code_hash=excluded.code_hash, created_at=excluded.created_at,
			expires_at=excluded.expires_at, used_at=NULL`,
		patientID, linkHash, p.codeHash(linkHash, code), ms(now), ms(now.Add(p.cfg.CodeLifetime)))
	return err
}

// Code check results.
const (
	codeOK = iota
	codeWrong
	codeNone // no unused, unexpired code for this link
)

// checkCode compares code with the patient's current code for this link, without using it.
func (p *Portal) checkCode(ctx context.Context, patientID string, linkHash []byte, code string) (int, error) {
	var stored []byte
	err := p.db.QueryRow(ctx, `
		SELECT code_hash FROM careline_portal_code
		WHERE patient_id=$1 AND link_hash=$2 AND used_at IS NULL AND expires_at > $3`,
		patientID, linkHash, ms(p.now())).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return codeNone, nil
	} else if err != nil {
		return 0, err
	}
	if !token.Equal(stored, p.codeHash(linkHash, code)) {
		return codeWrong, nil
	}
	return codeOK, nil
}

// useCode marks the code used; it reports false if it was used, replaced or expired
// meanwhile.
func (p *Portal) useCode(ctx context.Context, patientID string, linkHash []byte, code string) (bool, error) {
	now := ms(p.now())
	res, err := p.db.Exec(ctx, `
		UPDATE careline_portal_code SET used_at=$1
		WHERE patient_id=$2 AND link_hash=$3 AND code_hash=$4 AND used_at IS NULL AND expires_at > $1`,
		now, patientID, linkHash, p.codeHash(linkHash, code))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// recordFailure counts a failed code entry and locks the patient when the count reaches
// MaxFailures; newlyLocked is true only for the failure that locked.
func (p *Portal) recordFailure(ctx context.Context, patientID string) (failures int, newlyLocked bool, err error) {
	err = p.db.QueryRow(ctx, `
		INSERT INTO careline_portal_attempts (patient_id, failures) VALUES ($1, 1)
		ON CONFLICT (patient_id) DO UPDATE SET failures=careline_portal_attempts.failures + 1
		RETURNING failures`, patientID).Scan(&failures)
	if err != nil || failures < p.cfg.MaxFailures {
		return
	}
	res, err := p.db.Exec(ctx, `
		UPDATE careline_portal_attempts SET locked_at=$2
		WHERE patient_id=$1 AND locked_at IS NULL`, patientID, ms(p.now()))
	if err != nil {
		return
	}
	n, err := res.RowsAffected()
	return failures, n == 1, err
}

var errLocked = errors.New("portal: patient is locked")

// completeVerification uses the code, resets the failure count (refusing if the patient
// got locked meanwhile), drops the pre-auth and creates a session; it returns the raw
// session token, or ("", nil) if the code was used or replaced in the meantime.
func (p *Portal) completeVerification(ctx context.Context, pa *preauth, code string) (tok string, err error) {
	err = p.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if locked, err := p.Locked(ctx, pa.patientID); err != nil {
			return err
		} else if locked {
			return errLocked
		}
		if ok, err := p.useCode(ctx, pa.patientID, pa.linkHash, code); err != nil || !ok {
			return err
		}
		if _, err := p.db.Exec(ctx, `
			UPDATE careline_portal_attempts SET failures=0 WHERE patient_id=$1`, pa.patientID); err != nil {
			return err
		}
		if err := p.deletePreauth(ctx, pa.hash); err != nil {
			return err
		}
		var err error
		tok, err = p.createSession(ctx, pa.patientID, pa.linkHash)
		return err
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

func (p *Portal) createSession(ctx context.Context, patientID string, linkHash []byte) (string, error) {
	tok := token.New()
	now := p.now()
	_, err := p.db.Exec(ctx, `
		INSERT INTO careline_portal_session (token_hash, patient_id, link_hash, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $4, $5)`,
		p.sessionHash(tok), patientID, linkHash, ms(now), ms(now.Add(p.cfg.AbsoluteTimeout)))
	return tok, err
}

// touchInterval is how stale last_seen_at may get before a request refreshes it. Skipping
// writes can only make the idle timeout end a session earlier, never later.
const touchInterval = 30 * time.Second

// findSession returns the session for the raw cookie value, or nil if it is unknown or
// past its idle or absolute timeout (an expired session is deleted).
func (p *Portal) findSession(ctx context.Context, raw string) (*session, error) {
	s := &session{hash: p.sessionHash(raw), csrf: csrfToken(raw)}
	var created, lastSeen int64
	err := p.db.QueryRow(ctx, `
		SELECT patient_id, link_hash, created_at, last_seen_at
		FROM careline_portal_session WHERE token_hash=$1`, s.hash).
		Scan(&s.patientID, &s.linkHash, &created, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	now := p.now()
	if !now.Before(time.UnixMilli(created).Add(p.cfg.AbsoluteTimeout)) ||
		!now.Before(time.UnixMilli(lastSeen).Add(p.cfg.IdleTimeout)) {
		return nil, p.deleteSession(ctx, s.hash)
	}
	if now.Sub(time.UnixMilli(lastSeen)) >= touchInterval {
		_, err = p.db.Exec(ctx, `
			UPDATE careline_portal_session SET last_seen_at=$2 WHERE token_hash=$1`, s.hash, ms(now))
	}
	return s, err
}

func (p *Portal) deleteSession(ctx context.Context, hash []byte) error {
	_, err := p.db.Exec(ctx, `DELETE FROM careline_portal_session WHERE token_hash=$1`, hash)
	return err
}

// PurgeExpired deletes links, pre-auths, codes and sessions past their expiry and returns
// how many rows went. Failure counts and locks stay until a success or an unlock.
func (p *Portal) PurgeExpired(ctx context.Context) (int64, error) {
	now := p.now()
	queries := []struct {
		q    string
		args []any
	}{
		{`DELETE FROM careline_portal_code WHERE expires_at <= $1 OR used_at IS NOT NULL`, []any{ms(now)}},
		{`DELETE FROM careline_portal_preauth WHERE expires_at <= $1`, []any{ms(now)}},
		{`DELETE FROM careline_portal_session WHERE expires_at <= $1 OR last_seen_at <= $2`,
			[]any{ms(now), ms(now.Add(-p.cfg.IdleTimeout))}},
		{`DELETE FROM careline_portal_link WHERE expires_at <= $1`, []any{ms(now)}},
		{`DELETE FROM careline_portal_code_send WHERE sent_at <= $1`, []any{ms(now.Add(-24 * time.Hour))}},
	}
	var total int64
	err := p.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, q := range queries {
			res, err := p.db.Exec(ctx, q.q, q.args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

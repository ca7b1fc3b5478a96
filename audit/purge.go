package audit

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"
)

// PurgeBefore deletes the newest entry written before the retention boundary and every entry
// before it, and returns how many it deleted. The newest deleted entry's seq and hash stay behind as the anchor the remaining
// chain is verified from, and the purge itself is recorded as a "retention.purge" entry.
//
// Entries that do not verify are not purged: an administrator must look at them first
// (`careline audit verify`), so tampering cannot age out of the trail unnoticed.
func (l *Log) PurgeBefore(ctx context.Context, before time.Time) (int64, error) {
	if limit := l.now().Add(-l.retention); before.After(limit) {
		return 0, fmt.Errorf("audit: refusing to purge entries written before %s: the audit retention (%v) keeps everything after %s",
			before.UTC().Format(time.RFC3339), l.retention, limit.UTC().Format(time.RFC3339))
	}
	before = before.Truncate(time.Millisecond)
	h, err := l.head(ctx)
	if err != nil {
		return 0, err
	}
	var upTo int64
	err = l.db.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM careline_audit WHERE at < $1 AND seq <= $2`,
		before.UnixMilli(), h.lastSeq).Scan(&upTo)
	if err != nil {
		return 0, err
	}
	if upTo <= h.purgedSeq {
		return 0, nil // nothing old enough
	}
	// Check what is to go outside the transaction: on SQLite the transaction holds the
	// database's write lock, and the bridge must not wait for a walk over years of entries.
	c := l.newChecker(h.purgedSeq, h.purgedHash)
	// A forged anchor would otherwise become a genuine one with this purge.
	l.checkAnchor(h, c)
	if err = l.scan(ctx, `WHERE seq <= $1`, []any{upTo}, c.add); err != nil {
		return 0, err
	}
	c.finish(upTo, nil)
	if r := c.report(); !r.Intact() {
		return 0, fmt.Errorf("audit: not purging entries up to %d: %s (run careline audit verify)", upTo, r.Problems[0].What)
	}
	anchor := c.prev
	var n int64
	err = l.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		// Lock the head first, as Append does, then make sure nobody purged meanwhile and the
		// anchor entry is still the one just checked.
		var purgedSeq int64
		err := l.db.QueryRow(ctx, `UPDATE careline_audit_head SET purged_seq = purged_seq WHERE id = 1 RETURNING purged_seq`).Scan(&purgedSeq)
		if err != nil {
			return fmt.Errorf("audit: locking the head: %w", err)
		}
		var hash []byte
		err = l.db.QueryRow(ctx, `SELECT hash FROM careline_audit WHERE seq = $1`, upTo).Scan(&hash)
		if err != nil {
			return fmt.Errorf("audit: reading entry %d: %w", upTo, err)
		}
		if purgedSeq != h.purgedSeq || !hmac.Equal(hash, anchor) {
			return errors.New("audit: the trail changed while purging; try again")
		}
		res, err := l.db.Exec(ctx, `DELETE FROM careline_audit WHERE seq <= $1`, upTo)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = l.db.Exec(ctx, `
			UPDATE careline_audit_head SET purged_seq = $1, purged_hash = $2, purged_cutoff = $3, purged_mac = $4 WHERE id = 1`,
			upTo, anchor, before.UnixMilli(), l.anchorMAC(upTo, anchor, before.UnixMilli()))
		if err != nil {
			return err
		}
		_, err = l.Append(ctx, Entry{
			Actor:  "system",
			Action: purgeAction,
			Detail: purgeDetail(h.purgedSeq+1, upTo, before.UnixMilli()),
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	l.log.Info().Int64("entries", n).Int64("up_to_seq", upTo).Msg("Purged old audit entries")
	return n, nil
}

const purgeAction = "retention.purge"

// purgeDetail describes a purge in its own entry; Verify looks for the entry naming the anchor.
func purgeDetail(from, upTo, cutoffMillis int64) string {
	return fmt.Sprintf("deleted entries %d–%d, written before %s", from, upTo, time.UnixMilli(cutoffMillis).UTC().Format(time.RFC3339Nano))
}

// purgeDetailSuffix is the part of purgeDetail that names the anchor.
func purgeDetailSuffix(upTo, cutoffMillis int64) string {
	return fmt.Sprintf("–%d, written before %s", upTo, time.UnixMilli(cutoffMillis).UTC().Format(time.RFC3339Nano))
}

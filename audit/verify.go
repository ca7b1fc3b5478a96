package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of Problem.
const (
	Edited   = "edited"   // the entry's fields or hash are not what was written
	Missing  = "missing"  // the entries were deleted
	Moved    = "moved"    // the entry is genuine but was written with another seq
	Unlinked = "unlinked" // the entry is genuine but does not follow the one before it
	Beyond   = "beyond"   // entries lie past the recorded end of the trail
	Anchor   = "anchor"   // the record of the last purge is forged, too young, or not in the trail
)

// Problem is one place where the trail is not as careline wrote it.
type Problem struct {
	Seq  int64  // first entry concerned
	Last int64  // last entry concerned; equal to Seq for a single entry
	Kind string // Edited, Missing, Moved, Unlinked or Beyond
	What string // in plain words, for an administrator
}

// Report is the result of Verify.
type Report struct {
	Entries  int64 // entries in the table that were checked
	FirstSeq int64 // 0 when there are none
	LastSeq  int64
	HeadHash []byte // hash of the newest entry careline recorded; note it elsewhere to catch a rewound head later
	Problems []Problem
}

// Intact reports whether Verify found nothing wrong.
func (r *Report) Intact() bool { return len(r.Problems) == 0 }

// Verify checks every entry still kept: its hash, its place in the chain, and that no entry is
// missing from the start (after the last purge), the middle or the end.
func (l *Log) Verify(ctx context.Context) (*Report, error) {
	h, err := l.head(ctx)
	if err != nil {
		return nil, err
	}
	// Entries up to the head just read were all committed before it; later ones are appends
	// that raced with us and are left for the next run.
	c := l.newChecker(h.purgedSeq, h.purgedHash)
	if h.purgedSeq > 0 {
		c.wantPurge = purgeDetailSuffix(h.purgedSeq, h.purgedCutoff)
	}
	if err = l.scan(ctx, `WHERE seq <= $1`, []any{h.lastSeq}, c.add); err != nil {
		return nil, err
	}
	if genuine := l.checkAnchor(h, c); genuine && c.wantPurge != "" && !c.sawPurge {
		c.problem(h.purgedSeq, h.purgedSeq, Anchor, fmt.Sprintf(
			"no %s entry records the purge of the entries up to %d: they may have been deleted by someone else", purgeAction, h.purgedSeq))
	}
	after, err := l.head(ctx)
	if err != nil {
		return nil, err
	}
	if after.purgedSeq != h.purgedSeq {
		return nil, errors.New("audit: old entries were purged during verification; verify again")
	}
	c.finish(h.lastSeq, h.lastHash)
	if after.lastSeq == h.lastSeq {
		// Nothing was appended meanwhile, so any row past the head was not written by Append.
		var beyond sql.NullInt64
		err = l.db.QueryRow(ctx, `SELECT MIN(seq) FROM careline_audit WHERE seq > $1`, h.lastSeq).Scan(&beyond)
		if err != nil {
			return nil, err
		}
		if beyond.Valid {
			c.problem(beyond.Int64, beyond.Int64, Beyond, fmt.Sprintf("entries from %d on lie past the recorded end of the trail (%d)", beyond.Int64, h.lastSeq))
		}
	}
	r := c.report()
	r.HeadHash = h.lastHash
	return r, nil
}

// maxCandidates bounds the search for where moved entries came from, which is quadratic.
const maxCandidates = 1024

// checker walks entries in seq order and notes each break in the chain.
type checker struct {
	l        *Log
	next     int64   // seq the next entry should have
	prev     []byte  // hash the next entry should chain from
	prevBad  bool    // the previous entry failed its hash, which already explains a broken link
	failed   []Entry // entries whose hash failed, as candidates for having been moved
	vacant   []int64 // seqs an entry could have been moved away from
	entries  int64
	first    int64
	last     int64
	problems []Problem
	// wantPurge ends the detail of the retention.purge entry that must follow the anchor.
	wantPurge string
	sawPurge  bool
}

func (l *Log) newChecker(anchorSeq int64, anchorHash []byte) *checker {
	return &checker{l: l, next: anchorSeq + 1, prev: anchorHash}
}

func (c *checker) problem(seq, last int64, kind, what string) {
	c.problems = append(c.problems, Problem{Seq: seq, Last: last, Kind: kind, What: what})
}

func (c *checker) missing(from, to int64, where string) {
	c.problem(from, to, Missing, span(from, to, "is", "are")+" missing"+where)
	for s := from; s <= to && len(c.vacant)+len(c.failed) < maxCandidates; s++ {
		c.vacant = append(c.vacant, s)
	}
}

func (c *checker) add(e *Entry) error {
	c.entries++
	if c.first == 0 {
		c.first = e.Seq
	}
	c.last = e.Seq
	gap := e.Seq != c.next
	if gap {
		c.missing(c.next, e.Seq-1, "")
	}
	valid := c.l.valid(e)
	switch {
	case !valid:
		c.problem(e.Seq, e.Seq, Edited, span(e.Seq, e.Seq, "was", "were")+" edited")
		if len(c.vacant)+len(c.failed) < maxCandidates {
			c.failed = append(c.failed, *e)
		}
	case !gap && !c.prevBad && !hmac.Equal(e.PrevHash, c.prev):
		if e.Seq == 1 {
			c.problem(e.Seq, e.Seq, Unlinked, "entry 1 does not start the chain")
		} else if c.entries == 1 {
			c.problem(e.Seq, e.Seq, Unlinked, fmt.Sprintf("entry %d does not follow the last purged entry (%d)", e.Seq, e.Seq-1))
		} else {
			c.problem(e.Seq, e.Seq, Unlinked, fmt.Sprintf("entry %d does not follow entry %d", e.Seq, e.Seq-1))
		}
	}
	if valid && c.wantPurge != "" && e.Action == purgeAction && e.Actor == "system" && strings.HasSuffix(e.Detail, c.wantPurge) {
		c.sawPurge = true
	}
	c.next, c.prev, c.prevBad = e.Seq+1, e.Hash, !valid
	return nil
}

// checkAnchor notes a problem unless the purge anchor in h is one careline wrote (its MAC holds)
// for a cutoff at least the audit retention ago; it reports whether careline wrote it.
func (l *Log) checkAnchor(h head, c *checker) (genuine bool) {
	if h.purgedSeq == 0 && len(h.purgedHash) == 0 {
		return false // never purged
	}
	if !hmac.Equal(h.purgedMAC, l.anchorMAC(h.purgedSeq, h.purgedHash, h.purgedCutoff)) {
		c.problem(h.purgedSeq, h.purgedSeq, Anchor, fmt.Sprintf(
			"the record of the last purge (entries up to %d) was not written by careline: older entries may have been deleted", h.purgedSeq))
		return false
	}
	cutoff := time.UnixMilli(h.purgedCutoff)
	if limit := l.now().Add(-l.retention); cutoff.After(limit) {
		c.problem(h.purgedSeq, h.purgedSeq, Anchor, fmt.Sprintf(
			"entries up to %d were purged as written before %s, inside the audit retention of %v",
			h.purgedSeq, cutoff.UTC().Format(time.RFC3339), l.retention))
	}
	return true
}

// finish checks the end of the walk against the head, where careline recorded the last entry
// it wrote (lastHash may be nil to check the seq only), then explains moved entries.
func (c *checker) finish(lastSeq int64, lastHash []byte) {
	if c.next <= lastSeq {
		c.missing(c.next, lastSeq, " from the end of the trail")
	} else if lastHash != nil && c.next == lastSeq+1 && !c.prevBad && !hmac.Equal(c.prev, lastHash) {
		c.problem(lastSeq, lastSeq, Unlinked, fmt.Sprintf("entry %d is not the last entry careline wrote", lastSeq))
	}
	// An edited entry whose hash holds for another seq is genuine but was moved from there.
	candidates := c.vacant
	for _, f := range c.failed {
		candidates = append(candidates, f.Seq)
	}
	for _, f := range c.failed {
		for _, seq := range candidates {
			g := f
			g.Seq = seq
			if seq != f.Seq && c.l.valid(&g) {
				i := slices.IndexFunc(c.problems, func(p Problem) bool { return p.Seq == f.Seq && p.Kind == Edited })
				c.problems[i].Kind = Moved
				c.problems[i].What = fmt.Sprintf("entry %d was moved: it was written as entry %d", f.Seq, seq)
				break
			}
		}
	}
}

// report sorts the problems and merges runs of edited entries (as a re-chained tail leaves)
// into one.
func (c *checker) report() *Report {
	slices.SortStableFunc(c.problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	var merged []Problem
	for _, p := range c.problems {
		if n := len(merged); n > 0 && p.Kind == Edited && merged[n-1].Kind == Edited && merged[n-1].Last+1 == p.Seq {
			merged[n-1].Last = p.Seq
			merged[n-1].What = span(merged[n-1].Seq, p.Seq, "was", "were") + " edited"
			continue
		}
		merged = append(merged, p)
	}
	return &Report{Entries: c.entries, FirstSeq: c.first, LastSeq: c.last, Problems: merged}
}

// span names one entry or a range of them, with the verb in the right number.
func span(from, to int64, one, many string) string {
	if from == to {
		return fmt.Sprintf("entry %d %s", from, one)
	}
	return fmt.Sprintf("entries %d–%d %s", from, to, many)
}

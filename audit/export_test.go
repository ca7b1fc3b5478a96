package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

var day0 = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// fillDays appends one entry a day for n days from day0, the first on day0.
func fillDays(t *testing.T, l *Log, n int) []Entry {
	t.Helper()
	c := &clock{}
	l.now = c.Now
	// The tests purge days-old entries: keep two days.
	l.SetRetention(48 * time.Hour)
	var out []Entry
	for i := range n {
		c.Set(day0.AddDate(0, 0, i).Add(123 * time.Millisecond))
		e, err := l.Append(context.Background(), Entry{
			Actor: "@dr.lee:clinic.example", Action: "message.sent", PatientID: "p" + strconv.Itoa(i),
			Channel: "secure", TwilioSID: "SM" + strconv.Itoa(i), Detail: `quote " comma , and "` + "\nnewline",
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func export(t *testing.T, l *Log, since, until time.Time, format string) ([]byte, int) {
	t.Helper()
	var buf bytes.Buffer
	n, err := l.Export(context.Background(), &buf, since, until, format)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), n
}

func TestExport(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		entries := fillDays(t, l, 10)
		ranges := []struct {
			since, until time.Time
			want         []int64
		}{
			{time.Time{}, time.Time{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{day0.AddDate(0, 0, 2), day0.AddDate(0, 0, 5), []int64{3, 4, 5}}, // since inclusive, until exclusive
			{day0.AddDate(0, 0, 2).Add(124 * time.Millisecond), time.Time{}, []int64{4, 5, 6, 7, 8, 9, 10}},
			{time.Time{}, day0.Add(123 * time.Millisecond), nil},
			{day0.AddDate(1, 0, 0), time.Time{}, nil},
		}
		for _, r := range ranges {
			// JSON lines: one object a line, keys as documented.
			out, n := export(t, l, r.since, r.until, "jsonl")
			var seqs []int64
			for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				if line == "" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if len(rec) != len(Columns) {
					t.Fatalf("line has keys %v, want %v", rec, Columns)
				}
				seq := int64(rec["seq"].(float64))
				e := entries[seq-1]
				if rec["at"] != e.At.Format(TimeFormat) || rec["actor"] != e.Actor || rec["action"] != e.Action ||
					rec["patient_id"] != e.PatientID || rec["channel"] != e.Channel || rec["twilio_sid"] != e.TwilioSID ||
					rec["detail"] != e.Detail || rec["hash"] != hex.EncodeToString(e.Hash) {
					t.Fatalf("entry %d exported as %v", seq, rec)
				}
				if at, err := time.Parse(time.RFC3339, rec["at"].(string)); err != nil || !at.Equal(e.At) {
					t.Fatalf("at %q is not RFC 3339 for %v", rec["at"], e.At)
				}
				seqs = append(seqs, seq)
			}
			if !slices.Equal(seqs, r.want) || n != len(r.want) {
				t.Errorf("jsonl %v–%v: got %v (n=%d), want %v", r.since, r.until, seqs, n, r.want)
			}

			// CSV: a header, then one row an entry.
			out, n = export(t, l, r.since, r.until, "csv")
			rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rows[0], Columns) {
				t.Fatalf("header %v", rows[0])
			}
			seqs = nil
			for _, row := range rows[1:] {
				seq, _ := strconv.ParseInt(row[0], 10, 64)
				e := entries[seq-1]
				// The actor, a Matrix ID, starts with @: quoted so a spreadsheet shows it as text.
				want := []string{row[0], e.At.Format(TimeFormat), "'" + e.Actor, e.Action, e.PatientID, e.Channel, e.TwilioSID, e.Detail, hex.EncodeToString(e.Hash)}
				if !slices.Equal(row, want) {
					t.Fatalf("row %v, want %v", row, want)
				}
				seqs = append(seqs, seq)
			}
			if !slices.Equal(seqs, r.want) || n != len(r.want) {
				t.Errorf("csv %v–%v: got %v (n=%d), want %v", r.since, r.until, seqs, n, r.want)
			}
		}
		if _, err := l.Export(context.Background(), &bytes.Buffer{}, time.Time{}, time.Time{}, "xml"); err == nil {
			t.Fatal("exported as xml")
		}
	})
}

func TestPurge(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		l := newLog(t, db)
		fillDays(t, l, 10)
		n, err := l.PurgeBefore(ctx, day0.AddDate(0, 0, 5)) // entries 1–5
		if err != nil || n != 5 {
			t.Fatalf("purged %d, %v", n, err)
		}
		r := verify(t, l)
		if !r.Intact() || r.Entries != 6 || r.FirstSeq != 6 || r.LastSeq != 11 {
			t.Fatalf("after purge: %+v", r)
		}
		var action, detail string
		if err = db.QueryRow(ctx, `SELECT action, detail FROM careline_audit WHERE seq = 11`).Scan(&action, &detail); err != nil {
			t.Fatal(err)
		}
		if action != "retention.purge" || detail != "deleted entries 1–5, written before 2026-01-06T09:00:00Z" {
			t.Fatalf("purge recorded as %q %q", action, detail)
		}
		if n, err = l.PurgeBefore(ctx, day0.AddDate(0, 0, 5)); err != nil || n != 0 {
			t.Fatalf("purging again deleted %d, %v", n, err)
		}
		// A second purge chains from the first anchor.
		if n, err = l.PurgeBefore(ctx, day0.AddDate(0, 0, 7)); err != nil || n != 2 {
			t.Fatalf("second purge deleted %d, %v", n, err)
		}
		if r = verify(t, l); !r.Intact() || r.FirstSeq != 8 || r.LastSeq != 12 {
			t.Fatalf("after second purge: %+v", r)
		}
		// Deleting the first entry left is still noticed, anchor or not.
		exec(t, l, `DELETE FROM careline_audit WHERE seq = 8`)
		wantProblems(t, verify(t, l), Problem{Seq: 8, Last: 8, Kind: Missing})
	})
}

func TestPurgeRefusesTamperedEntries(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fillDays(t, l, 10)
		exec(t, l, `UPDATE careline_audit SET detail = 'x' WHERE seq = 3`)
		n, err := l.PurgeBefore(context.Background(), day0.AddDate(0, 0, 5))
		if err == nil || n != 0 || !strings.Contains(err.Error(), "entry 3 was edited") {
			t.Fatalf("purged %d, %v", n, err)
		}
		if r := verify(t, l); r.Entries != 10 {
			t.Fatalf("entries were deleted: %+v", r)
		}
	})
}

// Advancing the anchor without deleting (or deleting without the anchor) is noticed.
func TestVerifyCatchesForgedAnchor(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fillDays(t, l, 10)
		if _, err := l.PurgeBefore(context.Background(), day0.AddDate(0, 0, 3)); err != nil {
			t.Fatal(err)
		}
		exec(t, l, `UPDATE careline_audit_head SET purged_hash = $1`, make([]byte, 32))
		wantProblems(t, verify(t, l), Problem{Seq: 3, Last: 3, Kind: Anchor}, Problem{Seq: 4, Last: 4, Kind: Unlinked})
	})
}

func TestSpreadsheetSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1":                       "'+1", "-1+2": "'-1+2", "@nurse:clinic.example": "'@nurse:clinic.example",
		"\tcmd": "'\tcmd", "\rcmd": "'\rcmd",
		"message.sent": "message.sent", "": "", "p123": "p123", "2026-01-01T09:00:00.000Z": "2026-01-01T09:00:00.000Z",
	} {
		if got := spreadsheetSafe(in); got != want {
			t.Errorf("spreadsheetSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

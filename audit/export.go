package audit

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is how exports write times: RFC 3339 in UTC, always with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Columns are the exported fields, in order: the CSV header and the JSON keys.
var Columns = []string{"seq", "at", "actor", "action", "patient_id", "channel", "twilio_sid", "detail", "hash"}

// record is one exported entry; its fields are in the order of Columns.
type record struct {
	Seq       int64  `json:"seq"`
	At        string `json:"at"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	PatientID string `json:"patient_id"`
	Channel   string `json:"channel"`
	TwilioSID string `json:"twilio_sid"`
	Detail    string `json:"detail"`
	Hash      string `json:"hash"`
}

// Export writes the entries with since <= At < until to w, oldest first, as "jsonl" (one JSON
// object a line) or "csv" (with a header row), and returns how many it wrote. A zero since or
// until leaves that end open.
//
// Exports hold patient ids and who acted on them: treat the output as you would the database.
// In CSV, a cell a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR;
// every Matrix user ID starts with @) gets a leading ' (OWASP's advice on CSV injection).
func (l *Log) Export(ctx context.Context, w io.Writer, since, until time.Time, format string) (int, error) {
	var write func(r *record) error
	var flush func() error
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(r *record) error { return enc.Encode(r) }
		flush = func() error { return nil }
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(Columns); err != nil {
			return 0, err
		}
		write = func(r *record) error {
			row := []string{strconv.FormatInt(r.Seq, 10), r.At, r.Actor, r.Action, r.PatientID, r.Channel, r.TwilioSID, r.Detail, r.Hash}
			for i, cell := range row {
				row[i] = spreadsheetSafe(cell)
			}
			return cw.Write(row)
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return 0, fmt.Errorf("audit: unknown export format %q (want jsonl or csv)", format)
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !since.IsZero() {
		from = since.UnixMilli()
	}
	if !until.IsZero() {
		to = until.UnixMilli()
	}
	n := 0
	err := l.scan(ctx, `WHERE at >= $1 AND at < $2`, []any{from, to}, func(e *Entry) error {
		n++
		return write(&record{
			Seq: e.Seq, At: e.At.Format(TimeFormat), Actor: e.Actor, Action: e.Action, PatientID: e.PatientID,
			Channel: e.Channel, TwilioSID: e.TwilioSID, Detail: e.Detail, Hash: hex.EncodeToString(e.Hash),
		})
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}

// spreadsheetSafe keeps a spreadsheet from reading a cell as a formula.
func spreadsheetSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

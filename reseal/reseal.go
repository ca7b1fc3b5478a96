// Package reseal re-seals stored values under the active storage key, so that after a key
// rotation the old keys can be removed from the config (`careline storage reseal`). Each
// package that seals a column describes it with a Column; Run walks every row in batches.
//
// A run is idempotent and resumable: a value already under the active key is left as it is
// (without being opened), and each batch is its own transaction, so a run stopped part way
// is simply started again. A row written or changed while the run goes (careline may keep
// running) is left alone: careline seals what it writes with the active key.
package reseal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
)

// Column is one database column whose values are sealed by the storage keyring.
type Column struct {
	Table  string
	Column string
	// Key is the table's primary key, in order: rows are read in key order, updated by key.
	Key []string
	// With are further SQL expressions on the row (columns or subqueries) that the sealing
	// context names, such as the owning patient.
	With []string
	// Context is the sealing context of a row, from the values of Key then With (NULL is "").
	Context func(values []string) string
	// JSONField, when set, means the column holds a JSON object and the sealed value is the
	// base64 string in this field (bridgev2's metadata columns).
	JSONField string
}

// Name is "table.column" (with the JSON field, if any).
func (c Column) Name() string {
	if c.JSONField != "" {
		return c.Table + "." + c.Column + "." + c.JSONField
	}
	return c.Table + "." + c.Column
}

// Unreadable is a value that could not be opened with any configured key.
type Unreadable struct {
	Column string
	Key    []string
	Err    error
}

// Result counts what a run found and did, per column in the order given.
type Result struct {
	Columns []ColumnResult
	// Unreadable lists values no configured key opens (at most the first 100).
	Unreadable []Unreadable
}

// ColumnResult is one column's counts.
type ColumnResult struct {
	Name string
	// Before counts the values found under each key id before the run touched them.
	Before map[string]int
	// Resealed were moved to the active key; Current already were under it; Changed were
	// rewritten by someone else while this run held them and are left as they are.
	Resealed, Current, Changed, Unreadable int
}

// Totals sums the columns.
func (r *Result) Totals() (t ColumnResult) {
	t.Before = map[string]int{}
	for _, c := range r.Columns {
		for id, n := range c.Before {
			t.Before[id] += n
		}
		t.Resealed += c.Resealed
		t.Current += c.Current
		t.Changed += c.Changed
		t.Unreadable += c.Unreadable
	}
	return t
}

const maxUnreadableListed = 100

// Run re-seals every value of every column under kr's active key, batch rows per transaction.
// progress, if not nil, is called after each batch.
func Run(ctx context.Context, db *dbutil.Database, kr *atrest.Keyring, columns []Column, batch int, progress func(ColumnResult)) (*Result, error) {
	if batch < 1 {
		return nil, errors.New("the batch size must be at least 1")
	}
	res := &Result{}
	for _, col := range columns {
		cr := ColumnResult{Name: col.Name(), Before: map[string]int{}}
		var after []any
		for {
			n, last, err := resealBatch(ctx, db, kr, col, after, batch, &cr, res)
			if err != nil {
				return res, fmt.Errorf("%s: %w", col.Name(), err)
			}
			if progress != nil && n > 0 {
				progress(cr)
			}
			if n < batch {
				break
			}
			after = last
		}
		res.Columns = append(res.Columns, cr)
	}
	return res, nil
}

type row struct {
	key    []any
	values []string
	stored []byte // the column as stored (the JSON object for a JSONField column)
	sealed []byte
}

// resealBatch handles up to batch rows after the key after (nil: from the first row).
func resealBatch(ctx context.Context, db *dbutil.Database, kr *atrest.Keyring, col Column, after []any, batch int, cr *ColumnResult, res *Result) (n int, last []any, err error) {
	err = db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := readBatch(ctx, db, col, after, batch)
		if err != nil {
			return err
		}
		n = len(rows)
		if n > 0 {
			last = rows[n-1].key
		}
		for _, r := range rows {
			if r.sealed == nil {
				continue
			}
			cr.Before[atrest.KeyID(r.sealed)]++
			out, changed, err := kr.Reseal(r.sealed, col.Context(r.values))
			if err != nil {
				cr.Unreadable++
				if len(res.Unreadable) < maxUnreadableListed {
					res.Unreadable = append(res.Unreadable, Unreadable{Column: col.Name(), Key: r.values[:len(col.Key)], Err: err})
				}
				continue
			}
			if !changed {
				cr.Current++
				continue
			}
			stored := out
			if col.JSONField != "" {
				if stored, err = replaceJSONField(r.stored, col.JSONField, out); err != nil {
					return err
				}
			}
			updated, err := update(ctx, db, col, r, stored)
			if err != nil {
				return err
			}
			if updated {
				cr.Resealed++
			} else {
				cr.Changed++
			}
		}
		return nil
	})
	return n, last, err
}

func readBatch(ctx context.Context, db *dbutil.Database, col Column, after []any, batch int) ([]row, error) {
	exprs := append(append(append([]string{}, col.Key...), col.With...), col.Column)
	query := fmt.Sprintf("SELECT %s FROM %s WHERE %s IS NOT NULL", strings.Join(exprs, ", "), col.Table, col.Column)
	args := append([]any{}, after...)
	if after != nil {
		query += fmt.Sprintf(" AND (%s) > (%s)", strings.Join(col.Key, ", "), placeholders(1, len(col.Key)))
	}
	query += fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(col.Key, ", "), batch)
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		dest := make([]any, len(exprs))
		for i := range dest {
			dest[i] = new(any)
		}
		if err = rows.Scan(dest...); err != nil {
			return nil, err
		}
		r := row{}
		for i := range exprs[:len(exprs)-1] {
			v := *dest[i].(*any)
			if i < len(col.Key) {
				r.key = append(r.key, v)
			}
			r.values = append(r.values, text(v))
		}
		switch v := (*dest[len(exprs)-1].(*any)).(type) {
		case []byte:
			r.stored = v
		case string:
			r.stored = []byte(v)
		}
		if r.sealed, err = sealedValue(r.stored, col.JSONField); err != nil {
			return nil, fmt.Errorf("row %v: %w", r.values[:len(col.Key)], err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func update(ctx context.Context, db *dbutil.Database, col Column, r row, stored []byte) (bool, error) {
	// Compared with the value read, so a row rewritten meanwhile is not overwritten.
	var value any = stored
	if col.JSONField != "" {
		value = string(stored)
	}
	var old any = r.stored
	if col.JSONField != "" {
		old = string(r.stored)
	}
	conds := make([]string, len(col.Key))
	for i, k := range col.Key {
		conds[i] = fmt.Sprintf("%s = $%d", k, i+3)
	}
	query := fmt.Sprintf("UPDATE %s SET %s = $1 WHERE %s = $2 AND %s", col.Table, col.Column, col.Column, strings.Join(conds, " AND "))
	result, err := db.Exec(ctx, query, append([]any{value, old}, r.key...)...)
	if err != nil {
		return false, err
	}
	affected, err := result.RowsAffected()
	return affected == 1, err
}

func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(ps, ", ")
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// sealedValue is the sealed value in a stored column: the column itself, or the base64 string
// in the JSON object's field (nil when the field is absent or empty).
func sealedValue(stored []byte, field string) ([]byte, error) {
	if field == "" || stored == nil {
		return stored, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(stored, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	raw, ok := obj[field]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var encoded string
	if err := json.Unmarshal(raw, &encoded); err != nil {
		return nil, fmt.Errorf("field %s is not a string: %w", field, err)
	}
	if encoded == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(encoded)
}

func replaceJSONField(stored []byte, field string, sealed []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(stored, &obj); err != nil {
		return nil, err
	}
	encoded, err := json.Marshal(base64.StdEncoding.EncodeToString(sealed))
	if err != nil {
		return nil, err
	}
	obj[field] = encoded
	return json.Marshal(obj)
}

package loadtest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// RowCopy copies one template row of Table (the first that Where selects) Count times in one
// transaction, giving the columns in Vary a new value for each copy. It seeds a database
// with many patients cheaply: each copy is a row the bridge itself wrote once, so the seed
// keeps to whatever schema the bridge has, and only the varied keys differ.
type RowCopy struct {
	Table string
	Where string // e.g. "id = $1"; "" takes any row
	Args  []any
	Vary  map[string]func(n int) any
}

// Dialect is "sqlite3" or "postgres" (database/sql driver names).
func placeholders(dialect string, n int) string {
	ph := make([]string, n)
	for i := range ph {
		if dialect == "postgres" {
			ph[i] = fmt.Sprintf("$%d", i+1)
		} else {
			ph[i] = "?"
		}
	}
	return strings.Join(ph, ", ")
}

// CopyRows runs the copy and returns how many rows it inserted.
func CopyRows(ctx context.Context, db *sql.DB, dialect string, rc RowCopy, count int) (int, error) {
	where := rc.Where
	if where == "" {
		where = "1=1"
	}
	if dialect != "postgres" {
		where = strings.ReplaceAll(where, "$1", "?")
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %s WHERE %s LIMIT 1", rc.Table, where), rc.Args...)
	if err != nil {
		return 0, fmt.Errorf("reading a template row of %s: %w", rc.Table, err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return 0, err
	}
	types, _ := rows.ColumnTypes()
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	if !rows.Next() {
		rows.Close()
		return 0, fmt.Errorf("%s has no template row (%s)", rc.Table, rc.Where)
	}
	if err = rows.Scan(ptrs...); err != nil {
		rows.Close()
		return 0, err
	}
	rows.Close()
	for i, v := range values {
		// Drivers return text and JSON columns as bytes; only binary columns go back as bytes.
		if b, ok := v.([]byte); ok && types != nil {
			if t := strings.ToUpper(types[i].DatabaseTypeName()); t != "BYTEA" && t != "BLOB" {
				values[i] = string(b)
			}
		}
	}
	for col := range rc.Vary {
		found := false
		for _, c := range cols {
			found = found || c == col
		}
		if !found {
			return 0, fmt.Errorf("%s has no column %s", rc.Table, col)
		}
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", rc.Table, strings.Join(quoted, ", "), placeholders(dialect, len(cols))))
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	row := make([]any, len(values))
	for n := range count {
		copy(row, values)
		for i, c := range cols {
			if vary, ok := rc.Vary[c]; ok {
				row[i] = vary(n)
			}
		}
		if _, err = stmt.ExecContext(ctx, row...); err != nil {
			return n, fmt.Errorf("copying a row of %s: %w", rc.Table, err)
		}
	}
	return count, tx.Commit()
}

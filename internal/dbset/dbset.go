// Package dbset passes a set of values to a PostgreSQL statement as one array parameter, so
// the statement's text is the same however many values there are. pgx then prepares it once
// per connection and keeps it: a list of placeholders per value ("IN ($1, $2, …)") is a new
// statement for every count, prepared again (a round trip and a parse of its own) and cached
// next to the others. SQLite keeps the list: it prepares in-process, and there passing the set
// as JSON (json_each) measured slower.
package dbset

import (
	"strconv"
	"strings"

	"go.mau.fi/util/dbutil"
)

// In is the condition that a column is one of values, to write after the column's name, with
// its arguments, the first of which is parameter $n: "= ANY($n)" with a text array on
// PostgreSQL, "IN ($n, $n+1, …)" with the values on SQLite. Parameters after it must be
// numbered after all of them; simplest is to put the set last.
func In(dialect dbutil.Dialect, n int, values []string) (string, []any) {
	if dialect == dbutil.Postgres {
		return "= ANY($" + strconv.Itoa(n) + ")", []any{values}
	}
	if len(values) == 0 {
		return "IN (NULL)", nil // matches nothing, as an empty array does
	}
	list, args := List(n, values)
	return "IN " + list, args
}

// List is "($first, $first+1, …)" for the values, and the values as arguments.
func List(first int, values []string) (string, []any) {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return "(" + Placeholders(first, len(values)) + ")", args
}

// Placeholders lists count numbered parameters from $first: "$1, $2, $3".
func Placeholders(first, count int) string {
	var b strings.Builder
	for i := range count {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

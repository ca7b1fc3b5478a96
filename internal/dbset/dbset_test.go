package dbset_test

import (
	"context"
	"slices"
	"testing"

	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbset"
	"github.com/careline/careline/internal/dbtest"
)

// TestInMatchesExactly: the set selects exactly its values, also ones SQL would quote, and
// none when empty.
func TestInMatchesExactly(t *testing.T) {
	dbtest.ForEach(t, "dbset", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE t (id TEXT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		all := []string{"plain", `quo"te`, "apo'strophe", `back\slash`, "ünï", "<&>", "new\nline", "", "x"}
		for _, id := range all {
			if _, err := db.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range [][]string{{"plain"}, all[1:8], {"x", "missing"}, {}} {
			in, args := dbset.In(db.Dialect, 1, want)
			rows, err := db.Query(ctx, `SELECT id FROM t WHERE id `+in+` ORDER BY id`, args...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			expect := slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id == "missing" })
			slices.Sort(expect)
			slices.Sort(got) // the databases' collations order differently
			if !slices.Equal(got, expect) {
				t.Errorf("set %q selected %q, want %q", want, got, expect)
			}
		}
	})
}

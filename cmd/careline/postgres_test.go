package main

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	"github.com/careline/careline/internal/pgtest"
)

func TestUsePgx(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, c := range []struct {
		name, uri, want string
		addsSSLMode     bool
	}{
		{"keeps sslmode", "postgres://u:p@db/careline?sslmode=verify-full&sslrootcert=/ca.pem", "postgres://u:p@db/careline?sslmode=verify-full&sslrootcert=%2Fca.pem", false},
		{"lib/pq's default", "postgres://u:p@db/careline", "postgres://u:p@db/careline?sslmode=require", true},
		{"drops lib/pq's protocol options", "postgresql://db/c?binary_parameters=yes&sslmode=disable&disable_prepared_binary_result=yes", "postgresql://db/c?sslmode=disable", false},
		{"key=value", "host=db user=u password='a b'", "host=db user=u password='a b' sslmode=require", true},
		{"key=value with sslmode", "host=db sslmode=disable", "host=db sslmode=disable", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, uri := "postgres", c.uri
			notes := usePgx(&typ, &uri)
			if typ != postgresDriver || uri != c.want {
				t.Errorf("usePgx(postgres, %q) = %q, %q; want %q, %q", c.uri, typ, uri, postgresDriver, c.want)
			}
			if want := 1 + map[bool]int{true: 1}[c.addsSSLMode]; len(notes) != want {
				t.Errorf("%d notes, want %d: %q", len(notes), want, notes)
			}
		})
	}
	t.Run("PGSSLMODE", func(t *testing.T) {
		t.Setenv("PGSSLMODE", "disable")
		typ, uri := "postgres", "postgres://db/c"
		usePgx(&typ, &uri)
		if uri != "postgres://db/c" {
			t.Errorf("with PGSSLMODE set, the URI became %q", uri)
		}
	})
	t.Run("SQLite", func(t *testing.T) {
		typ, uri := "sqlite3-fk-wal", "file:careline.db?_txlock=immediate"
		if notes := usePgx(&typ, &uri); notes != nil || typ != "sqlite3-fk-wal" || uri != "file:careline.db?_txlock=immediate" {
			t.Errorf("SQLite changed: %q %q %q", typ, uri, notes)
		}
	})
}

// An admin's URI written for lib/pq, with its protocol option, opens through pgx.
func TestUsePgxOpens(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t, "careline_pgx"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("binary_parameters", "yes")
	u.RawQuery = q.Encode()
	typ, uri := "postgres", u.String()
	usePgx(&typ, &uri)
	db, err := sql.Open(typ, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err = db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"github.com/careline/careline/internal/pgtest"
)

func TestUsePgx(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, c := range []struct {
		name, uri, want string
		notes           int
	}{
		{"keeps sslmode", "postgres://u:p@db/careline?sslmode=verify-full&sslrootcert=/ca.pem", "postgres://u:p@db/careline?sslmode=verify-full&sslrootcert=%2Fca.pem", 1},
		{"lib/pq's default", "postgres://u:p@db/careline", "postgres://u:p@db/careline?sslmode=require", 2},
		{"drops lib/pq's protocol options", "postgresql://db/c?binary_parameters=yes&sslmode=disable&disable_prepared_binary_result=yes", "postgresql://db/c?sslmode=disable", 1},
		{"fallback_application_name", "postgres://db/c?sslmode=disable&fallback_application_name=careline", "postgres://db/c?application_name=careline&sslmode=disable", 2},
		{"application_name wins over the fallback", "postgres://db/c?sslmode=disable&application_name=a&fallback_application_name=b", "postgres://db/c?application_name=a&sslmode=disable", 1},
		{"key=value", "host=db user=u password='a b'", "host=db user=u password='a b' sslmode=require", 2},
		{"key=value with sslmode", "host=db sslmode=disable", "host=db sslmode=disable", 1},
		{"key=value with sslmode spaced", "host=db sslmode = disable", "host=db sslmode = disable", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, uri := "postgres", c.uri
			notes, err := usePgx(&typ, &uri)
			if err != nil || typ != postgresDriver || uri != c.want {
				t.Errorf("usePgx(postgres, %q) = %q, %q, %v; want %q, %q", c.uri, typ, uri, err, postgresDriver, c.want)
			}
			if len(notes) != c.notes {
				t.Errorf("%d notes, want %d: %q", len(notes), c.notes, notes)
			}
		})
	}
	for _, c := range []struct{ name, uri, key string }{
		{"sslinline", "postgres://db/c?sslinline=true&sslcert=-----BEGIN", "sslinline"},
		{"hostaddr", "postgresql://db/c?hostaddr=10.0.0.5", "hostaddr"},
		{"key=value tz", "host=db tz=UTC", "tz"},
		{"key=value fallback", "host=db fallback_application_name=careline", "fallback_application_name"},
	} {
		t.Run("refuses "+c.name, func(t *testing.T) {
			typ, uri := "postgres", c.uri
			_, err := usePgx(&typ, &uri)
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("usePgx(postgres, %q): error %v, want one naming %s", c.uri, err, c.key)
			}
			if typ != "postgres" || uri != c.uri {
				t.Errorf("a refused URI was changed: %q %q", typ, uri)
			}
		})
	}
	t.Run("PGSSLMODE", func(t *testing.T) {
		t.Setenv("PGSSLMODE", "disable")
		typ, uri := "postgres", "postgres://db/c"
		if _, err := usePgx(&typ, &uri); err != nil || uri != "postgres://db/c" {
			t.Errorf("with PGSSLMODE set, the URI became %q (%v)", uri, err)
		}
	})
	t.Run("SQLite", func(t *testing.T) {
		typ, uri := "sqlite3-fk-wal", "file:careline.db?_txlock=immediate"
		if notes, err := usePgx(&typ, &uri); notes != nil || err != nil || typ != "sqlite3-fk-wal" || uri != "file:careline.db?_txlock=immediate" {
			t.Errorf("SQLite changed: %q %q %q %v", typ, uri, notes, err)
		}
	})
}

// An admin's URI written for lib/pq, with its protocol option and its fallback application
// name, opens through pgx, and PostgreSQL gets the name.
func TestUsePgxOpens(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t, "careline_pgx"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("binary_parameters", "yes")
	q.Set("fallback_application_name", "careline-pgx-test")
	u.RawQuery = q.Encode()
	typ, uri := "postgres", u.String()
	if _, err = usePgx(&typ, &uri); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(typ, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err = db.QueryRowContext(context.Background(), "SELECT current_setting('application_name')").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "careline-pgx-test" {
		t.Errorf("application_name %q, want the URI's fallback_application_name", name)
	}
}

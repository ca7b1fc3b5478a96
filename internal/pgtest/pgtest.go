// Package pgtest gives a test a PostgreSQL database of its own on the machine's server
// (127.0.0.1:5432, trust auth; CARELINE_TEST_POSTGRES names another), dropped when the test
// ends. It is the one PostgreSQL helper of careline's tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers Driver
	"go.mau.fi/util/dbutil"
)

// Driver is the database/sql driver careline opens PostgreSQL with (cmd/careline: pgx for
// database.type "postgres"); tests open their databases through it too.
const Driver = "pgx"

// defaultAdminURL is the server's maintenance database.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// AdminURL is the database test databases are created from: CARELINE_TEST_POSTGRES, or the
// local server.
func AdminURL() string {
	if u := os.Getenv("CARELINE_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultAdminURL
}

// NewDatabase creates a fresh database and returns its URI. A missing server fails the test:
// PostgreSQL support is part of what is tested.
func NewDatabase(tb testing.TB, prefix string) string {
	tb.Helper()
	admin, err := sql.Open(Driver, AdminURL())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err = admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		tb.Fatalf("PostgreSQL is part of what is tested and is not reachable (is it running on 127.0.0.1:5432, or set CARELINE_TEST_POSTGRES?): %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		_ = admin.Close()
		tb.Fatalf("creating a PostgreSQL database: %v", err)
	}
	// Registered before the caller's cleanups, so it runs after they closed their connections.
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			tb.Errorf("dropping %s: %v", name, err)
		}
		_ = admin.Close()
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open creates a fresh database and opens it; it is closed and dropped when the test ends.
func Open(tb testing.TB, prefix string) *dbutil.Database {
	tb.Helper()
	db, err := dbutil.NewWithDialect(NewDatabase(tb, prefix), Driver)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

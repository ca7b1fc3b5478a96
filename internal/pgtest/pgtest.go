// Package pgtest gives a test a PostgreSQL database of its own on the machine's server
// (127.0.0.1:5432, trust auth), dropped when the test ends.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"

	_ "github.com/lib/pq" // the PostgreSQL driver
)

// AdminURL is the server's maintenance database.
const AdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// NewDatabase creates a fresh database and returns its URI. A missing server fails the test:
// PostgreSQL support is part of what is tested.
func NewDatabase(tb testing.TB, prefix string) string {
	tb.Helper()
	admin, err := sql.Open("postgres", AdminURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("creating a PostgreSQL database (is PostgreSQL running on 127.0.0.1:5432?): %v", err)
	}
	tb.Cleanup(func() {
		if admin, err := sql.Open("postgres", AdminURL); err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
}

package main

import (
	"net/url"
	"os"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// postgresDriver is the database/sql driver careline opens PostgreSQL with. pgx sends a
// statement with its parameters in one round trip and keeps it prepared on the connection, so
// PostgreSQL plans it once; lib/pq (bridgev2's "postgres") prepares and executes each statement
// in two round trips and PostgreSQL plans it every time.
const postgresDriver = "pgx"

// libpqOnlyParams are lib/pq's own URI parameters. pgx would send unknown parameters to the
// server as settings, which PostgreSQL refuses; these only tune lib/pq's protocol, which pgx
// replaces.
var libpqOnlyParams = []string{"binary_parameters", "disable_prepared_binary_result"}

// usePgx makes database.type "postgres" open through pgx, keeping the admin's URI meaning
// what it meant with lib/pq, and says what it changed. It must run before mxmain opens the
// database.
func usePgx(typ, uri *string) (notes []string) {
	if *typ != "postgres" {
		return nil
	}
	*typ = postgresDriver
	notes = append(notes, `database.type is "postgres"; careline opens PostgreSQL through pgx (one round trip per statement, kept prepared), not lib/pq`)
	var ok bool
	*uri, ok = pgxURI(*uri)
	if ok {
		notes = append(notes, "database.uri has no sslmode; careline adds sslmode=require, lib/pq's default (pgx's would be prefer, which falls back to an unencrypted connection)")
	}
	return notes
}

// pgxURI drops lib/pq's own parameters from a postgres:// URI and, when neither the URI
// (postgres://… or key=value form) nor PGSSLMODE sets sslmode, adds lib/pq's default
// sslmode=require. pgx reads the other libpq parameters (sslrootcert, connect_timeout, …) as
// lib/pq did; any other parameter goes to the server as a setting.
func pgxURI(uri string) (out string, addedSSLMode bool) {
	needSSLMode := os.Getenv("PGSSLMODE") == ""
	if strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://") {
		u, err := url.Parse(uri)
		if err != nil {
			return uri, false // pgx reports it when it opens the database
		}
		q := u.Query()
		for _, p := range libpqOnlyParams {
			q.Del(p)
		}
		if needSSLMode && !q.Has("sslmode") {
			q.Set("sslmode", "require")
			addedSSLMode = true
		}
		u.RawQuery = q.Encode()
		return u.String(), addedSSLMode
	}
	// key=value form: quoted values may hold spaces, so it is only appended to.
	if needSSLMode && !strings.Contains(uri, "sslmode=") {
		return uri + " sslmode=require", true
	}
	return uri, false
}

// isPostgres tells whether database.type names PostgreSQL (before or after usePgx).
func isPostgres(typ string) bool {
	return typ == "postgres" || typ == postgresDriver
}

package main

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
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

// libpqUnsupportedParams are lib/pq's URI parameters pgx has no equivalent for, with what to
// do instead. Passed on, each would reach PostgreSQL as a setting and be refused with
// "unrecognized configuration parameter", which does not say the URI is the cause.
var libpqUnsupportedParams = map[string]string{
	"hostaddr":                 "name the server in host",
	"sslinline":                "put the certificates and key in files and name them in sslcert, sslkey and sslrootcert",
	"ssl_min_protocol_version": "PostgreSQL's own ssl_min_protocol_version setting bounds the version",
	"ssl_max_protocol_version": "PostgreSQL's own ssl_max_protocol_version setting bounds the version",
	"load_balance_hosts":       "list the hosts in host; they are tried in order",
	"tz":                       "set timezone in the URI's options, or on the database role",
}

// usePgx makes database.type "postgres" open through pgx, keeping the admin's URI meaning
// what it meant with lib/pq, and says what it changed; a lib/pq parameter pgx cannot honour is
// an error naming it. It must run before mxmain opens the database.
func usePgx(typ, uri *string) (notes []string, err error) {
	if *typ != "postgres" {
		return nil, nil
	}
	out, changes, err := pgxURI(*uri)
	if err != nil {
		return nil, err
	}
	*typ, *uri = postgresDriver, out
	notes = append(notes, `database.type is "postgres"; careline opens PostgreSQL through pgx (one round trip per statement, kept prepared), not lib/pq`)
	return append(notes, changes...), nil
}

// pgxURI drops lib/pq's own parameters from a postgres:// URI, turns its
// fallback_application_name into application_name (unless that is set), refuses parameters
// pgx cannot honour, and, when neither the URI (postgres://… or key=value form) nor PGSSLMODE
// sets sslmode, adds lib/pq's default sslmode=require. pgx reads the other libpq parameters
// (sslrootcert, connect_timeout, …) as lib/pq did; any other parameter goes to the server as a
// setting.
func pgxURI(uri string) (out string, notes []string, err error) {
	needSSLMode := os.Getenv("PGSSLMODE") == ""
	const addedSSLMode = "database.uri has no sslmode; careline adds sslmode=require, lib/pq's default (pgx's would be prefer, which falls back to an unencrypted connection)"
	if strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://") {
		u, err := url.Parse(uri)
		if err != nil {
			return uri, nil, nil // pgx reports it when it opens the database
		}
		q := u.Query()
		if err = refuseUnsupported(func(key string) bool { return q.Has(key) }); err != nil {
			return "", nil, err
		}
		for _, p := range libpqOnlyParams {
			q.Del(p)
		}
		if name := q.Get("fallback_application_name"); q.Has("fallback_application_name") {
			q.Del("fallback_application_name")
			if !q.Has("application_name") {
				q.Set("application_name", name)
				notes = append(notes, "database.uri's fallback_application_name is lib/pq's; careline passes it to pgx as application_name")
			}
		}
		if needSSLMode && !q.Has("sslmode") {
			q.Set("sslmode", "require")
			notes = append(notes, addedSSLMode)
		}
		u.RawQuery = q.Encode()
		return u.String(), notes, nil
	}
	// key=value form: quoted values may hold spaces, so it is only looked through and appended to.
	if err = refuseUnsupported(func(key string) bool { return hasKeyword(uri, key) }); err != nil {
		return "", nil, err
	}
	if hasKeyword(uri, "fallback_application_name") {
		return "", nil, errors.New("database.uri sets fallback_application_name, which only lib/pq reads: write application_name instead")
	}
	if needSSLMode && !hasKeyword(uri, "sslmode") {
		return uri + " sslmode=require", []string{addedSSLMode}, nil
	}
	return uri, nil, nil
}

// refuseUnsupported names the first parameter of libpqUnsupportedParams the URI sets.
func refuseUnsupported(has func(key string) bool) error {
	for _, key := range slices.Sorted(maps.Keys(libpqUnsupportedParams)) {
		if has(key) {
			return fmt.Errorf("database.uri sets %s, which careline's PostgreSQL driver (pgx) does not support: %s", key, libpqUnsupportedParams[key])
		}
	}
	return nil
}

// hasKeyword reports whether a key=value connection string sets key ("key=…" or "key = …").
func hasKeyword(conn, key string) bool {
	return regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(key) + `\s*=`).MatchString(conn)
}

// isPostgres tells whether database.type names PostgreSQL (before or after usePgx).
func isPostgres(typ string) bool {
	return typ == "postgres" || typ == postgresDriver
}

// Package names keeps patients' names, sealed at rest, for templates ({first_name},
// {last_name}) and staff's `find`. Staff and integrations may both record a name; the most
// recent record wins.
package names

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"golang.org/x/text/unicode/norm"

	"github.com/careline/careline/atrest"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Sources of a name.
const (
	SourceStaff = "staff"
	SourceFHIR  = "fhir"
)

// Name is a patient's recorded name.
type Name struct {
	PatientID  string
	LoginID    string
	First      string
	Last       string // may be empty
	Source     string
	RecordedBy string
	RecordedAt time.Time
}

// Full is "First Last" (or "First").
func (n *Name) Full() string { return strings.TrimSpace(n.First + " " + n.Last) }

// Store is the names' section of the bridge database.
type Store struct {
	db   *dbutil.Database
	seal *atrest.Keyring
}

// New returns the store on db (with its own version table); call Upgrade before use.
func New(db *dbutil.Database, seal *atrest.Keyring, log zerolog.Logger) *Store {
	return &Store{db: db.Child("careline_names_version", table, dbutil.ZeroLogger(log)), seal: seal}
}

// Upgrade creates or migrates the table.
func (s *Store) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

func firstContext(id string) string { return "patient-first-name:" + id }
func lastContext(id string) string  { return "patient-last-name:" + id }

// Set records a name unless a newer one is already recorded; it reports whether it did.
func (s *Store) Set(ctx context.Context, n *Name) (bool, error) {
	if strings.TrimSpace(n.First) == "" {
		return false, errors.New("a first name is required")
	}
	var last []byte
	if n.Last != "" {
		last = s.seal.SealString(n.Last, lastContext(n.PatientID))
	}
	res, err := s.db.Exec(ctx, `
		INSERT INTO careline_patient_name (patient_id, login_id, first_sealed, last_sealed, source, recorded_by, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (patient_id) DO UPDATE SET first_sealed=excluded.first_sealed, last_sealed=excluded.last_sealed,
			source=excluded.source, recorded_by=excluded.recorded_by, recorded_at=excluded.recorded_at
		WHERE careline_patient_name.recorded_at <= excluded.recorded_at`,
		n.PatientID, n.LoginID, s.seal.SealString(n.First, firstContext(n.PatientID)), last, n.Source, n.RecordedBy, n.RecordedAt.UnixMilli())
	if err != nil {
		return false, err
	}
	changed, err := res.RowsAffected()
	return changed == 1, err
}

const columns = `SELECT patient_id, login_id, first_sealed, last_sealed, source, recorded_by, recorded_at FROM careline_patient_name`

func (s *Store) scan(row dbutil.Scannable) (*Name, error) {
	var (
		n           Name
		first, last []byte
		at          int64
	)
	if err := row.Scan(&n.PatientID, &n.LoginID, &first, &last, &n.Source, &n.RecordedBy, &at); err != nil {
		return nil, err
	}
	var err error
	if n.First, err = s.seal.OpenString(first, firstContext(n.PatientID)); err != nil {
		return nil, err
	}
	if last != nil {
		if n.Last, err = s.seal.OpenString(last, lastContext(n.PatientID)); err != nil {
			return nil, err
		}
	}
	n.RecordedAt = time.UnixMilli(at)
	return &n, nil
}

// Get returns a patient's name, or nil if none is recorded.
func (s *Store) Get(ctx context.Context, patientID string) (*Name, error) {
	n, err := s.scan(s.db.QueryRow(ctx, columns+` WHERE patient_id=$1`, patientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return n, err
}

// Search returns the names of a login's patients that contain every word of query, ignoring
// case and accents ("lopez" finds "López"). Names are sealed, so each is opened: fine for a
// clinic's thousands of patients.
func (s *Store) Search(ctx context.Context, loginID, query string, limit int) ([]*Name, error) {
	words := strings.Fields(fold(query))
	if len(words) == 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, columns+` WHERE login_id=$1 ORDER BY recorded_at DESC`, loginID)
	if err != nil {
		return nil, err
	}
	all, err := dbutil.NewRowIterWithError(rows, s.scan, nil).AsList()
	if err != nil {
		return nil, err
	}
	var found []*Name
	for _, n := range all {
		full := fold(n.Full())
		match := true
		for _, w := range words {
			if !strings.Contains(full, w) {
				match = false
				break
			}
		}
		if match {
			found = append(found, n)
			if len(found) == limit {
				break
			}
		}
	}
	return found, nil
}

// Delete forgets a patient's name (the patient's record is being removed).
func (s *Store) Delete(ctx context.Context, patientID string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM careline_patient_name WHERE patient_id=$1`, patientID)
	return err
}

// fold lower-cases text and drops accents, so what staff type matches what was recorded.
func fold(text string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(text)) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

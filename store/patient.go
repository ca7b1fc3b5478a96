package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/careline/careline/phone"
)

// Patient is one patient of one clinic login.
type Patient struct {
	ID         string
	LoginID    string
	Phone      string // E.164, opened from the sealed column
	OptedOutAt time.Time
	Consent    *Consent
	HasDOB     bool
}

// Consent records a patient's agreement to receive message content as plain SMS.
type Consent struct {
	At  time.Time
	By  string // Matrix ID of the staff member who recorded it
	How string // e.g. "verbal, in clinic"
}

func phoneContext(id string) string { return "patient-phone:" + id }
func dobContext(id string) string   { return "patient-dob:" + id }

// Staff type the consent's "how" freely, and will type names into it: it is sealed.
func consentHowContext(id string) string { return "patient-consent-how:" + id }

const patientColumns = `id, login_id, phone_sealed, dob_sealed, opted_out_at, consent_at, consent_by, consent_how_sealed`

// GetOrCreatePatient returns the patient, recording them first if new; the id is computed by
// the caller from the number.
func (s *Store) GetOrCreatePatient(ctx context.Context, id, loginID, number string) (*Patient, error) {
	// Most messages come from known patients: a read, which writes nothing.
	if p, err := s.GetPatient(ctx, id); err != nil || p != nil {
		return p, err
	}
	// DO UPDATE (of nothing) rather than DO NOTHING, so a row created meanwhile is returned too.
	p, err := s.scanPatient(s.DB.QueryRow(ctx, `
		INSERT INTO careline_patient (id, login_id, phone_sealed, phone_last4, created_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET id=excluded.id
		RETURNING `+patientColumns,
		id, loginID, s.Seal.SealString(number, phoneContext(id)), phone.Last4(number), s.nowMilli()))
	if err != nil {
		return nil, fmt.Errorf("recording a patient: %w", err)
	}
	return p, nil
}

// GetPatient returns the patient, or nil if there is none with that id.
func (s *Store) GetPatient(ctx context.Context, id string) (*Patient, error) {
	p, err := s.scanPatient(s.DB.QueryRow(ctx, `SELECT `+patientColumns+` FROM careline_patient WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading a patient: %w", err)
	}
	return p, nil
}

func (s *Store) scanPatient(row scannable) (*Patient, error) {
	var (
		p                 Patient
		sealed, dob, how  []byte
		optedOut, consent sql.NullInt64
		by                sql.NullString
	)
	err := row.Scan(&p.ID, &p.LoginID, &sealed, &dob, &optedOut, &consent, &by, &how)
	if err != nil {
		return nil, err
	}
	if p.Phone, err = s.Seal.OpenString(sealed, phoneContext(p.ID)); err != nil {
		return nil, err
	}
	p.HasDOB = dob != nil
	if optedOut.Valid {
		p.OptedOutAt = time.UnixMilli(optedOut.Int64)
	}
	if consent.Valid {
		p.Consent = &Consent{At: time.UnixMilli(consent.Int64), By: by.String}
		if how != nil {
			if p.Consent.How, err = s.Seal.OpenString(how, consentHowContext(p.ID)); err != nil {
				return nil, err
			}
		}
	}
	return &p, nil
}

// SetConsent records (or, with nil, revokes) consent to plain SMS.
func (s *Store) SetConsent(ctx context.Context, id string, c *Consent) error {
	if c == nil {
		_, err := s.DB.Exec(ctx, `UPDATE careline_patient SET consent_at=NULL, consent_by=NULL, consent_how_sealed=NULL WHERE id=$1`, id)
		return err
	}
	_, err := s.DB.Exec(ctx, `UPDATE careline_patient SET consent_at=$2, consent_by=$3, consent_how_sealed=$4 WHERE id=$1`,
		id, c.At.UnixMilli(), c.By, s.Seal.SealString(c.How, consentHowContext(id)))
	return err
}

// SetDOB records the patient's date of birth (sealed), used as an optional second factor.
func (s *Store) SetDOB(ctx context.Context, id string, dob time.Time) error {
	_, err := s.DB.Exec(ctx, `UPDATE careline_patient SET dob_sealed=$2 WHERE id=$1`,
		id, s.Seal.SealString(dob.Format(time.DateOnly), dobContext(id)))
	return err
}

// CheckDOB compares a date of birth with the recorded one.
func (s *Store) CheckDOB(ctx context.Context, id string, dob time.Time) (bool, error) {
	var sealed []byte
	err := s.DB.QueryRow(ctx, `SELECT dob_sealed FROM careline_patient WHERE id=$1`, id).Scan(&sealed)
	if err != nil || sealed == nil {
		return false, err
	}
	recorded, err := s.Seal.OpenString(sealed, dobContext(id))
	return err == nil && recorded == dob.Format(time.DateOnly), err
}

// SetOptedOut marks the patient opted out of texts (STOP) or back in (START).
func (s *Store) SetOptedOut(ctx context.Context, id string, optedOut bool) error {
	var at any
	if optedOut {
		at = s.nowMilli()
	}
	_, err := s.DB.Exec(ctx, `UPDATE careline_patient SET opted_out_at=$2 WHERE id=$1`, id, at)
	return err
}

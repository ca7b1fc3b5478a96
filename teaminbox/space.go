package teaminbox

import (
	"context"
	"database/sql"
	"errors"
)

// NeedsReply is the owner key of the "Needs reply" space; other spaces are keyed by the Matrix
// ID of the staff member whose assigned conversations they hold.
const NeedsReply = ""

// Spaces names the spaces a conversation's room belongs in: "Needs reply" while the patient
// waits for an answer, and its owner's space while it is open and assigned.
func (c *Conversation) Spaces() []string {
	var owners []string
	if c.Waiting() {
		owners = append(owners, NeedsReply)
	}
	if c.Open() && c.Assignee != "" {
		owners = append(owners, c.Assignee)
	}
	return owners
}

// SpaceChild is a patient room careline has put in a space.
type SpaceChild struct {
	Owner  string
	RoomID string
}

// SpaceID returns the Matrix space kept for owner, or "" if none was created yet.
func (s *Store) SpaceID(ctx context.Context, owner string) (string, error) {
	var spaceID string
	err := s.db.QueryRow(ctx, `SELECT space_id FROM careline_teaminbox_space WHERE owner=$1`, owner).Scan(&spaceID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return spaceID, err
}

// SaveSpace remembers the space created for owner.
func (s *Store) SaveSpace(ctx context.Context, owner, spaceID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO careline_teaminbox_space (owner, space_id) VALUES ($1, $2)
		ON CONFLICT (owner) DO UPDATE SET space_id=excluded.space_id`, owner, spaceID)
	return err
}

// Spaces lists every space careline keeps, by owner.
func (s *Store) Spaces(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.Query(ctx, `SELECT owner, space_id FROM careline_teaminbox_space`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	spaces := map[string]string{}
	for rows.Next() {
		var owner, spaceID string
		if err = rows.Scan(&owner, &spaceID); err != nil {
			return nil, err
		}
		spaces[owner] = spaceID
	}
	return spaces, rows.Err()
}

// SpaceChildren lists the spaces a patient's room was put in.
func (s *Store) SpaceChildren(ctx context.Context, patientID string) ([]SpaceChild, error) {
	rows, err := s.db.Query(ctx, `SELECT owner, room_id FROM careline_teaminbox_space_child WHERE patient_id=$1 ORDER BY owner`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SpaceChild
	for rows.Next() {
		var c SpaceChild
		if err = rows.Scan(&c.Owner, &c.RoomID); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AddedToSpace records that the patient's room was put in owner's space.
func (s *Store) AddedToSpace(ctx context.Context, owner, patientID, roomID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO careline_teaminbox_space_child (owner, patient_id, room_id) VALUES ($1, $2, $3)
		ON CONFLICT (owner, patient_id) DO UPDATE SET room_id=excluded.room_id`, owner, patientID, roomID)
	return err
}

// RemovedFromSpace records that the patient's room left owner's space.
func (s *Store) RemovedFromSpace(ctx context.Context, owner, patientID string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM careline_teaminbox_space_child WHERE owner=$1 AND patient_id=$2`, owner, patientID)
	return err
}

// PatientIDs lists every conversation the inbox knows, to bring the spaces up to date at start.
func (s *Store) PatientIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT patient_id FROM careline_teaminbox_conversation ORDER BY patient_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err = rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

package loadtest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/token"
)

// MemoryResult is careline's memory with many patients on file and some of them active.
type MemoryResult struct {
	Patients, Active int
	SeedTime         time.Duration
	IdleRSS          int64 // after a restart on the seeded database, before any traffic
	ActiveRSS        int64 // after the active patients texted in and opened their thread page
	PeakRSS          int64 // high-water mark over the whole process life
	ThreadPages      int   // thread pages served to the active sessions
}

// seedTables are the rows that make one patient: careline's record, the bridgev2 portal (the
// patient's room), the ghost (the patient in Matrix) and the login's link to the portal.
func seedTables(templateID string) []RowCopy {
	seedID := func(n int) any { return fmt.Sprintf("pseed%07d", n) }
	return []RowCopy{
		{Table: "careline_patient", Where: "id = $1", Args: []any{templateID}, Vary: map[string]func(int) any{"id": seedID}},
		{Table: "ghost", Where: "id = $1", Args: []any{templateID}, Vary: map[string]func(int) any{"id": seedID}},
		{Table: "portal", Where: "id = $1", Args: []any{templateID}, Vary: map[string]func(int) any{
			"id": seedID, "mxid": func(n int) any { return fmt.Sprintf("!seed%07d:%s", n, localstack.ServerName) },
		}},
		{Table: "user_portal", Where: "portal_id = $1", Args: []any{templateID}, Vary: map[string]func(int) any{"portal_id": seedID}},
	}
}

func (b *Bridge) openDB() (*sql.DB, string, error) {
	if b.Opts.DatabaseURI != "" {
		db, err := sql.Open("postgres", b.Opts.DatabaseURI)
		return db, "postgres", err
	}
	db, err := sql.Open(sqliteDriver, "file:"+filepath.Join(b.Opts.Dir, "bridge.db")+"?_busy_timeout=10000")
	return db, "sqlite3", err
}

// MeasureMemory seeds careline's database with patients (one real patient texts in, then its
// rows are copied with new IDs while careline is stopped), restarts careline, lets active new
// patients text in and each open their thread page in a portal session of their own, and
// samples careline's memory.
func MeasureMemory(ctx context.Context, b *Bridge, rec *Recorder, patients, active int) (MemoryResult, error) {
	res := MemoryResult{Patients: patients, Active: active}
	if b.Opts.Kind != Careline {
		return res, fmt.Errorf("the memory measurement is careline's (it seeds careline's tables)")
	}
	dormant := patients - active
	if dormant < 1 || active < 1 || patients >= 200000 {
		return res, fmt.Errorf("need at least one dormant and one active patient, and fewer than 200,000 in all")
	}
	// The template patient uses a number the active patients do not.
	if err := Warm(ctx, b, rec, patients, 1, 1); err != nil {
		return res, err
	}
	db, dialect, err := b.openDB()
	if err != nil {
		return res, err
	}
	defer db.Close()
	var templateID string
	if err = db.QueryRowContext(ctx, `SELECT id FROM careline_patient LIMIT 1`).Scan(&templateID); err != nil {
		return res, fmt.Errorf("finding the template patient: %w", err)
	}
	b.Stop()
	start := time.Now()
	for _, rc := range seedTables(templateID) {
		if _, err = CopyRows(ctx, db, dialect, rc, dormant-1); err != nil {
			return res, err
		}
	}
	res.SeedTime = time.Since(start)
	if err = b.Start(ctx); err != nil {
		return res, err
	}
	// Let start-up work (logins, background jobs) finish before sampling.
	time.Sleep(3 * time.Second)
	idle, err := SampleProc(b.PID())
	if err != nil {
		return res, err
	}
	res.IdleRSS = idle.RSS

	if err = Warm(ctx, b, rec, 0, active, 8); err != nil {
		return res, err
	}
	sessions, err := b.openSessions(ctx, db, dialect, templateID, active)
	if err != nil {
		return res, err
	}
	if res.ThreadPages, err = b.openThreads(ctx, sessions, 8); err != nil {
		return res, err
	}
	after, err := SampleProc(b.PID())
	if err != nil {
		return res, err
	}
	res.ActiveRSS, res.PeakRSS = after.RSS, after.PeakRSS
	return res, nil
}

// openSessions records a verified portal session for each of the n newest (active) patients,
// as a completed one-time-code verification would, and returns the session tokens.
func (b *Bridge) openSessions(ctx context.Context, db *sql.DB, dialect, templateID string, n int) ([]string, error) {
	q := `SELECT id FROM careline_patient WHERE id NOT LIKE 'pseed%' AND id <> $1 ORDER BY created_at DESC LIMIT $2`
	ins := `INSERT INTO careline_portal_session (token_hash, patient_id, link_hash, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`
	if dialect != "postgres" {
		q = `SELECT id FROM careline_patient WHERE id NOT LIKE 'pseed%' AND id <> ?1 ORDER BY created_at DESC LIMIT ?2`
		ins = `INSERT INTO careline_portal_session (token_hash, patient_id, link_hash, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)`
	}
	rows, err := db.QueryContext(ctx, q, templateID, n)
	if err != nil {
		return nil, fmt.Errorf("finding the active patients: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err = rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != n {
		return nil, fmt.Errorf("found %d active patients, want %d", len(ids), n)
	}
	// The portal stores keyed hashes of session tokens (keyed from the identity key).
	hasher, err := b.tokenHasher()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var tokens []string
	for _, id := range ids {
		tok := token.New()
		if _, err = db.ExecContext(ctx, ins, hasher.Hash("session", tok), id, hasher.Hash("link", token.New()), now.UnixMilli(), now.Add(12*time.Hour).UnixMilli()); err != nil {
			return nil, fmt.Errorf("recording a portal session: %w", err)
		}
		tokens = append(tokens, tok)
	}
	return tokens, nil
}

// openThreads fetches the thread page once per session and counts the pages served (200).
func (b *Bridge) openThreads(ctx context.Context, sessions []string, concurrency int) (int, error) {
	var served atomic.Int64
	var firstErr error
	var once sync.Once
	next := make(chan string)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.PublicURL+"/thread", nil)
				req.AddCookie(&http.Cookie{Name: "__Host-careline_session", Value: tok})
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("thread page: HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				served.Add(1)
			}
		}()
	}
	for _, tok := range sessions {
		next <- tok
	}
	close(next)
	wg.Wait()
	return int(served.Load()), firstErr
}

// tokenHasher is the portal's token hasher, keyed from the bridge config's identity key.
func (b *Bridge) tokenHasher() (*token.Hasher, error) {
	data, err := os.ReadFile(b.ConfigPath)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Network struct {
			Privacy struct {
				IdentityKey string `yaml:"identity_key"`
			} `yaml:"privacy"`
		} `yaml:"network"`
	}
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	return token.NewHasher(token.HashKeyFromSecret(cfg.Network.Privacy.IdentityKey))
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/pgtest"
)

func TestAppendVerifyIntact(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		if r := verify(t, l); !r.Intact() || r.Entries != 0 || r.FirstSeq != 0 || r.LastSeq != 0 {
			t.Fatalf("empty trail: %+v", r)
		}
		before := time.Now().Add(-time.Second)
		entries := fill(t, l, 20)
		for i, e := range entries {
			if e.Seq != int64(i+1) {
				t.Errorf("entry %d has seq %d", i+1, e.Seq)
			}
			if e.At.Location() != time.UTC || e.At.Nanosecond()%int(time.Millisecond) != 0 || e.At.Before(before) {
				t.Errorf("entry %d: At %v is not a fresh UTC time in milliseconds", e.Seq, e.At)
			}
			if len(e.Hash) != 32 || !l.valid(&e) {
				t.Errorf("entry %d: bad hash", e.Seq)
			}
			if i == 0 && len(e.PrevHash) != 0 || i > 0 && !bytes.Equal(e.PrevHash, entries[i-1].Hash) {
				t.Errorf("entry %d does not chain from the one before", e.Seq)
			}
		}
		r := verify(t, l)
		if !r.Intact() || r.Entries != 20 || r.FirstSeq != 1 || r.LastSeq != 20 || !bytes.Equal(r.HeadHash, entries[19].Hash) {
			t.Fatalf("report: %+v", r)
		}
		// What was read back is what was written.
		var got []Entry
		err := l.scan(context.Background(), "", nil, func(e *Entry) error { got = append(got, *e); return nil })
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if !got[i].At.Equal(entries[i].At) || got[i].Detail != entries[i].Detail || got[i].TwilioSID != entries[i].TwilioSID {
				t.Errorf("entry %d read back as %+v, written as %+v", i+1, got[i], entries[i])
			}
		}
	})
}

func TestAppendRefuses(t *testing.T) {
	l := newLog(t, openSQLite(t, "immediate"))
	ctx := context.Background()
	for name, e := range map[string]Entry{
		"no actor":    {Action: "login"},
		"no action":   {Actor: "system"},
		"long detail": {Actor: "system", Action: "message.sent", Detail: strings.Repeat("x", MaxFieldLen+1)},
	} {
		if _, err := l.Append(ctx, e); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
	if r := verify(t, l); r.Entries != 0 {
		t.Fatalf("refused entries were stored: %+v", r)
	}
}

func TestAppendJoinsTransaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fill(t, l, 2)
		errRollback := errors.New("roll back")
		err := db.DoTxn(context.Background(), nil, func(ctx context.Context) error {
			if _, err := l.Append(ctx, Entry{Actor: "system", Action: "optout", PatientID: "p1"}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		fill(t, l, 1)
		if r := verify(t, l); !r.Intact() || r.LastSeq != 3 {
			t.Fatalf("after a rolled back append: %+v", r)
		}
	})
}

func TestNewRefusesShortKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a 16-byte key")
		}
	}()
	New(openSQLite(t, "immediate"), make([]byte, 16), zerolog.Nop())
}

func TestKeyFromSecret(t *testing.T) {
	a, b := KeyFromSecret("secret one"), KeyFromSecret("secret two")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, KeyFromSecret("secret one")) {
		t.Fatal("KeyFromSecret is not a deterministic 32-byte function of the secret")
	}
	if bytes.Contains(a, []byte("secret one")) {
		t.Fatal("the key contains the secret")
	}
}

func TestVerifyCatchesEdit(t *testing.T) {
	for _, edit := range []string{
		`actor = actor || 'x'`,
		`action = 'login'`,
		`patient_id = 'p-other'`,
		`channel = 'plain'`,
		`twilio_sid = ''`,
		`detail = detail || ' '`,
		`at = at + 1`,
		`prev_hash = hash`,
		`hash = prev_hash`,
	} {
		t.Run(edit, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				l := newLog(t, db)
				fill(t, l, 12)
				exec(t, l, `UPDATE careline_audit SET `+edit+` WHERE seq = 7`)
				r := verify(t, l)
				wantProblems(t, r, Problem{Seq: 7, Last: 7, Kind: Edited})
				if r.Problems[0].What != "entry 7 was edited" {
					t.Errorf("said %q", r.Problems[0].What)
				}
			})
		})
	}
}

func TestVerifyCatchesDeletion(t *testing.T) {
	for _, c := range []struct {
		name, where string
		want        Problem
		what        string
	}{
		{"middle", `seq = 10`, Problem{Seq: 10, Last: 10, Kind: Missing}, "entry 10 is missing"},
		{"several", `seq BETWEEN 10 AND 12`, Problem{Seq: 10, Last: 12, Kind: Missing}, "entries 10–12 are missing"},
		{"first", `seq = 1`, Problem{Seq: 1, Last: 1, Kind: Missing}, "entry 1 is missing"},
		{"last", `seq = 20`, Problem{Seq: 20, Last: 20, Kind: Missing}, "entry 20 is missing from the end of the trail"},
		{"tail", `seq > 15`, Problem{Seq: 16, Last: 20, Kind: Missing}, "entries 16–20 are missing from the end of the trail"},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				l := newLog(t, db)
				fill(t, l, 20)
				exec(t, l, `DELETE FROM careline_audit WHERE `+c.where)
				r := verify(t, l)
				wantProblems(t, r, c.want)
				if r.Problems[0].What != c.what {
					t.Errorf("said %q, want %q", r.Problems[0].What, c.what)
				}
			})
		})
	}
}

// Cutting off the tail and rewinding the head's seq (but not its hash) is still noticed.
func TestVerifyCatchesRewoundHead(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fill(t, l, 10)
		exec(t, l, `DELETE FROM careline_audit WHERE seq = 10`)
		exec(t, l, `UPDATE careline_audit_head SET last_seq = 9`)
		wantProblems(t, verify(t, l), Problem{Seq: 9, Last: 9, Kind: Unlinked})
	})
}

func TestVerifyCatchesRowsPastHead(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fill(t, l, 10)
		exec(t, l, `UPDATE careline_audit_head SET last_seq = 8`)
		r := verify(t, l)
		// The head no longer matches entry 8, and 9–10 lie beyond it.
		wantProblems(t, r, Problem{Seq: 8, Last: 8, Kind: Unlinked}, Problem{Seq: 9, Last: 9, Kind: Beyond})
	})
}

func TestVerifyCatchesReorder(t *testing.T) {
	for _, c := range []struct{ a, b int64 }{{5, 6}, {3, 15}, {1, 20}} {
		t.Run(fmt.Sprint(c.a, "<->", c.b), func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *dbutil.Database) {
				l := newLog(t, db)
				fill(t, l, 20)
				exec(t, l, `UPDATE careline_audit SET seq = -1 WHERE seq = $1`, c.a)
				exec(t, l, `UPDATE careline_audit SET seq = $1 WHERE seq = $2`, c.a, c.b)
				exec(t, l, `UPDATE careline_audit SET seq = $1 WHERE seq = -1`, c.b)
				r := verify(t, l)
				wantProblems(t, r, Problem{Seq: c.a, Last: c.a, Kind: Moved}, Problem{Seq: c.b, Last: c.b, Kind: Moved})
				if want := fmt.Sprintf("entry %d was moved: it was written as entry %d", c.a, c.b); r.Problems[0].What != want {
					t.Errorf("said %q, want %q", r.Problems[0].What, want)
				}
			})
		})
	}
}

// Deleting an entry and renumbering the rest to close the gap leaves every later entry moved
// and the end missing.
func TestVerifyCatchesRenumbering(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		fill(t, l, 8)
		exec(t, l, `DELETE FROM careline_audit WHERE seq = 5`)
		for seq := 6; seq <= 8; seq++ {
			exec(t, l, `UPDATE careline_audit SET seq = $1 WHERE seq = $2`, seq-1, seq)
		}
		wantProblems(t, verify(t, l),
			Problem{Seq: 5, Last: 5, Kind: Moved}, Problem{Seq: 6, Last: 6, Kind: Moved}, Problem{Seq: 7, Last: 7, Kind: Moved},
			Problem{Seq: 8, Last: 8, Kind: Missing})
	})
}

// Someone with database access but not the key edits an entry and rebuilds the chain after it
// with a key of their own: every rebuilt entry fails.
func TestVerifyCatchesRechainWithoutKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		entries := fill(t, l, 12)
		forger := New(db, KeyFromSecret("the attacker's guess"), zerolog.Nop())
		prev := entries[5].Hash
		for _, e := range entries[6:] {
			if e.Seq == 7 {
				e.Detail = "n=70"
			}
			e.PrevHash = prev
			e.Hash = forger.hash(&e)
			exec(t, l, `UPDATE careline_audit SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4`, e.Detail, e.PrevHash, e.Hash, e.Seq)
			prev = e.Hash
		}
		exec(t, l, `UPDATE careline_audit_head SET last_hash = $1`, prev)
		r := verify(t, l)
		wantProblems(t, r, Problem{Seq: 7, Last: 12, Kind: Edited})
		if r.Problems[0].What != "entries 7–12 were edited" {
			t.Errorf("said %q", r.Problems[0].What)
		}
	})
}

func TestConcurrentAppends(t *testing.T) {
	const goroutines, each = 16, 25
	run := func(t *testing.T, open func() *dbutil.Database) {
		// Two pools stand for two processes sharing the database.
		logs := []*Log{newLog(t, open()), newLog(t, open())}
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Go(func() {
				if g%4 == 3 { // batches of 5, interleaved with single appends
					for range each / 5 {
						if err := logs[g%2].AppendAll(context.Background(), make5("batch")); err != nil {
							errs <- err
						}
					}
					return
				}
				for range each {
					if _, err := logs[g%2].Append(context.Background(), Entry{Actor: "system", Action: "login"}); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		r := verify(t, logs[0])
		if !r.Intact() || r.Entries != goroutines*each || r.FirstSeq != 1 || r.LastSeq != goroutines*each {
			t.Fatalf("report: %+v", r)
		}
	}
	for _, txlock := range []string{"immediate", "deferred"} {
		t.Run("sqlite-"+txlock, func(t *testing.T) {
			uri := sqliteURI(t, txlock)
			run(t, func() *dbutil.Database { return openURI(t, uri, "sqlite3-fk-wal") })
		})
	}
	t.Run("postgres", func(t *testing.T) {
		uri := pgtest.NewDatabase(t, "careline_audit_test")
		run(t, func() *dbutil.Database { return openURI(t, uri, pgtest.Driver) })
	})
}

func make5(action string) []Entry {
	entries := make([]Entry, 5)
	for i := range entries {
		entries[i] = Entry{Actor: "system", Action: action, Detail: fmt.Sprintf("n=%d", i)}
	}
	return entries
}

// AppendAll numbers and chains a batch in order after what came before, in one head update,
// and a batch with one bad entry writes none of them.
func TestAppendAll(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		ctx := context.Background()
		fill(t, l, 2)
		batch := make5("message.received")
		if err := l.AppendAll(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for i, e := range batch {
			if e.Seq != int64(3+i) || len(e.Hash) == 0 || (i > 0 && !bytes.Equal(e.PrevHash, batch[i-1].Hash)) {
				t.Fatalf("entry %d: seq %d, prev %x, previous hash %x", i, e.Seq, e.PrevHash, batch[max(i-1, 0)].Hash)
			}
		}
		if e, err := l.Append(ctx, Entry{Actor: "system", Action: "login"}); err != nil || e.Seq != 8 || !bytes.Equal(e.PrevHash, batch[4].Hash) {
			t.Fatalf("the entry after the batch: %+v, %v", e, err)
		}
		bad := make5("message.received")
		bad[3].Detail = strings.Repeat("x", MaxFieldLen+1)
		if err := l.AppendAll(ctx, bad); err == nil {
			t.Fatal("a batch with an oversized field was accepted")
		}
		if r := verify(t, l); !r.Intact() || r.Entries != 8 || r.LastSeq != 8 {
			t.Fatalf("report: %+v", r)
		}
	})
}

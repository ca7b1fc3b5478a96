package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/appointment"
	"github.com/careline/careline/atrest"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/bridge"
	"github.com/careline/careline/broadcast"
	"github.com/careline/careline/floodgate"
	"github.com/careline/careline/names"
	"github.com/careline/careline/portalremind"
	"github.com/careline/careline/schedule"
	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
	"github.com/careline/careline/throttle"
	"github.com/careline/careline/webhookout"
)

// The old key's id is long and unusual so that the scan for values still under it, over every
// column of every table, cannot match anything else.
const oldKeyID, newKeyID = "old-key-2025-rotated", "k2026"

// sealedData is a database with one value in every sealed column, written by careline's own
// code under the old key.
type sealedData struct {
	db       *dbutil.Database
	store    *store.Store
	names    *names.Store
	schedule *schedule.Store
	bcast    *broadcast.Store
	appts    *appointment.Store
	logins   *database.Database
	sendID   string // the scheduled send's ID, which Add chooses
}

func openSealedData(t *testing.T, db *dbutil.Database, kr *atrest.Keyring) *sealedData {
	t.Helper()
	log := zerolog.Nop()
	d := &sealedData{
		db: db, store: store.New(db, kr, log), names: names.New(db, kr, log), schedule: schedule.New(db, kr, log),
		bcast: broadcast.New(db, kr, log), appts: appointment.New(db, kr, log),
		logins: database.New("", (&bridge.Connector{}).GetDBMetaTypes(), db),
	}
	ctx := context.Background()
	for _, up := range []func(context.Context) error{d.logins.Upgrade, d.store.Upgrade, d.names.Upgrade, d.schedule.Upgrade, d.bcast.Upgrade, d.appts.Upgrade,
		audit.New(db, audit.KeyFromSecret(testIdentityKey), log).Upgrade} {
		if err := up(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (d *sealedData) write(t *testing.T, kr *atrest.Keyring) {
	t.Helper()
	ctx := context.Background()
	s := d.store
	_, err := s.GetOrCreatePatient(ctx, "p1", "L1", "+14155550123")
	must(t, err)
	must(t, s.SetDOB(ctx, "p1", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)))
	must(t, s.SetConsent(ctx, "p1", &store.Consent{At: time.Now(), By: "@nurse:clinic.example", How: "asked at the front desk"}))
	_, _, err = s.SaveInbound(ctx, &store.Inbound{MessageID: "SM1", LoginID: "L1", PatientID: "p1", Channel: store.ChannelSMS, From: "+14155550123", Body: "my knee hurts"})
	must(t, err)
	must(t, s.SaveMessage(ctx, &store.Message{ID: "m1", PatientID: "p1", Channel: store.ChannelSecure, Body: "your results", Status: store.StatusQueued,
		Attachments: []*store.Attachment{{ID: "a1", FileName: "MRI knee.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 knee")}}}))
	must(t, s.Enqueue(ctx, &store.Outgoing{LoginID: "L1", PatientID: "p1", MessageID: "m1", Kind: store.KindMessage, Body: "Sunrise: see the link", GiveUpAt: time.Now().Add(time.Hour)}))
	_, err = d.names.Set(ctx, &names.Name{PatientID: "p1", LoginID: "L1", First: "Ana", Last: "López", Source: "staff", RecordedBy: "@nurse:clinic.example", RecordedAt: time.Now()})
	must(t, err)
	send := &schedule.Send{LoginID: "L1", PatientID: "p1", Due: time.Now().Add(time.Hour), Payload: schedule.Payload{Text: "come in tomorrow"},
		CreatedBy: "@nurse:clinic.example"}
	must(t, d.schedule.Add(ctx, send))
	d.sendID = send.ID
	must(t, d.bcast.Create(ctx, &broadcast.Broadcast{ID: "b1", LoginID: "L1", Template: "closure", Values: map[string]string{"date": "Fri"}, CreatedBy: "@admin:clinic.example", Origin: "command", CreatedAt: time.Now()},
		[]string{"+14155550123", "+14155550124"}))
	_, err = d.appts.Put(ctx, &appointment.Appointment{ID: "ap1", PatientID: "p1", Status: "booked", Start: time.Now().Add(72 * time.Hour), Resource: []byte(`{"resourceType":"Appointment"}`)}, nil)
	must(t, err)
	must(t, d.appts.RememberPatient(ctx, "Patient/7", map[string]string{"name": "Ana"}))
	// The Twilio login as bridgev2 stores it, with careline's sealed auth token.
	must(t, d.logins.User.Insert(ctx, &database.User{MXID: "@admin:clinic.example"}))
	must(t, d.logins.UserLogin.Insert(ctx, &database.UserLogin{ID: "L1", UserMXID: "@admin:clinic.example", RemoteName: "+15005550006",
		Metadata: &bridge.UserLoginMetadata{AccountSID: "AC1", AuthTokenSealed: kr.SealString("twilio-token", "twilio-auth-token:L1"), PhoneNumber: "+15005550006"}}))
}

// check opens every sealed value through careline's code with kr.
func (d *sealedData) check(t *testing.T, kr *atrest.Keyring) {
	t.Helper()
	ctx := context.Background()
	p, err := d.store.GetPatient(ctx, "p1")
	if err != nil || p.Phone != "+14155550123" || p.Consent == nil || p.Consent.How != "asked at the front desk" {
		t.Fatalf("patient: %+v, %v", p, err)
	}
	if ok, err := d.store.CheckDOB(ctx, "p1", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil || !ok {
		t.Fatalf("date of birth: %v %v", ok, err)
	}
	if in, err := d.store.GetInbound(ctx, "SM1"); err != nil || in.Body != "my knee hurts" {
		t.Fatalf("inbound: %+v, %v", in, err)
	}
	if m, err := d.store.GetMessage(ctx, "m1"); err != nil || m.Body != "your results" {
		t.Fatalf("message: %+v, %v", m, err)
	}
	if as, err := d.store.MessageAttachments(ctx, "m1"); err != nil || len(as) != 1 || as[0].FileName != "MRI knee.pdf" || string(as[0].Data) != "%PDF-1.4 knee" {
		t.Fatalf("attachments: %v", err)
	}
	if a, err := d.store.GetAttachment(ctx, "p1", "a1"); err != nil || string(a.Data) != "%PDF-1.4 knee" {
		t.Fatalf("attachment: %v", err)
	}
	if o, err := d.store.GetOutgoing(ctx, 1); err != nil || o.Body != "Sunrise: see the link" {
		t.Fatalf("outbox: %+v, %v", o, err)
	}
	if n, err := d.names.Get(ctx, "p1"); err != nil || n.Full() != "Ana López" {
		t.Fatalf("name: %+v, %v", n, err)
	}
	if send, err := d.schedule.Get(ctx, d.sendID); err != nil || send.Payload.Text != "come in tomorrow" {
		t.Fatalf("scheduled send: %+v, %v", send, err)
	}
	if b, err := d.bcast.Get(ctx, "b1"); err != nil || b.Values["date"] != "Fri" {
		t.Fatalf("broadcast: %+v, %v", b, err)
	}
	if targets, err := d.bcast.Targets(ctx, "b1"); err != nil || len(targets) != 2 || targets[1].Number != "+14155550124" {
		t.Fatalf("broadcast targets: %v", err)
	}
	if a, err := d.appts.Get(ctx, "ap1"); err != nil || !strings.Contains(string(a.Resource), "Appointment") {
		t.Fatalf("appointment: %v", err)
	}
	var ref map[string]string
	if ok, err := d.appts.RecallPatient(ctx, "Patient/7", &ref); err != nil || !ok || ref["name"] != "Ana" {
		t.Fatalf("patient reference: %v %v", ok, err)
	}
	login, err := d.logins.UserLogin.GetByID(ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	if token, err := kr.OpenString(login.Metadata.(*bridge.UserLoginMetadata).AuthTokenSealed, "twilio-auth-token:L1"); err != nil || token != "twilio-token" {
		t.Fatalf("Twilio auth token: %v", err)
	}
}

// valuesUnder lists every cell of every table that holds a value sealed under keyID, as a
// column or as base64 inside text (JSON metadata): what re-sealing must leave none of, whether
// or not its column is listed.
func valuesUnder(t *testing.T, db *dbutil.Database, keyID string) []string {
	t.Helper()
	ctx := context.Background()
	header := append([]byte{1, byte(len(keyID))}, keyID...)
	encoded := base64.StdEncoding.EncodeToString(header[:len(header)/3*3])
	var found []string
	for table, columns := range tableColumns(t, db) {
		for _, column := range columns {
			rows, err := db.Query(ctx, fmt.Sprintf(`SELECT "%s" FROM "%s"`, column, table))
			must(t, err)
			for rows.Next() {
				var v any
				must(t, rows.Scan(&v))
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				}
				if bytes.HasPrefix(b, header) || bytes.Contains(b, []byte(encoded)) {
					found = append(found, table+"."+column)
				}
			}
			must(t, rows.Err())
			rows.Close()
		}
	}
	slices.Sort(found)
	return found
}

// tableColumns is every column of every table in the database.
func tableColumns(t *testing.T, db *dbutil.Database) map[string][]string {
	t.Helper()
	ctx := context.Background()
	query := `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
	if db.Dialect == dbutil.SQLite {
		query = `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'`
	}
	rows, err := db.Query(ctx, query)
	must(t, err)
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, column string
		must(t, rows.Scan(&table, &column))
		out[table] = append(out[table], column)
	}
	must(t, rows.Err())
	return out
}

func storageConfig(t *testing.T, b auditBackend, oldKey, newKey string, keepOld bool) string {
	t.Helper()
	cfg := fmt.Sprintf("database:\n    type: %s\n    uri: %s\nnetwork:\n    privacy:\n        identity_key: %s\n    storage:\n        key_id: %s\n        key: %s\n",
		b.dbType, b.uri, testIdentityKey, newKeyID, newKey)
	if keepOld {
		cfg += fmt.Sprintf("        old_keys:\n            %s: %s\n", oldKeyID, oldKey)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

func keyring(t *testing.T, active string, keys map[string]string) *atrest.Keyring {
	t.Helper()
	parsed := map[string][]byte{}
	for id, k := range keys {
		key, err := atrest.ParseKey(k)
		must(t, err)
		parsed[id] = key
	}
	kr, err := atrest.NewKeyring(active, parsed)
	must(t, err)
	return kr
}

// Rows sealed under the old key; the key rotated; `careline storage reseal`; the old key
// removed: everything still opens, and no cell anywhere is still under the old key.
func TestStorageReseal(t *testing.T) {
	auditBackends(t, func(t *testing.T, b auditBackend) {
		db, err := dbutil.NewWithDialect(b.uri, b.dbType)
		must(t, err)
		t.Cleanup(func() { _ = db.Close() })
		oldKey, newKey := atrest.NewKey(), atrest.NewKey()
		before := keyring(t, oldKeyID, map[string]string{oldKeyID: oldKey})
		data := openSealedData(t, db, before)
		data.write(t, before)
		if found := valuesUnder(t, db, oldKeyID); len(found) < len(sealedColumns()) {
			t.Fatalf("the fixture fills %d sealed columns, %d are listed: %v", len(found), len(sealedColumns()), found)
		}

		// Rotated: the new key seals, the old one still opens.
		config := storageConfig(t, b, oldKey, newKey, true)
		var out, errOut bytes.Buffer
		if code := runStorage(context.Background(), []string{"reseal", "-c", config, "--batch", "1"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, out.String(), errOut.String())
		}
		for _, want := range []string{
			"careline_attachment.data_sealed", "user_login.metadata.auth_token_sealed",
			fmt.Sprintf("You can remove %s from network.storage.old_keys", oldKeyID),
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the summary lacks %q:\n%s", want, out.String())
			}
		}
		if found := valuesUnder(t, db, oldKeyID); len(found) > 0 {
			t.Fatalf("still under the old key after reseal: %v", found)
		}

		// Again: nothing left to do (idempotent), and the run is audited.
		out.Reset()
		if code := runStorage(context.Background(), []string{"reseal", "-c", config}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Done: 0 re-sealed") {
			t.Fatalf("second run, exit %d:\n%s", code, out.String())
		}
		var entries int
		must(t, db.QueryRow(context.Background(), `SELECT COUNT(*) FROM careline_audit WHERE action = 'storage.resealed'`).Scan(&entries))
		if entries != 2 {
			t.Fatalf("%d storage.resealed audit entries, want 2", entries)
		}

		// The old key removed from the config: everything opens with the new key alone.
		after := keyring(t, newKeyID, map[string]string{newKeyID: newKey})
		reopened := openSealedData(t, db, after)
		reopened.sendID = data.sendID
		reopened.check(t, after)
		out.Reset()
		if code := runStorage(context.Background(), []string{"reseal", "-c", storageConfig(t, b, oldKey, newKey, false)}, &out, &errOut); code != 0 {
			t.Fatalf("without the old key, exit %d:\n%s", code, out.String())
		}
	})
}

// A value no configured key opens is reported by column and row, and the run exits 1 saying
// to keep the old keys.
func TestStorageResealReportsUnreadable(t *testing.T) {
	b := auditBackend{"sqlite3-fk-wal", "file:" + filepath.Join(t.TempDir(), "careline.db") + "?_txlock=immediate"}
	db, err := dbutil.NewWithDialect(b.uri, b.dbType)
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	oldKey := atrest.NewKey()
	kr := keyring(t, oldKeyID, map[string]string{oldKeyID: oldKey})
	openSealedData(t, db, kr).write(t, kr)
	var out, errOut bytes.Buffer
	// The old key is missing from the config: nothing can be opened.
	code := runStorage(context.Background(), []string{"reseal", "-c", storageConfig(t, b, oldKey, atrest.NewKey(), false)}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "careline_patient.phone_sealed p1:") || !strings.Contains(out.String(), "Keep every old key") {
		t.Fatalf("exit %d:\n%s\n%s", code, out.String(), errOut.String())
	}
}

// Every *_sealed column in the schema careline creates is re-sealed by `storage reseal`: a new
// sealed column that is not listed in sealedColumns fails here.
func TestEverySealedColumnIsListed(t *testing.T) {
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "careline.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	kr := keyring(t, oldKeyID, map[string]string{oldKeyID: atrest.NewKey()})
	openSealedData(t, db, kr)
	// The other sections (the portal's tables hold keyed hashes, not sealed values).
	log := zerolog.Nop()
	for _, up := range []func(context.Context) error{teaminbox.New(db, log).Upgrade, throttle.New(db, log).Upgrade, portalremind.New(db, log).Upgrade, floodgate.New(db, log).Upgrade,
		apitoken.New(db, []byte(testIdentityKey), log).Upgrade, webhookout.New(db, "", "", log).Upgrade} {
		must(t, up(context.Background()))
	}
	listed := map[string]bool{}
	for _, c := range sealedColumns() {
		listed[c.Table+"."+c.Column] = true
	}
	var inSchema []string
	for table, columns := range tableColumns(t, db) {
		for _, column := range columns {
			if strings.HasSuffix(column, "_sealed") {
				inSchema = append(inSchema, table+"."+column)
				if !listed[table+"."+column] {
					t.Errorf("%s.%s is sealed but `careline storage reseal` does not re-seal it: add it to its package's SealedColumns", table, column)
				}
			}
		}
	}
	if len(inSchema) < 10 {
		t.Fatalf("only %d sealed columns found in the schema: %v", len(inSchema), inSchema)
	}
	// A package whose tables this test does not create is still seen in its schema files.
	for _, column := range sealedColumnsInSQLFiles(t) {
		if !listed[column] {
			t.Errorf("%s (in a schema file) is sealed but `careline storage reseal` does not re-seal it: add it to its package's SealedColumns", column)
		}
	}
}

var (
	createTable = regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?"?(\w+)"?`)
	alterTable  = regexp.MustCompile(`(?i)ALTER TABLE "?(\w+)"? ADD COLUMN (\w+_sealed)\b`)
	sealedDef   = regexp.MustCompile(`^\s*(\w+_sealed)\s`)
)

// sealedColumnsInSQLFiles is every table.column ending in _sealed that careline's SQL files
// (every package's schema and upgrades) define.
func sealedColumnsInSQLFiles(t *testing.T) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "../.." && (d.Name() == "internal" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".sql") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		table := ""
		for _, line := range strings.Split(string(data), "\n") {
			if m := createTable.FindStringSubmatch(line); m != nil {
				table = m[1]
			} else if m := alterTable.FindStringSubmatch(line); m != nil {
				found = append(found, m[1]+"."+m[2])
			} else if m := sealedDef.FindStringSubmatch(line); m != nil && table != "" {
				found = append(found, table+"."+m[1])
			}
		}
		return nil
	})
	must(t, err)
	if len(found) < 10 {
		t.Fatalf("only %d sealed columns found in the SQL files: %v", len(found), found)
	}
	return found
}

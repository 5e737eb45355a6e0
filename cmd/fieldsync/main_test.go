package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestConfigNamesEveryMalformedVariable(t *testing.T) {
	_, err := loadConfig(lookupFrom(map[string]string{
		"FIELDSYNC_ACCESS_TOKEN_TTL":  "soon",
		"FIELDSYNC_MAX_BODY_BYTES":    "lots",
		"FIELDSYNC_S3_USE_SSL":        "maybe",
		"FIELDSYNC_TRUSTED_PROXIES":   "10.0.0.0/8, the office",
		"FIELDSYNC_LOG_LEVEL":         "chatty",
		"FIELDSYNC_JWT_GENERATE_KEY":  "yes please",
		"FIELDSYNC_LOGIN_WINDOW":      "1 fortnight",
		"FIELDSYNC_REFRESH_TOKEN_TTL": "30d",
	}))
	if err == nil {
		t.Fatal("malformed configuration accepted")
	}
	for _, name := range []string{"FIELDSYNC_ACCESS_TOKEN_TTL", "FIELDSYNC_MAX_BODY_BYTES", "FIELDSYNC_S3_USE_SSL",
		"FIELDSYNC_TRUSTED_PROXIES", "FIELDSYNC_LOG_LEVEL", "FIELDSYNC_JWT_GENERATE_KEY", "FIELDSYNC_LOGIN_WINDOW",
		"FIELDSYNC_REFRESH_TOKEN_TTL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestServeConfigIsValidatedAsAWhole(t *testing.T) {
	cfg, err := loadConfig(lookupFrom(map[string]string{"FIELDSYNC_ADDR": "8080", "FIELDSYNC_S3_SECRET_KEY": "s3cr3t-value"}))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.validateServe()
	if err == nil {
		t.Fatal("empty configuration accepted")
	}
	for _, name := range []string{"DATABASE_URL", "FIELDSYNC_ADDR", "FIELDSYNC_JWT_KEY_FILE", "FIELDSYNC_S3_ENDPOINT", "FIELDSYNC_S3_ACCESS_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t-value") {
		t.Error("a secret appears in the configuration error")
	}
}

// runCLI runs one command line against the test database and returns its stdout.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	if err != nil {
		t.Logf("fieldsync %s: stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), err
}

func TestBranchAndUserCommandsPrintTheNewIDAlone(t *testing.T) {
	db := testenv.DB(t)
	t.Setenv("DATABASE_URL", db.URL)

	out, err := runCLI(t, "", "branch", "create", "--name", "North")
	if err != nil {
		t.Fatal(err)
	}
	branchID, err := uuid.Parse(strings.TrimSuffix(out, "\n"))
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("branch create printed %q, want the id alone", out)
	}
	if _, err := runCLI(t, "", "branch", "create", "--name", "north"); err == nil {
		t.Fatal("a second branch named north was created")
	}

	out, err = runCLI(t, "a long password\n", "user", "create", "--branch", branchID.String(), "--role", "rep",
		"--rep-kind", "hospital", "--login", "hugo", "--name", "Hugo", "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	userID, err := uuid.Parse(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("user create printed %q, want the id alone", out)
	}
	var role, repKind, branch string
	if err := db.Pool.QueryRow(context.Background(), `SELECT role, rep_kind, branch_id::text FROM users WHERE id = $1`, userID).
		Scan(&role, &repKind, &branch); err != nil {
		t.Fatal(err)
	}
	if role != "rep" || repKind != "hospital" || branch != branchID.String() {
		t.Fatalf("stored user: %s %s %s", role, repKind, branch)
	}

	// The password never goes on the command line.
	if _, err := runCLI(t, "", "user", "create", "--branch", branchID.String(), "--role", "rep", "--login", "x", "--name", "X"); err == nil {
		t.Fatal("user create without --password-stdin succeeded")
	}
	if _, err := runCLI(t, "pw\n", "user", "create", "--branch", branchID.String(), "--role", "boss", "--login", "y", "--name", "Y", "--password-stdin"); err == nil {
		t.Fatal("user create with an unknown role succeeded")
	}

	out, err = runCLI(t, "", "branch", "list")
	if err != nil || out != branchID.String()+"\tNorth\tUTC\tCNY\n" {
		t.Fatalf("branch list: %q, %v", out, err)
	}

	// A branch's time zone and currency, and a user's language, are checked where they are set.
	if out, err = runCLI(t, "", "branch", "set", "--id", branchID.String(), "--time-zone", "Asia/Shanghai"); err != nil ||
		out != branchID.String()+"\tNorth\tAsia/Shanghai\tCNY\n" {
		t.Fatalf("branch set: %q, %v", out, err)
	}
	for _, bad := range [][]string{{"--time-zone", "Mars/Olympus"}, {"--currency", "yuan"}} {
		if _, err := runCLI(t, "", append([]string{"branch", "set", "--id", branchID.String()}, bad...)...); err == nil {
			t.Fatalf("branch set %v succeeded", bad)
		}
	}
	if _, err := runCLI(t, "", "branch", "create", "--name", "South", "--currency", "XYZ"); err == nil {
		t.Fatal("a branch in an unknown currency was created")
	}
	if _, err := runCLI(t, "", "user", "locale", "--login", "hugo", "--locale", "zh-CN"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "", "user", "locale", "--login", "hugo", "--locale", "klingon"); err == nil {
		t.Fatal("an unknown language was set")
	}
	var locale string
	if err := db.Pool.QueryRow(context.Background(), `SELECT locale FROM users WHERE id = $1`, userID).Scan(&locale); err != nil || locale != "zh-CN" {
		t.Fatalf("stored locale %q (%v)", locale, err)
	}

	if _, err := runCLI(t, "another long password\n", "user", "reset-password", "--login", "hugo", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "", "user", "disable", "--login", "HUGO"); err != nil {
		t.Fatal(err)
	}
	var disabled bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT disabled_at IS NOT NULL FROM users WHERE id = $1`, userID).Scan(&disabled); err != nil || !disabled {
		t.Fatalf("user not disabled: %v %v", disabled, err)
	}
	if _, err := runCLI(t, "", "user", "disable", "--login", "nobody"); err == nil {
		t.Fatal("disabling an unknown login succeeded")
	}
}

func TestMigrateAndDemoAreRepeatable(t *testing.T) {
	db := testenv.DB(t)
	t.Setenv("DATABASE_URL", db.URL)
	if _, err := runCLI(t, "", "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	status, err := runCLI(t, "", "migrate", "status")
	if err != nil || !strings.Contains(status, "applied") || strings.Contains(status, "pending") {
		t.Fatalf("migrate status: %q, %v", status, err)
	}

	first, err := runCLI(t, "", "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"manager", "processor", "agent", "hospital", "fieldsync-demo"} {
		if !strings.Contains(first, want) {
			t.Errorf("demo output lacks %q:\n%s", want, first)
		}
	}
	second, err := runCLI(t, "", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("a second demo run printed something else:\n%s\n---\n%s", first, second)
	}
	counts := map[string]int{}
	for table, want := range map[string]int{"branches": 1, "users": 5, "customers": 2, "claims": 2, "tasks": 2, "task_notes": 1} {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
		if n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	var status2 string
	if err := db.Pool.QueryRow(context.Background(), `SELECT string_agg(status, ',' ORDER BY status) FROM claims`).Scan(&status2); err != nil ||
		status2 != "reported,under_review" {
		t.Errorf("demo claims' statuses %q, %v; want one reported, one under review", status2, err)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	if _, err := runCLI(t, "", "frobnicate"); err != errUsage {
		t.Fatalf("err = %v, want errUsage", err)
	}
}

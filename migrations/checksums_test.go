package migrations_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/migrations"
)

// checksumsFile lists the sha256 of every landed migration, in sha256sum's format, so that
// `sha256sum -c checksums.txt` in this directory checks them too.
const checksumsFile = "checksums.txt"

var update = flag.Bool("update", false, "add the checksum of every migration not yet in "+checksumsFile+" (never changes a listed one)")

// howToList is how a new migration gets its line, said in every failure about one.
const howToList = "add its checksum once it lands: go test ./migrations -run TestLandedMigrationsNeverChange -update " +
	"(or: cd migrations && sha256sum FILE >> checksums.txt)"

// TestLandedMigrationsNeverChange fails when a migration listed in checksums.txt is changed or
// removed, and when a migration is not listed. goose applies a migration once and records only
// its version: a database migrated before an edit never gets the edit, so an edited migration
// makes deployments differ silently. A change goes in a new migration instead.
func TestLandedMigrationsNeverChange(t *testing.T) {
	listed := readChecksums(t)
	files, err := fs.Glob(migrations.FS(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}

	var unlisted []string
	for _, name := range files {
		data, err := fs.ReadFile(migrations.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		want, ok := listed[name]
		switch {
		case !ok:
			unlisted = append(unlisted, fmt.Sprintf("%s  %s\n", got, name))
			if !*update {
				t.Errorf("migrations/%s is not in migrations/%s: %s", name, checksumsFile, howToList)
			}
		case got != want:
			t.Errorf("migrations/%s changed after it landed (sha256 %s, listed %s): a database migrated before the change "+
				"never gets it. Restore the file (git checkout -- migrations/%s) and put the change in a new migration.",
				name, got, want, name)
		}
	}
	for name := range listed {
		if !slices.Contains(files, name) {
			t.Errorf("migrations/%s is listed in migrations/%s but gone: a landed migration is never removed "+
				"(databases have applied it); restore it", name, checksumsFile)
		}
	}

	if *update && len(unlisted) > 0 {
		f, err := os.OpenFile(checksumsFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, line := range unlisted {
			if _, err := f.WriteString(line); err != nil {
				t.Fatal(err)
			}
			t.Logf("listed %s", strings.TrimSpace(line))
		}
	}
}

var checksumLine = regexp.MustCompile(`^([0-9a-f]{64})  (\S+\.sql)$`)

// readChecksums reads checksums.txt: file name to sha256.
func readChecksums(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(checksumsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		m := checksumLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("migrations/%s line %d is not \"SHA256  FILE.sql\" (sha256sum's format): %q", checksumsFile, n, sc.Text())
		}
		if _, dup := sums[m[2]]; dup {
			t.Fatalf("migrations/%s lists %s twice", checksumsFile, m[2])
		}
		sums[m[2]] = m[1]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

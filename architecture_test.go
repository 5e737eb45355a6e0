package fieldsync_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// module is this module's path; imports under it are the ones the layout rules speak of.
const module = "github.com/fieldsync/fieldsync"

// mayImport is docs/architecture.md as a table: for each package of the module (path below the
// module, "" for the root), the packages of the module it may import. Dependencies point inward:
// the domain packages never import the HTTP layer, the binary, or the tooling of tests and
// development; the small internal helpers import nothing of ours but the root's error type. A
// package missing here fails the test: place it in the picture first.
var mayImport = map[string][]string{
	"":           {},
	"migrations": {},

	// Domain: what the product is. Inward only.
	"account":   {"", "i18n"},
	"sync":      {"", "internal/branchwake", "internal/waitcap"},
	"media/tus": {"", "internal/bodydeadline", "internal/forwarded"},
	"media":     {"", "sync", "media/tus", "internal/jobqueue"},
	"notify":    {"", "sync", "i18n", "internal/jobqueue", "internal/waitcap"},

	// The HTTP layer over the domain.
	"server": {"", "account", "sync", "media", "media/tus", "notify", "internal/bodydeadline", "internal/forwarded"},
	// The web console: pages over the same domain services, mounted by the composition root.
	"console": {"", "account", "sync", "media", "notify", "i18n", "internal/forwarded"},

	// Small parts with one job each, shared by the packages above.
	"internal/branchwake":   {},
	"internal/waitcap":      {""},
	"internal/bodydeadline": {},
	"internal/forwarded":    {},
	"internal/jobqueue":     {},
	// The languages and formats of what people read (the console's pages, notifications).
	"i18n": {},

	// The composition root and the binary.
	"internal/app":  {"*"},
	"cmd/fieldsync": {"*"},

	// Tooling for development, tests and load: may use the product, the product never uses them.
	"internal/apitest":     {"*"},
	"internal/app/apptest": {"*"},
	"internal/testenv":     {"*"},
	"internal/devenv":      {"", "media"},
	"internal/demo":        {"", "account", "sync"},
	"internal/fixture":     {"*"},
	"internal/client":      {},
	"internal/sim":         {"", "internal/client", "sync"},
	"internal/loadtest":    {"*"},
	"internal/fakefcm":     {},
	"internal/imagebomb":   {},
	"internal/browsertest": {"*"},
	"internal/tsclient":    {},
}

// tooling are the packages no product package may import (tests aside).
var tooling = []string{"cmd/fieldsync", "internal/app", "internal/apitest", "internal/app/apptest", "internal/testenv",
	"internal/devenv", "internal/demo", "internal/fixture", "internal/client", "internal/sim", "internal/loadtest",
	"internal/fakefcm", "internal/imagebomb", "internal/tsclient", "internal/browsertest"}

// TestPackagesImportOnlyInward holds every package's imports (tests excluded) to mayImport.
func TestPackagesImportOnlyInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := rel(fields[0])
		allowed, known := mayImport[pkg]
		if !known {
			t.Errorf("package %q is not in the layout: add it to docs/architecture.md and to mayImport", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := rel(imp)
			switch {
			case contains(allowed, "*"):
				if contains(tooling, dep) && !contains(tooling, pkg) && pkg != "cmd/fieldsync" {
					t.Errorf("%s imports %s: the product never uses the tooling", pkg, dep)
				}
			case !contains(allowed, dep):
				t.Errorf("%s imports %s, which docs/architecture.md does not allow", show(pkg), show(dep))
			}
		}
	}
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func show(pkg string) string {
	if pkg == "" {
		return "the root package"
	}
	return pkg
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

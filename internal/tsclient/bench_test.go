package tsclient_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/apitest"
)

// BenchmarkInitialSync times a first sync of 10,000 records through the TypeScript client into
// WatermelonDB over LokiJS (and into a MemoryStore), beside the server's own time for the same
// snapshot pages (a raw HTTP loop that stores nothing), against a server of its own. The node
// script clients/typescript/src/bench/initial-sync.ts does the work; the figures are reported as
// metrics, the ratios being what to compare between runs:
//
//	go test -run '^$' -bench InitialSync -benchtime 1x ./internal/tsclient/
func BenchmarkInitialSync(b *testing.B) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found: install Node.js 20 and npm, then `npm ci --prefix clients/typescript`", tool)
		}
	}
	srv := apitest.Start(b, apitest.Options{})
	manager := srv.NewUser(b, "manager", "")
	env := append(os.Environ(),
		"FIELDSYNC_URL="+srv.URL,
		"FIELDSYNC_MANAGER="+manager.Login,
		"FIELDSYNC_PASSWORD="+apitest.Password,
	)
	build := exec.Command("npm", "run", "--silent", "build")
	build.Dir = clientDir
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("npm run build: %v\n%s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("node", "dist/bench/initial-sync.js")
		cmd.Dir = clientDir
		// Seeded once: later iterations sync the same records.
		cmd.Env = append(env, "BENCH_SEED="+map[bool]string{true: "1", false: "0"}[i == 0])
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("initial-sync: %v\n%s", err, out)
		}
		var res struct {
			ServerMS       float64 `json:"server_ms"`
			WatermelonMS   float64 `json:"watermelondb_ms"`
			MemoryMS       float64 `json:"memory_ms"`
			WatermelonToSv float64 `json:"watermelondb_to_server"`
			MemoryToSv     float64 `json:"memory_to_server"`
		}
		found := false
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "BENCH "); ok {
				if err := json.Unmarshal([]byte(rest), &res); err != nil {
					b.Fatal(err)
				}
				found = true
			} else {
				b.Log(line)
			}
		}
		if !found {
			b.Fatalf("no BENCH line in:\n%s", out)
		}
		b.ReportMetric(res.ServerMS, "server-ms")
		b.ReportMetric(res.WatermelonMS, "watermelondb-ms")
		b.ReportMetric(res.MemoryMS, "memory-ms")
		b.ReportMetric(res.WatermelonToSv, "watermelondb/server")
		b.ReportMetric(res.MemoryToSv, "memory/server")
	}
}

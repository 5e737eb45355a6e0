package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// serverMemory is the server's memory at one moment: live heap and goroutine stacks after a
// forced collection, and its resident set.
type serverMemory struct {
	live       int64 // HeapAlloc + StackInuse, bytes, right after a collection
	stacks     int64 // StackInuse, of live
	rss        int64
	goroutines int
}

// serverMemory reads the server's memory through its pprof listener: /debug/pprof/heap?gc=1
// runs a collection first, so what is left is what the server holds, not garbage it has yet to
// collect; debug=1 appends runtime.MemStats. Without a listener it reads only the resident set.
func (r *run) serverMemory(ctx context.Context) (serverMemory, error) {
	var m serverMemory
	if r.t.ServerPID > 0 {
		st, err := readProc(r.t.ServerPID)
		if err != nil {
			return m, fmt.Errorf("read the server's memory: %w", err)
		}
		m.rss = st.RSS
	}
	if r.t.PprofURL == "" {
		return m, nil
	}
	// Two collections: what the first finds in sync.Pools it only moves aside, the second frees.
	body, err := r.pprofGet(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		return m, err
	}
	_, _ = io.Copy(io.Discard, body)
	body.Close()
	if body, err = r.pprofGet(ctx, "/debug/pprof/heap?gc=1&debug=1"); err != nil {
		return m, err
	}
	defer body.Close()
	var heap, stack int64 = -1, -1
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok { // StackInuse / StackSys
			inuse, _, _ := strings.Cut(v, " ")
			stack, _ = strconv.ParseInt(inuse, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read the server's heap profile: %w", err)
	}
	if heap < 0 || stack < 0 {
		return m, fmt.Errorf("the server's heap profile has no HeapAlloc or Stack")
	}
	m.live, m.stacks = heap+stack, stack
	m.goroutines, err = r.serverGoroutines(ctx)
	return m, err
}

// serverGoroutines returns how many goroutines the server runs (0 without a pprof listener).
func (r *run) serverGoroutines(ctx context.Context) (int, error) {
	if r.t.PprofURL == "" {
		return 0, nil
	}
	body, err := r.pprofGet(ctx, "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	// The first line: "goroutine profile: total N".
	line, err := bufio.NewReader(body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read the server's goroutine profile: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total ")))
	if err != nil {
		return 0, fmt.Errorf("read the server's goroutine profile: %q", line)
	}
	return n, nil
}

func (r *run) pprofGet(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.t.PprofURL+path, nil)
	if err != nil {
		return nil, err
	}
	// Not r.http: its connections are the devices'.
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the server's pprof listener: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("the server's pprof listener: %s %s", path, res.Status)
	}
	return res.Body, nil
}

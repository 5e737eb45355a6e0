package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestBodyOverTheLimitIs413(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.MaxBodyBytes = 1024 })
	big := `{"login":"` + strings.Repeat("x", 2000) + `","password":"p","device":{"id":"` + uuid.NewString() + `","platform":"ios"}}`
	expect(t, b.do(t, "POST", "/v1/auth/login", "", big), 413, "payload_too_large")

	// Without a Content-Length (chunked), the limit is enforced while reading.
	req, err := http.NewRequest("POST", b.srv.URL+"/v1/auth/login", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	expect(t, response{status: res.StatusCode, header: res.Header, body: data}, 413, "payload_too_large")
}

func TestUnknownRouteAndMethodUseTheErrorShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expect(t, b.do(t, "GET", "/v1/nothing-here", "", nil), 404, "not_found")
	expect(t, b.do(t, "GET", "/v1/auth/login", "", nil), 405, "method_not_allowed")
}

func TestRequestIDIsEchoedOrMade(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, "GET", "/healthz", "", nil)
	expect(t, r, http.StatusOK, "")
	if _, err := uuid.Parse(r.header.Get("X-Request-Id")); err != nil {
		t.Fatalf("X-Request-Id %q", r.header.Get("X-Request-Id"))
	}
	for id, kept := range map[string]bool{"lb-1234.abc": true, "<script>": false, strings.Repeat("a", 65): false} {
		req, _ := http.NewRequest("GET", b.srv.URL+"/healthz", nil)
		req.Header.Set("X-Request-Id", id)
		res, err := b.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("X-Request-Id"); (got == id) != kept {
			t.Errorf("incoming %q: answered %q", id, got)
		}
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, "POST", "/v1/auth/login", "", loginBody("nobody", "x", uuid.New()))
	b.do(t, "GET", "/v1/does-not-exist/"+uuid.NewString(), "", nil)
	r := b.do(t, "GET", "/metrics", "", nil)
	expect(t, r, http.StatusOK, "")
	body := string(r.body)
	for _, want := range []string{
		`fieldsync_http_requests_total{code="401",method="POST",route="/v1/auth/login"} 1`,
		// Unknown paths share one label, so a scanner cannot blow up the series count.
		`fieldsync_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`fieldsync_http_request_duration_seconds_bucket{method="POST",route="/v1/auth/login",le="+Inf"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestGzipWhenAsked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, _ := http.NewRequest("GET", b.srv.URL+"/openapi.json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
}

// cuttableProxy forwards TCP to target until cut, like a network between the server and its
// database that can fail, and come back (restore).
type cuttableProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				in.Close() // as a database that is not there
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() { p.cut(); ln.Close() })
	return p
}

// cut breaks every open connection and refuses new ones until restore.
func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore lets connections through again.
func (p *cuttableProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// proxiedPool returns a pool on db through a cuttableProxy.
func proxiedPool(t *testing.T, db *testenv.Database) (*cuttableProxy, *pgxpool.Pool) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCuttableProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, itoa(cfg.ConnConfig.Port)))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(proxy.ln.Addr().(*net.TCPAddr).Port)
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return proxy, pool
}

func TestReadyzTurns503WhenTheDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	proxy, pool := proxiedPool(t, testenv.DB(t))

	b := setup(t, func(o *apptest.Setup) {
		o.Deps.Pool, o.S3 = pool, testenv.S3(t)
	})
	r := b.do(t, "GET", "/readyz", "", nil)
	expect(t, r, http.StatusOK, "")

	proxy.cut()
	r = b.do(t, "GET", "/readyz", "", nil)
	expect(t, r, 503, "not_ready")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	var e struct {
		Error struct {
			Details struct {
				Checks  map[string]string `json:"checks"`
				Failing []string          `json:"failing"`
			} `json:"details"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Details.Checks["database"] != "unavailable" || e.Error.Details.Checks["object_store"] != "ok" {
		t.Fatalf("checks: %s", r.body)
	}
	// Alive all the same: an outage of the database is no reason to restart the process.
	expect(t, b.do(t, "GET", "/healthz", "", nil), http.StatusOK, "")
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	login, _ := b.newUser(t, "rep")
	s := b.replica(t, func(s *apptest.Setup) { s.MaxBodyBytes, s.ShutdownTimeout = 1<<20, 10*time.Second }).Server
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	// A login whose body is still arriving when the shutdown begins.
	body, writer := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/auth/login", body)
	answered := make(chan *http.Response, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(answered)
			return
		}
		answered <- res
	}()
	if _, err := writer.Write([]byte(`{"login":"` + login + `",`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the request reach its handler
	stop()
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := writer.Write([]byte(`"password":"` + testPassword + `","device":{"id":"` + uuid.NewString() + `","platform":"ios"}}`)); err != nil {
		t.Fatal(err)
	}
	writer.Close()
	res, ok := <-answered
	if !ok {
		return
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("in-flight login got %d", res.StatusCode)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// And new connections are refused.
	if res, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatal("server still answering after shutdown")
	}
}

func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.replica(t, func(s *apptest.Setup) { s.MaxBodyBytes, s.CORSOrigins = 1<<20, []string{"https://console.example"} }).Server
	for origin, allowed := range map[string]bool{"https://console.example": true, "https://evil.example": false} {
		req, _ := http.NewRequest("OPTIONS", "/v1/auth/login", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		got := rec.Header().Get("Access-Control-Allow-Origin")
		if allowed != (got == origin) {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q", origin, got)
		}
	}
	// Without configured origins there are no CORS headers at all.
	req, _ := http.NewRequest("GET", b.srv.URL+"/healthz", nil)
	req.Header.Set("Origin", "https://console.example")
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS headers sent with no origins configured")
	}
}

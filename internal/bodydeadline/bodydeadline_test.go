package bodydeadline

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var errStalled = errors.New("stalled")

// serve runs handler behind a real listener (deadlines are the connection's) and sends raw, a
// request whose body may stop short; it returns the response.
func serve(t *testing.T, raw string, handler http.HandlerFunc) *http.Response {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestStalledBodyFailsWithTheCallersError: a body that stops arriving fails its read, after the
// idle time, with the error the caller gave, keeping what arrived; the answer closes the connection.
func TestStalledBodyFailsWithTheCallersError(t *testing.T) {
	var got []byte
	var readErr error
	res := serve(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", func(w http.ResponseWriter, r *http.Request) {
		body := New(w, r.Body, 100*time.Millisecond, 0, func() error { return errStalled })
		got, readErr = io.ReadAll(body)
		body.Done()
		w.WriteHeader(http.StatusRequestTimeout)
	})
	if !errors.Is(readErr, errStalled) || string(got) != "abc" {
		t.Fatalf("read %q, %v; want abc, %v", got, readErr, errStalled)
	}
	if res.StatusCode != http.StatusRequestTimeout || !res.Close {
		t.Errorf("answer %d, close %v; want 408 and the connection closed", res.StatusCode, res.Close)
	}
}

// TestTotalBoundsATrickle: a body that keeps pausing less than the idle time is still cut at the
// total time.
func TestTotalBoundsATrickle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := New(w, r.Body, time.Second, 300*time.Millisecond, func() error { return errStalled })
		defer body.Done()
		if _, err := io.ReadAll(body); !errors.Is(err, errStalled) {
			t.Errorf("trickled body: %v, want %v", err, errStalled)
		}
		w.WriteHeader(http.StatusRequestTimeout)
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 20; i++ {
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		pw.Close()
	}()
	res, err := http.Post(srv.URL, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", res.StatusCode)
	}
}

// TestDeadlineIsLiftedOnceTheBodyIsRead: what the handler does after the body (a long-poll, an
// upload's completion) is not cut by the body's deadline.
func TestDeadlineIsLiftedOnceTheBodyIsRead(t *testing.T) {
	res := serve(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", func(w http.ResponseWriter, r *http.Request) {
		body := New(w, r.Body, 100*time.Millisecond, 0, func() error { return errStalled })
		defer body.Done()
		if b, err := io.ReadAll(body); err != nil || string(b) != "abc" {
			t.Errorf("read %q, %v", b, err)
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			t.Error("the request was cancelled after its body was read")
		}
		_, _ = io.WriteString(w, "done")
	})
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "done") {
		t.Errorf("answer %d %q", res.StatusCode, b)
	}
}

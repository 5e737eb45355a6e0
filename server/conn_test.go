package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// The tests of this file speak HTTP/1.1 over raw TCP, to send what a client library would not.

// rawConn dials addr with a deadline that only keeps a broken test from hanging.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn
}

// readAnswer reads one response from br, failing the test on anything but a whole response.
func readAnswer(t *testing.T, br *bufio.Reader) response {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	if res.Close {
		// ReadResponse takes "Connection: close" out of the header into Close.
		res.Header.Set("Connection", "close")
	}
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// wantClosed fails unless the server closed the connection (after its answer, already read).
func wantClosed(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	// A second request on the connection must find it closed.
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("the connection is still open: read %q", b)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the connection is still open: %v", err)
	}
}

func addrOf(b *bundle) string { return strings.TrimPrefix(b.srv.URL, "http://") }

func TestBodyThatStopsArrivingIsCut(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) { o.BodyIdleTimeout = 200 * time.Millisecond })
	conn := rawConn(t, addrOf(b))
	// Half a body, then nothing: the client went quiet.
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"login\":")
	br := bufio.NewReader(conn)
	r := readAnswer(t, br)
	expect(t, r, http.StatusRequestTimeout, "request_timeout")
	if r.header.Get("Connection") != "close" {
		t.Errorf("Connection: %q", r.header.Get("Connection"))
	}
	wantClosed(t, conn, br)
}

func TestBodyTrickledPastTheReadTimeoutIsCut(t *testing.T) {
	t.Parallel()
	// Every byte comes well within the idle timeout; the whole body would take 50 s.
	b := setup(t, func(o *apptest.Setup) { o.BodyIdleTimeout, o.BodyReadTimeout = 10*time.Second, 300*time.Millisecond })
	conn := rawConn(t, addrOf(b))
	body := `{"login":"` + strings.Repeat("x", 1000) + `"}`
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	var sent atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for i := range len(body) {
			if ctx.Err() != nil {
				return
			}
			if _, err := io.WriteString(conn, body[i:i+1]); err != nil {
				return
			}
			sent.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	br := bufio.NewReader(conn)
	r := readAnswer(t, br)
	expect(t, r, http.StatusRequestTimeout, "request_timeout")
	if n := sent.Load(); n >= int64(len(body)) {
		t.Fatalf("answered only after the whole body (%d bytes) arrived", n)
	}
	stop()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection is still open")
	}
}

// TestBodyDeadlineLeavesTheConnectionToLongPolls: after a body read under its deadline, the
// connection serves a long-poll that waits well past that deadline, undisturbed.
func TestBodyDeadlineLeavesTheConnectionToLongPolls(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *apptest.Setup) {
		o.BodyIdleTimeout, o.BodyReadTimeout = 100*time.Millisecond, 100*time.Millisecond
	})
	mgr := b.signIn(t, "manager", "")
	conn := rawConn(t, addrOf(b))
	br := bufio.NewReader(conn)
	// A push: its body is read under the deadline...
	body := `{"mutations":[]}`
	fmt.Fprintf(conn, "POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", mgr.token, len(body), body)
	expect(t, readAnswer(t, br), http.StatusOK, "")
	// ...and a long-poll on the same connection afterwards waits its whole second undisturbed.
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", pullPath(b.pullOnce(t, mgr, "", 0).Cursor, 0, 1), mgr.token)
	expect(t, readAnswer(t, br), http.StatusOK, "")
}

// serveReal starts a server through Serve, as the binary runs it, and returns its address.
func serveReal(t *testing.T, b *bundle) string {
	t.Helper()
	s := b.replica(t, func(s *apptest.Setup) {
		s.MaxBodyBytes, s.BodyIdleTimeout, s.BodyReadTimeout = 1<<20, 10*time.Second, 10*time.Second
	}).Server
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-served })
	return ln.Addr().String()
}

func TestRequestWithBothLengthsIsRefusedAndClosed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := serveReal(t, b)
	login := `{"login":"nobody","password":"x","device":{"id":"` + uuid.NewString() + `","platform":"ios"}}`

	// Requests framed one way or the other share a kept-alive connection, bodies included.
	conn := rawConn(t, addr)
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(login), login)
	expect(t, readAnswer(t, br), http.StatusUnauthorized, "invalid_credentials")
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(login), login)
	expect(t, readAnswer(t, br), http.StatusUnauthorized, "invalid_credentials")

	// Both: refused, and the connection closed, so whatever a proxy thought came next never runs.
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
		len(login), len(login), login)
	r := readAnswer(t, br)
	expect(t, r, http.StatusBadRequest, "bad_request")
	if r.header.Get("Connection") != "close" {
		t.Errorf("Connection: %q", r.header.Get("Connection"))
	}
	wantClosed(t, conn, br)
}

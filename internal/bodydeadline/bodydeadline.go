// Package bodydeadline reads a request body under a read deadline on its connection, pushed
// forward before every read: a body that pauses longer than the idle time, or takes longer than
// the total time, fails its read and the request ends, whatever the pace of the bytes before. The
// deadline is the connection's (http.ResponseController), so a read blocked in the kernel is woken
// too. What a timed-out read fails with is the caller's to say (an upload keeps what arrived; a
// JSON request is simply refused).
package bodydeadline

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Body is a request body read under a deadline. It is not safe for concurrent use (a body is not).
type Body struct {
	io.ReadCloser
	rc          *http.ResponseController
	header      http.Header
	idle, total time.Duration
	start       time.Time
	timeout     func() error
	// ended is set once the body is read whole, failed, or cannot be given a deadline (a writer
	// without SetReadDeadline, such as a test recorder): it is then read without one.
	ended bool
}

// New returns body bounded by idle (the longest pause between two reads) and total (the longest
// whole read from now), either zero for no bound. A read past the deadline fails with what
// timeout returns, and the answer is sent with Connection: close, since the connection's stream
// is cut mid-body.
func New(w http.ResponseWriter, body io.ReadCloser, idle, total time.Duration, timeout func() error) *Body {
	return &Body{ReadCloser: body, rc: http.NewResponseController(w), header: w.Header(),
		idle: idle, total: total, start: time.Now(), timeout: timeout}
}

// Read reads from the body under the deadline.
func (b *Body) Read(p []byte) (int, error) {
	if b.ended {
		return b.ReadCloser.Read(p)
	}
	var deadline time.Time
	if b.idle > 0 {
		deadline = time.Now().Add(b.idle)
	}
	if end := b.start.Add(b.total); b.total > 0 && (deadline.IsZero() || end.Before(deadline)) {
		deadline = end
	}
	if err := b.rc.SetReadDeadline(deadline); err != nil {
		b.ended = true
		return b.ReadCloser.Read(p)
	}
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		return n, nil
	}
	b.ended = true
	if isTimeout(err) {
		b.header.Set("Connection", "close")
		return n, b.timeout()
	}
	// Read whole (or failed): lift the deadline, so that what follows the body (a long-poll, an
	// event stream, the completion of an upload) is not cut.
	_ = b.rc.SetReadDeadline(time.Time{})
	return n, err
}

// Done is called when the handler is finished with the body. If some of it was left unread,
// net/http reads (and discards) the rest to reuse the connection, and that read is bounded by
// the idle time too. (The server sets the deadline afresh before a kept-alive connection's next
// request.)
func (b *Body) Done() {
	if !b.ended && b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

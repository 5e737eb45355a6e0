package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// What keeps one client from holding the upload server's memory: a cap on the upload requests
// each user and each device has in progress, a bounded wait for a part buffer, and an idle
// deadline on the body, so that a body that stops sending gives its buffer back.

// busyRetryAfter is what a client turned away for lack of room is told to wait.
const busyRetryAfter = 5 * time.Second

// inflight counts the upload requests in progress on this replica per user and per device. The
// counts are the replica's own: behind a load balancer a user may have that many per replica,
// which still bounds each replica's memory, the thing the caps protect.
type inflight struct {
	perUser, perDevice int
	mu                 gosync.Mutex
	users, devices     map[uuid.UUID]int
	n                  int
}

func newInflight(perUser, perDevice int) *inflight {
	return &inflight{perUser: perUser, perDevice: perDevice, users: map[uuid.UUID]int{}, devices: map[uuid.UUID]int{}}
}

// admit counts an upload request of caller in, or refuses it (429 too_many_uploads) if the user
// or the device has as many in progress as allowed. The returned func counts it out.
func (l *inflight) admit(caller *fieldsync.Identity) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	device := caller.DeviceID
	var refused string
	var limit int
	switch {
	case l.users[caller.UserID] >= l.perUser:
		refused, limit = "user", l.perUser
	case device != uuid.Nil && l.devices[device] >= l.perDevice:
		refused, limit = "device", l.perDevice
	}
	if refused != "" {
		return nil, &fieldsync.Error{Kind: fieldsync.ERATELIMIT, Code: "too_many_uploads",
			Message:    fmt.Sprintf("This %s has %d uploads in progress already; send this one when one of them ends.", refused, limit),
			Details:    map[string]any{"per": refused, "limit": limit},
			RetryAfter: busyRetryAfter}
	}
	l.users[caller.UserID]++
	if device != uuid.Nil {
		l.devices[device]++
	}
	l.n++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.users[caller.UserID]--; l.users[caller.UserID] == 0 {
			delete(l.users, caller.UserID)
		}
		if device != uuid.Nil {
			if l.devices[device]--; l.devices[device] == 0 {
				delete(l.devices, device)
			}
		}
		l.n--
	}, nil
}

func (l *inflight) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// errServerBusy answers a request that found no part buffer within BufferWait: every buffer is
// held by other uploads in progress.
var errServerBusy = &fieldsync.Error{Kind: fieldsync.EUNAVAILABLE, Code: "server_busy",
	Message: "The server is receiving as many uploads as it can; nothing was lost. Retry shortly.", RetryAfter: busyRetryAfter}

// acquireBuffer takes a part buffer, waiting at most BufferWait for one. The returned func gives
// it back.
func (s *Service) acquireBuffer(ctx context.Context) (*[]byte, func(), error) {
	wctx, cancel := context.WithTimeout(ctx, s.opts.BufferWait)
	defer cancel()
	if err := s.buffers.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("wait for a part buffer: %w", ctx.Err())
		}
		return nil, nil, errServerBusy
	}
	s.bufferedParts.Add(1)
	bufp := partBuffers.Get().(*[]byte)
	return bufp, func() {
		partBuffers.Put(bufp)
		s.bufferedParts.Add(-1)
		s.buffers.Release(1)
	}, nil
}

// errBodyIdle ends a request whose body sent nothing for BodyIdleTimeout. What arrived before is
// kept; the answer's Upload-Offset says where to resume.
func errBodyIdle(idle time.Duration) *fieldsync.Error {
	return &fieldsync.Error{Kind: kindRequestTimeout, Code: "body_idle_timeout",
		Message: fmt.Sprintf("No bytes of the body arrived for %s; what arrived was kept. Resume from Upload-Offset.", idle),
		Details: map[string]any{"idle_seconds": idle.Seconds()}}
}

// kindRequestTimeout is the protocol's 408.
const kindRequestTimeout = "request_timeout"

// idleBody reads a request body under a read deadline pushed forward before every read: a body
// that sends nothing for idle fails with errBodyIdle, and the request ends, whatever the pace of
// the bytes before. The deadline is the connection's (http.ResponseController), so a read blocked
// in the kernel is woken too.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	// off is set when the connection cannot take a deadline (a writer without SetReadDeadline):
	// the body is then read without one.
	off bool
	// timedOut is set once the deadline passed.
	timedOut bool
}

func newIdleBody(w http.ResponseWriter, r io.Reader, idle time.Duration) *idleBody {
	return &idleBody{r: r, rc: http.NewResponseController(w), idle: idle}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.off {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.idle)); err != nil {
			b.off = true
		}
	}
	n, err := b.r.Read(p)
	if err != nil && isTimeout(err) {
		b.timedOut = true
		return n, errBodyIdle(b.idle)
	}
	return n, err
}

// done pushes the deadline forward once more when the handler is finished with the body: the
// server's drain of a body left unread after the handler is bounded by it too. (The server sets
// the connection's deadline afresh before a kept-alive connection's next request.) A deadline
// that passed already is left, so that the drain fails at once.
func (b *idleBody) done() {
	if !b.off && !b.timedOut {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

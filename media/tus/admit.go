package tus

import (
	"fmt"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// What keeps one client from holding the upload server: a cap on the upload requests each user
// and each device has in progress, and an idle deadline on the body (see Handler.body), so that a
// body that stops sending gives what it holds back.

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

// errBodyIdle ends a request whose body sent nothing for the idle timeout. What arrived before is
// kept; the answer's Upload-Offset says where to resume.
func errBodyIdle(idle time.Duration) *fieldsync.Error {
	return &fieldsync.Error{Kind: fieldsync.ETIMEOUT, Code: "body_idle_timeout",
		Message: fmt.Sprintf("No bytes of the body arrived for %s; what arrived was kept. Resume from Upload-Offset.", idle),
		Details: map[string]any{"idle_seconds": idle.Seconds()}}
}

// Package waitcap caps how many requests that wait (long-polls, event streams) one user holds open
// at once on a replica. Each such request holds a connection, a goroutine and a listener's watcher
// for as long as it waits; without a cap one session could open hundreds. The sync engine and the
// event stream each keep their own cap, and both refuse the same way.
package waitcap

import (
	"sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// RetryAfter is what a refused caller is told to wait before trying again: about the time a
// long-poll or a reconnecting stream takes to come back.
const RetryAfter = 5 * time.Second

// Cap counts what each user holds open. The zero value is not usable; call New.
type Cap struct {
	max  int
	mu   sync.Mutex
	held map[uuid.UUID]int
}

// New returns a cap of limit open requests per user (at least 1).
func New(limit int) *Cap {
	return &Cap{max: max(limit, 1), held: map[uuid.UUID]int{}}
}

// Acquire takes one of user's places, and returns the function that gives it back (call it once,
// when the request ends). Over the cap it returns a too_many_waits error (429, with Retry-After)
// naming what, and holds nothing.
func (c *Cap) Acquire(user uuid.UUID, what string) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[user] >= c.max {
		return nil, &fieldsync.Error{Kind: fieldsync.ERATELIMIT, Code: "too_many_waits",
			Message:    "You have too many " + what + " open at once; close one, or try again shortly.",
			Details:    map[string]any{"limit": c.max},
			RetryAfter: RetryAfter}
	}
	c.held[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.held[user]--; c.held[user] <= 0 {
				delete(c.held, user)
			}
		})
	}, nil
}

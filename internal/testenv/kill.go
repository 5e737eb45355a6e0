package testenv

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// KillablePool returns a pool of the database's schema (at most conns connections) and kill,
// which cuts every connection of the pool at once and refuses new ones: what PostgreSQL sees when
// the process holding them dies. Whatever that process had written stays as it was (a job it was
// working stays "running"), and nothing it does afterwards reaches the database. The pool is
// closed when the test ends, without waiting for what still holds its connections.
func (d *Database) KillablePool(t testing.TB, conns int32) (*pgxpool.Pool, func()) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cfg.MaxConns = conns
	var (
		mu     sync.Mutex
		killed bool
		open   []net.Conn
	)
	var dialer net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if killed {
			return nil, errors.New("testenv: the pool's process was killed")
		}
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			open = append(open, c)
		}
		return c, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		closed := make(chan struct{})
		go func() { pool.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second): // a dead process's goroutines may still hold connections
		}
	})
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		killed = true
		for _, c := range open {
			c.Close()
		}
		open = nil
	}
	return pool, kill
}

package sync

import (
	"testing"
	"time"
)

// TestSQLNowOnlyUnderAnotherClock: under time.Now the engine leaves SQL on the database's
// transaction time (no statement in its writes, NULL asof in its reads); under any other clock
// SQL is told the clock's time.
func TestSQLNowOnlyUnderAnotherClock(t *testing.T) {
	e := New(nil, Config{}, nil)
	if now := e.sqlNow(); now != nil {
		t.Fatalf("sqlNow under time.Now = %v, want nil", now)
	}
	e.NowFunc = time.Now // as the composition root assigns it
	if now := e.sqlNow(); now != nil {
		t.Fatalf("sqlNow under time.Now = %v, want nil", now)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e.NowFunc = func() time.Time { return at }
	if now := e.sqlNow(); now == nil || !now.Equal(at) {
		t.Fatalf("sqlNow under a test clock = %v, want %v", now, at)
	}
}

// BenchmarkSQLNow is what the real clock costs a read or a write.
func BenchmarkSQLNow(b *testing.B) {
	e := New(nil, Config{}, nil)
	for b.Loop() {
		if e.sqlNow() != nil {
			b.Fatal("not nil")
		}
	}
}

// TestJitteredWait: an empty long-poll is answered within the last fifth of its wait (at most
// waitJitter early), never after it, and not all at one time.
func TestJitteredWait(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Second, 25 * time.Second, 60 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := jittered(wait)
			if got > wait || got < wait-min(wait/5, waitJitter) {
				t.Fatalf("jittered(%v) = %v, want within [%v, %v]", wait, got, wait-min(wait/5, waitJitter), wait)
			}
			seen[got] = true
		}
		if wait > 0 && len(seen) < 100 {
			t.Errorf("jittered(%v) gave %d distinct times in 200, want them spread", wait, len(seen))
		}
	}
}

package waitcap

import (
	"testing"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

func TestCapCountsEachUserAndFreesOnRelease(t *testing.T) {
	c := New(2)
	alice, bob := uuid.New(), uuid.New()
	r1, err := c.Acquire(alice, "polls")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Acquire(alice, "polls"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(alice, "polls")
	if fieldsync.ErrorCode(err) != "too_many_waits" || fieldsync.ErrorKind(err) != fieldsync.ERATELIMIT {
		t.Fatalf("third: %v", err)
	}
	if _, err := c.Acquire(bob, "polls"); err != nil {
		t.Fatalf("another user is counted apart: %v", err)
	}
	r1()
	r1() // a second release gives back nothing more
	if _, err := c.Acquire(alice, "polls"); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := c.Acquire(alice, "polls"); err == nil {
		t.Fatal("a double release freed two places")
	}
}

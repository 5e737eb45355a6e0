package notify

import (
	"testing"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestEnteredScope: a task enters its assignee's scope when it is created for them, changes hands
// to them, or is reopened; any other write to it (a status step, an edit, an unassignment) wakes
// nobody.
func TestEnteredScope(t *testing.T) {
	rep, other := uuid.New(), uuid.New()
	task := func(assignee uuid.UUID, status sync.TaskStatus) *sync.Task {
		return &sync.Task{AssigneeID: assignee, Status: status}
	}
	for _, c := range []struct {
		name          string
		before, after *sync.Task
		want          uuid.UUID
	}{
		{"created for the rep", nil, task(rep, sync.TaskAssigned), rep},
		{"created unassigned", nil, task(uuid.Nil, sync.TaskOpen), uuid.Nil},
		{"assigned", task(uuid.Nil, sync.TaskOpen), task(rep, sync.TaskAssigned), rep},
		{"reassigned", task(other, sync.TaskAccepted), task(rep, sync.TaskAssigned), rep},
		{"unassigned", task(rep, sync.TaskAssigned), task(uuid.Nil, sync.TaskOpen), uuid.Nil},
		{"accepted", task(rep, sync.TaskAssigned), task(rep, sync.TaskAccepted), uuid.Nil},
		{"completed", task(rep, sync.TaskInProgress), task(rep, sync.TaskCompleted), uuid.Nil},
		{"reopened", task(rep, sync.TaskCannotComplete), task(rep, sync.TaskAssigned), rep},
	} {
		if got := enteredScope(c.before, c.after); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

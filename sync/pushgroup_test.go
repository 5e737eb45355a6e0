package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestPushAsSetAnswersAsOneByOne pushes the same mutations to two copies of the same records, as
// a set and mutation by mutation, and holds the results, the conflicts recorded and the records
// to be the same: updates, notes, a merge over a concurrent edit, an update of a deleted task, a
// forbidden field, a reassignment to someone who is not a rep and one to a rep (which ends its
// group), and a note whose id is taken (the database refuses it: its group is applied again one
// by one).
func TestPushAsSetAnswersAsOneByOne(t *testing.T) {
	f := newEngineFixture(t, 4)
	ctx := context.Background()
	manager := f.newUser(t, "manager", "")
	rep1, rep2 := f.newUser(t, "rep", "hospital"), f.newUser(t, "rep", "hospital")
	processor := f.newUser(t, "processor", "")
	slow := sync.New(f.pool, sync.Config{ScopeWindow: 30 * 24 * time.Hour}, slog.New(slog.DiscardHandler))
	sync.ApplyOneByOne(slow)

	type copyOf struct {
		tasks     []uuid.UUID
		customers []uuid.UUID
		note      uuid.UUID
	}
	makeCopy := func() copyOf {
		var c copyOf
		for range 4 {
			cust := f.newCustomer(t, uuid.Nil)
			claim := f.newClaim(t, cust, "collecting")
			c.customers = append(c.customers, cust)
			c.tasks = append(c.tasks, f.newTask(t, claim, rep1.UserID))
		}
		c.note = uuid.New()
		f.exec(t, `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) SELECT $1, $2, branch_id, $3, 'First' FROM tasks WHERE id = $2`,
			c.note, c.tasks[0], manager.UserID)
		// A concurrent edit of task 1, and task 2 deleted.
		f.exec(t, `UPDATE tasks SET title = 'Edited elsewhere' WHERE id = $1`, c.tasks[1])
		f.exec(t, `UPDATE tasks SET deleted_at = now() WHERE id = $1`, c.tasks[2])
		return c
	}
	set, one := makeCopy(), makeCopy()
	version := func(table string, id uuid.UUID) int64 {
		var v int64
		if err := f.pool.QueryRow(ctx, `SELECT version FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	js := func(v any) json.RawMessage { data, _ := json.Marshal(v); return data }
	mutations := func(c copyOf, noteID uuid.UUID, takenNote bool) []sync.Mutation {
		upd := func(typ string, id uuid.UUID, base int64, fields map[string]any) sync.Mutation {
			m := sync.Mutation{ID: uuid.New(), Type: typ, Op: "update", EntityID: id, BaseVersion: &base, Fields: map[string]json.RawMessage{}}
			for k, v := range fields {
				m.Fields[k] = js(v)
			}
			return m
		}
		note := func(id, task uuid.UUID, body string) sync.Mutation {
			return sync.Mutation{ID: uuid.New(), Type: "task_note", Op: "create", EntityID: id,
				Fields: map[string]json.RawMessage{"task_id": js(task), "body": js(body)}}
		}
		ms := []sync.Mutation{
			upd("task", c.tasks[0], version("tasks", c.tasks[0]), map[string]any{"title": "Retitled"}),
			upd("customer", c.customers[0], version("customers", c.customers[0]), map[string]any{"phone": "+1 555 0199"}),
			note(noteID, c.tasks[0], "A note"),
			// Based on the version before the edit elsewhere: merged over it.
			upd("task", c.tasks[1], version("tasks", c.tasks[1])-1, map[string]any{"title": "Mine", "instructions": "Ward 4"}),
			upd("task", c.tasks[2], version("tasks", c.tasks[2]), map[string]any{"title": "Too late"}),
			upd("task", c.tasks[3], version("tasks", c.tasks[3]), map[string]any{"completion_note": "Not a manager's"}),
			upd("task", c.tasks[3], version("tasks", c.tasks[3]), map[string]any{"assignee_id": processor.UserID}),
			upd("customer", c.customers[1], version("customers", c.customers[1]), map[string]any{"address": "Side St 2", "agent_id": rep2.UserID}),
			upd("task", c.tasks[3], version("tasks", c.tasks[3]), map[string]any{"assignee_id": rep2.UserID}),
			note(uuid.New(), c.tasks[3], "After the reassignment"),
			upd("customer", c.customers[2], version("customers", c.customers[2]), map[string]any{"phone": "+1 555 0142"}),
			// A field the manager may not write beside one they may: refused on its own.
			upd("task", c.tasks[0], version("tasks", c.tasks[0]), map[string]any{"instructions": "Ward 9", "completion_note": "Not a manager's"}),
		}
		if takenNote {
			ms = append(ms[:3:3], note(c.note, c.tasks[0], "Taken"), upd("customer", c.customers[3], version("customers", c.customers[3]), map[string]any{"name": "Renamed"}))
		}
		return ms
	}
	// What must match: each result's status, error and conflicts, and the records' fields.
	summary := func(rs []sync.Result, c copyOf) string {
		out := ""
		for i, r := range rs {
			out += fmt.Sprintf("%d: %s", i, r.Status)
			if r.Error != nil {
				out += fmt.Sprintf(" %s %v gone=%q", r.Error.Code, r.Error.Details, r.Gone)
			}
			for _, cf := range r.Conflicts {
				out += fmt.Sprintf(" [%s %s %s]", cf.Field, cf.Kept, cf.Rule)
			}
			var e map[string]any
			_ = json.Unmarshal(r.Entity, &e)
			for _, k := range []string{"title", "instructions", "phone", "address", "agent_id", "body", "status"} {
				if v, ok := e[k]; ok {
					if s, ok := v.(string); ok && (len(s) == 36 || strings.HasPrefix(s, "Visit ")) {
						v = "<made by the fixture>"
					}
					out += fmt.Sprintf(" %s=%v", k, v)
				}
			}
			out += "\n"
		}
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM conflicts WHERE entity_id = ANY($1) OR entity_id = ANY($2)`, c.tasks, c.customers).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return out + fmt.Sprintf("conflicts recorded: %d\n", n)
	}
	push := func(e *sync.Engine, id *fieldsync.Identity, ms []sync.Mutation) []sync.Result {
		rs, err := e.Push(ctx, id, ms)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	got, want := summary(push(f.engine, manager, mutations(set, uuid.New(), false)), set), summary(push(slow, manager, mutations(one, uuid.New(), false)), one)
	if got != want {
		t.Errorf("as a set:\n%s\none by one:\n%s", got, want)
	}
	for _, line := range []string{"0: applied", "3: merged", "4: rejected deleted", "5: rejected forbidden_field", "6: rejected invalid_value", "8: applied",
		"11: conflict [completion_note theirs forbidden_field]"} {
		if !strings.Contains(got, line) {
			t.Errorf("as a set, want %q in:\n%s", line, got)
		}
	}
	got, want = summary(push(f.engine, manager, mutations(set, uuid.New(), true)), set), summary(push(slow, manager, mutations(one, uuid.New(), true)), one)
	if got != want {
		t.Errorf("a note whose id is taken, as a set:\n%s\none by one:\n%s", got, want)
	}
	if !strings.Contains(got, "3: rejected already_exists") || !strings.Contains(got, "4: applied") {
		t.Errorf("a note whose id is taken: want it rejected and the rest applied:\n%s", got)
	}
}

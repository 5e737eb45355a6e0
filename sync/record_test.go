package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// TestRecordViewsAgree holds the two renderings of each type's allow-list to each other: the SQL
// that pulls and push results send, and the Go view of a stored row the hooks get as Before.
// Rows cover both sides of every flag (has_thumbnail, read, disabled).
func TestRecordViewsAgree(t *testing.T) {
	f := newEngineFixture(t, 4)
	rep := f.newUser(t, "rep", "agent")
	mgr := f.newUser(t, "manager", "")
	f.exec(t, `UPDATE users SET disabled_at = now() WHERE id = $1`, mgr.UserID)
	claim := f.newClaim(t, f.newCustomer(t, rep.UserID), "collecting")
	f.newCustomer(t, uuid.Nil)
	task := f.newTask(t, claim, rep.UserID)
	f.newTask(t, claim, uuid.Nil)
	f.exec(t, `UPDATE tasks SET due_at = now(), location_lat = 1.5, location_lng = -2.25 WHERE id = $1`, task)
	f.exec(t, `INSERT INTO task_notes (id, task_id, branch_id, author_id, body) VALUES ($1, $2, $3, $4, 'Asleep.')`, uuid.New(), task, f.branch, rep.UserID)
	f.exec(t, `INSERT INTO documents (id, claim_id, branch_id, task_id, kind, status, uploader_id) VALUES ($1, $2, $3, $4, 'photo', 'pending_upload', $5)`,
		uuid.New(), claim, f.branch, task, rep.UserID)
	f.exec(t, `INSERT INTO documents (id, claim_id, branch_id, kind, status, uploader_id, object_key, thumbnail_key, width, height, gps_lat, gps_lng, captured_at)
		VALUES ($1, $2, $3, 'photo', 'uploaded', $4, 'documents/x', 'thumbnails/x', 640, 480, 1.25, 2.5, now())`, uuid.New(), claim, f.branch, rep.UserID)
	f.exec(t, `INSERT INTO notifications (id, user_id, branch_id, kind, title, body, entity_type, entity_id, data)
		VALUES ($1, $2, $3, 'task_assigned', 'New task', 'Go.', 'task', $4, '{"claim_number": "CLM-1"}')`, uuid.New(), rep.UserID, f.branch, task)
	f.exec(t, `INSERT INTO notifications (id, user_id, branch_id, kind, title, body, read_at) VALUES ($1, $2, $3, 'task_assigned', 'Old task', 'Gone.', now())`,
		uuid.New(), rep.UserID, f.branch)

	tables := map[string]string{sync.TypeTask: "tasks", sync.TypeTaskNote: "task_notes", sync.TypeClaim: "claims", sync.TypeCustomer: "customers",
		sync.TypeDocument: "documents", sync.TypeNotification: "notifications", sync.TypeUser: "users"}
	for typ, table := range tables {
		rows, err := f.pool.Query(context.Background(), `SELECT to_jsonb(t), `+sync.RecordSQL(typ, "t")+` FROM `+table+` t WHERE t.branch_id = $1`, f.branch)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var stored, sent []byte
			if err := rows.Scan(&stored, &sent); err != nil {
				t.Fatal(err)
			}
			view, err := sync.RecordOf(typ, stored)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			dec := json.NewDecoder(bytes.NewReader(sent))
			dec.UseNumber()
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(view, want) {
				t.Errorf("%s: the Go view %v, the SQL record %v", typ, view, want)
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no %s rows", typ)
		}
	}
}

package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ListNotifications returns a page of the caller's inbox, newest first, as their devices hold it
// (the notification scope: unread, or read within the window), with the same JSON as a pull. Any
// role with an inbox may read its own.
func (e *Engine) ListNotifications(ctx context.Context, id *fieldsync.Identity, limit int, afterCursor string) (*Page[json.RawMessage], error) {
	if err := requireRole(id, rep, processor, manager); err != nil {
		return nil, err
	}
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	after, err := parseListCursor(afterCursor, "notifications")
	if err != nil {
		return nil, err
	}
	q := e.newScreenQuery(id)
	pred, err := scopeOf(id.Role, TypeNotification)
	if err != nil {
		return nil, err
	}
	q.where("(" + pred + ")")
	if after != nil {
		q.where(fmt.Sprintf("(t.created_at, t.id) < (%s::timestamptz, %s::uuid)", q.arg(after.time()), q.arg(after.ID)))
	}
	sql := fmt.Sprintf(`SELECT t.created_at, t.id, %s FROM notifications t, %s WHERE %s ORDER BY t.created_at DESC, t.id DESC LIMIT %s`,
		entities[TypeNotification].data, params, q.condition(), q.arg(limit+1))
	return collectPage(ctx, e, sql, q.args, "notifications", limit, func(rows pgx.Rows) (json.RawMessage, time.Time, uuid.UUID, error) {
		var at time.Time
		var nid uuid.UUID
		var data json.RawMessage
		err := rows.Scan(&at, &nid, &data)
		return data, at, nid, err
	})
}

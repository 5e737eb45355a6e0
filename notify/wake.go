package notify

import (
	"context"
	"fmt"
	"strconv"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Background wake-ups. When a task enters a rep's scope (created with them as its assignee,
// dispatched, reassigned to them, or reopened to them), each of the rep's signed-in phones gets a
// data-only push: {"type": "sync"}, no notification, so the app syncs in the background and has
// the task before the rep opens it (docs/protocol.md §8). It is written and delivered as the
// alerts are: a pending delivery per device (kind sync, no notification, so nothing in the inbox)
// in the transaction of the change, and the same delivery job. Every wake-up of a device shares
// one collapse key, so a phone that was off gets one, not one per change.

// wakeKey is the collapse key of every wake-up: one "sync now" replaces another.
const wakeKey = "sync"

// wake queues a wake-up to each live device of the user a task write brought the task to, but the
// device that made the change (it has the task already).
func (s *Service) wake(ctx context.Context, tx pgx.Tx, ev sync.Event) error {
	if s.cfg.NoWake || !s.PushEnabled() || ev.Type != sync.TypeTask || (ev.Op != "create" && ev.Op != "update") {
		return nil
	}
	before, after, err := ev.Task()
	if err != nil {
		return err
	}
	user := enteredScope(before, after)
	if user == uuid.Nil {
		return nil
	}
	var actorDevice uuid.UUID
	if ev.Actor != nil {
		actorDevice = ev.Actor.DeviceID
	}
	batch := uuid.Must(uuid.NewV7())
	var queued int
	err = tx.QueryRow(ctx, `
		WITH queued AS (
			INSERT INTO notification_deliveries (kind, device_id, batch_id)
			SELECT $4, d.id, $2 FROM devices d JOIN users u ON u.id = d.user_id AND u.disabled_at IS NULL
			WHERE d.user_id = $1 AND d.id <> $3 AND d.push_token IS NOT NULL AND `+liveDevice+`
			RETURNING 1
		)
		SELECT count(*) FROM queued`, user, batch, actorDevice, kindSync).Scan(&queued)
	if err != nil {
		return fmt.Errorf("write wake-ups: %w", err)
	}
	if queued == 0 {
		return nil
	}
	return s.queueDelivery(ctx, tx, batch)
}

// enteredScope returns the user whose device a task write brings the task to, or uuid.Nil: its
// assignee when the task is new, has changed hands, or was reopened (finished before, not now).
func enteredScope(before, after *sync.Task) uuid.UUID {
	is := after.AssigneeID
	switch {
	case is == uuid.Nil:
		return uuid.Nil
	case before == nil, before.AssigneeID != is:
		return is
	case before.Status.Finished() && !after.Status.Finished():
		return is
	}
	return uuid.Nil
}

// wakeMessage is the data-only push of a wake-up: no notification on any platform, so nothing is
// shown; Android delivers it to the app (normal priority: a background sync is no reason to wake
// a dozing phone at once, and it keeps the app's high-priority quota for alerts); iOS wakes the
// app in the background (content-available, push type background, priority 5, as APNs requires
// for background pushes). It lives as long as an alert (PushTTL): a phone switched on days later
// syncs before its rep opens the app.
func (s *Service) wakeMessage(token string) *messaging.Message {
	ttl := s.cfg.PushTTL
	return &messaging.Message{
		Token: token,
		Data:  map[string]string{"type": "sync"},
		Android: &messaging.AndroidConfig{
			CollapseKey: wakeKey,
			Priority:    "normal",
			TTL:         &ttl,
		},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{
				"apns-collapse-id": wakeKey,
				"apns-priority":    "5",
				"apns-push-type":   "background",
				"apns-expiration":  strconv.FormatInt(s.NowFunc().Add(ttl).Unix(), 10),
			},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ContentAvailable: true}},
		},
		Webpush: &messaging.WebpushConfig{
			Headers: map[string]string{"Topic": wakeKey, "Urgency": "normal", "TTL": strconv.Itoa(int(ttl.Seconds()))},
		},
	}
}

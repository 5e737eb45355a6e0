package notify

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
)

// FCMConfig says how to reach Firebase Cloud Messaging.
type FCMConfig struct {
	// CredentialsFile is a Firebase service account's JSON key. Messages go to its project.
	CredentialsFile string
	// TokenSource, if set, is used instead of CredentialsFile (tests, or credentials from
	// elsewhere); ProjectID is then required.
	TokenSource oauth2.TokenSource
	// ProjectID overrides the credentials' project.
	ProjectID string
	// Endpoint replaces FCM's own (https://fcm.googleapis.com/v1): an emulator, or a test server.
	Endpoint string
}

// NewFCM returns a Firebase messaging client (the Sender of Config) for cfg. It reads the
// credentials file but makes no request: a wrong key shows at the first send, as an
// authentication error that is retried.
func NewFCM(ctx context.Context, cfg FCMConfig) (*messaging.Client, error) {
	opts := []option.ClientOption{option.WithTelemetryDisabled()}
	switch {
	case cfg.TokenSource != nil:
		opts = append(opts, option.WithTokenSource(cfg.TokenSource))
	case cfg.CredentialsFile != "":
		data, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("read Firebase credentials: %w", err)
		}
		var key struct {
			Type      string `json:"type"`
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(data, &key); err != nil || key.Type != "service_account" {
			return nil, errors.New("the Firebase credentials are not a service account's JSON key")
		}
		if cfg.ProjectID == "" {
			cfg.ProjectID = key.ProjectID
		}
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, data))
	default:
		return nil, errors.New("no Firebase credentials")
	}
	if cfg.ProjectID == "" {
		return nil, errors.New("no Firebase project id")
	}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	return client, nil
}

// What a push shows: a lock screen shows a title of a few words and two to four lines of body.
// The inbox keeps the whole text.
const (
	pushTitleMax = 65
	pushBodyMax  = 240
	// maxPayload is FCM's limit on a message's payload (notification and data), 4,096 bytes,
	// less a margin for how FCM counts.
	maxPayload = 3900
)

// collapseKey names the record a notification is about. Every push about one record carries it
// (Android's collapse key and tag, APNs' collapse id and thread, Web Push's tag): a newer alert
// replaces an older one in the tray, so a storm of changes to one task is one alert, the latest,
// and a message sent twice (a retry after a crash) is shown once.
func collapseKey(entityType string, entityID uuid.UUID) string {
	return entityType + ":" + entityID.String() // at most 45 bytes; APNs allows 64
}

// webTopic is the collapse key as Web Push's Topic header allows it: at most 32 characters of the
// URL-safe base64 alphabet.
func webTopic(key string) string {
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}

// pushData are the fields of a notification's data that the app needs to open the record; the
// text is in the notification itself.
var pushData = []string{"claim_id", "task_id", "document_id", "claim_number"}

// message builds the FCM message of a delivery: a notification's alert, or a wake-up.
func (s *Service) message(d *delivery) *messaging.Message {
	if d.kind == kindSync {
		return s.wakeMessage(d.token)
	}
	key := collapseKey(d.entityType, d.entityID)
	data := map[string]string{
		"notification_id": d.notificationID.String(),
		"kind":            d.noteKind,
		"entity_type":     d.entityType,
		"entity_id":       d.entityID.String(),
	}
	for _, k := range pushData {
		if v, ok := d.data[k].(string); ok && v != "" {
			data[k] = v
		}
	}
	title, body := fitPayload(clip(d.title, pushTitleMax), clip(d.body, pushBodyMax), data, maxPayload)
	ttl := s.cfg.PushTTL
	return &messaging.Message{
		Token:        d.token,
		Notification: &messaging.Notification{Title: title, Body: body},
		Data:         data,
		Android: &messaging.AndroidConfig{
			CollapseKey:  key,
			Priority:     "high",
			TTL:          &ttl,
			Notification: &messaging.AndroidNotification{Tag: key},
		},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{
				"apns-collapse-id": key,
				"apns-priority":    "10",
				"apns-push-type":   "alert",
				"apns-expiration":  strconv.FormatInt(s.NowFunc().Add(ttl).Unix(), 10),
			},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ThreadID: key, Sound: "default"}},
		},
		Webpush: &messaging.WebpushConfig{
			Headers:      map[string]string{"Topic": webTopic(key), "Urgency": "high", "TTL": strconv.Itoa(int(ttl.Seconds()))},
			Notification: &messaging.WebpushNotification{Tag: key},
		},
	}
}

// payloadSize is how FCM counts a message against its limit: the bytes of the notification's
// texts and of every data key and value.
func payloadSize(title, body string, data map[string]string) int {
	n := len(title) + len(body)
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// fitPayload shortens the body (and, if that is not enough, the title) until the payload is at
// most limit bytes, cutting at a character boundary.
func fitPayload(title, body string, data map[string]string, limit int) (string, string) {
	over := payloadSize(title, body, data) - limit
	if over <= 0 {
		return title, body
	}
	body, over = cutBytes(body, over)
	if over > 0 {
		title, _ = cutBytes(title, over)
	}
	return title, body
}

// cutBytes removes at least n bytes from the end of s (ending it with an ellipsis when anything is
// left), and returns what is left and how many bytes are still to remove.
func cutBytes(s string, n int) (string, int) {
	const ellipsis = "…"
	if n >= len(s) {
		return "", n - len(s)
	}
	keep := len(s) - n - len(ellipsis)
	if keep <= 0 {
		return "", n - len(s)
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + ellipsis, 0
}

// retryAfter is what an FCM error's Retry-After header asks for (seconds or an HTTP date), or 0.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

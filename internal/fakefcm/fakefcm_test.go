package fakefcm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/notify"
	"golang.org/x/oauth2"
)

// newSender returns the firebase SDK's messaging client exactly as `fieldsync serve` builds it
// from FIELDSYNC_FIREBASE_CREDENTIALS_FILE and FIELDSYNC_FCM_ENDPOINT, pointed at f.
func newSender(t *testing.T, f *fakefcm.Server) *messaging.Client {
	t.Helper()
	file := filepath.Join(t.TempDir(), "firebase.json")
	if err := f.WriteCredentials(file); err != nil {
		t.Fatal(err)
	}
	c, err := notify.NewFCM(context.Background(), notify.FCMConfig{CredentialsFile: file, Endpoint: f.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func start(t *testing.T) *fakefcm.Server {
	f := fakefcm.New()
	t.Cleanup(f.Close)
	return f
}

// TestSendsThroughTheCredentialsFile: the SDK exchanges the written key at the fake's token
// endpoint (once: the token is cached), then sends with that token; the fake records what a
// test asks about, and WaitFor finds it.
func TestSendsThroughTheCredentialsFile(t *testing.T) {
	t.Parallel()
	f := start(t)
	c := newSender(t, f)
	ttl := 2 * time.Hour
	msg := &messaging.Message{
		Token:        "phone-1",
		Notification: &messaging.Notification{Title: "Hospital visit", Body: "Ana is at St. Mary's."},
		Data:         map[string]string{"kind": "claim_reported", "task_id": "t1"},
		Android: &messaging.AndroidConfig{CollapseKey: "task:t1", Priority: "high", TTL: &ttl,
			Notification: &messaging.AndroidNotification{Tag: "task:t1"}},
		APNS: &messaging.APNSConfig{Headers: map[string]string{"apns-collapse-id": "task:t1"},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ThreadID: "task:t1"}}},
		Webpush: &messaging.WebpushConfig{Headers: map[string]string{"Topic": "abc"}, Notification: &messaging.WebpushNotification{Tag: "task:t1"}},
	}
	name, err := c.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "projects/"+fakefcm.DefaultProject+"/messages/") {
		t.Fatalf("name %q", name)
	}
	if _, err := c.Send(context.Background(), &messaging.Message{Token: "phone-2", Data: map[string]string{"kind": "other"}}); err != nil {
		t.Fatal(err)
	}
	if n, refused := f.TokenRequests(), f.TokenRefusals(); n != 1 || refused != 0 {
		t.Errorf("%d tokens handed out (%d refused) for two sends, want 1 (the token is cached)", n, refused)
	}

	got, err := f.WaitFor(func(m fakefcm.Message) bool { return m.Token == "phone-1" }, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := fakefcm.Message{Name: name, Status: http.StatusOK, Attempt: 1, Token: "phone-1", Title: "Hospital visit", Body: "Ana is at St. Mary's.",
		AndroidCollapseKey: "task:t1", AndroidPriority: "high", AndroidTTL: "7200s", AndroidTag: "task:t1", APNSThreadID: "task:t1", WebpushTag: "task:t1"}
	if got.Name != want.Name || got.Status != want.Status || got.Attempt != want.Attempt || got.Token != want.Token ||
		got.Title != want.Title || got.Body != want.Body || got.AndroidCollapseKey != want.AndroidCollapseKey ||
		got.AndroidPriority != want.AndroidPriority || got.AndroidTTL != want.AndroidTTL || got.AndroidTag != want.AndroidTag ||
		got.APNSThreadID != want.APNSThreadID || got.WebpushTag != want.WebpushTag || got.DryRun {
		t.Errorf("recorded\n%+v\nwant\n%+v", got, want)
	}
	if got.Data["kind"] != "claim_reported" || got.Data["task_id"] != "t1" || got.APNSHeaders["apns-collapse-id"] != "task:t1" ||
		got.WebpushHeaders["Topic"] != "abc" {
		t.Errorf("data %v, apns headers %v, webpush headers %v", got.Data, got.APNSHeaders, got.WebpushHeaders)
	}
	var raw map[string]any
	if err := json.Unmarshal(got.Raw, &raw); err != nil || raw["token"] != "phone-1" {
		t.Errorf("raw message %s: %v", got.Raw, err)
	}
	if all := f.Messages(); len(all) != 2 || all[0].Token != "phone-1" || all[1].Token != "phone-2" {
		t.Errorf("messages %+v", all)
	}

	// Nothing else matches: WaitFor says so when its time is up.
	if _, err := f.WaitFor(func(m fakefcm.Message) bool { return m.Token == "phone-3" }, 50*time.Millisecond); !errors.Is(err, fakefcm.ErrTimeout) {
		t.Errorf("WaitFor for a message never sent: %v", err)
	}
	// A message that arrives while WaitFor waits is found.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = c.Send(context.Background(), &messaging.Message{Token: "phone-3"})
	}()
	if _, err := f.WaitFor(func(m fakefcm.Message) bool { return m.Token == "phone-3" }, 5*time.Second); err != nil {
		t.Error(err)
	}

	// A dry run is answered and recorded as a request, but is not a message sent.
	if _, err := c.SendDryRun(context.Background(), &messaging.Message{Token: "phone-4"}); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if last := reqs[len(reqs)-1]; !last.DryRun || last.Token != "phone-4" || len(f.Messages()) != 3 {
		t.Errorf("dry run recorded as %+v; %d messages", last, len(f.Messages()))
	}
}

// TestTokenEndpointChecksTheAssertion: a key file whose key is not the fake's is refused at the
// token endpoint, so nothing is sent; a request without the fake's access token is 401.
func TestTokenEndpointChecksTheAssertion(t *testing.T) {
	t.Parallel()
	f, other := start(t), start(t)
	data, err := other.CredentialsJSON()
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]string
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	key["token_uri"] = f.TokenURL() // the right endpoint, the wrong key
	data, _ = json.Marshal(key)
	file := filepath.Join(t.TempDir(), "firebase.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := notify.NewFCM(context.Background(), notify.FCMConfig{CredentialsFile: file, Endpoint: f.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	// The SDK takes a failed token exchange for a network failure and retries it for seconds:
	// the first refusal is enough to know.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, &messaging.Message{Token: "phone"}); err == nil {
		t.Fatal("a send with a key the fake does not know succeeded")
	}
	if f.TokenRefusals() == 0 || f.TokenRequests() != 0 || len(f.Requests()) != 0 {
		t.Errorf("%d token requests refused, %d tokens handed out, %d sends recorded", f.TokenRefusals(), f.TokenRequests(), len(f.Requests()))
	}

	// The right project, a token the fake never issued.
	c, err = notify.NewFCM(context.Background(), notify.FCMConfig{ProjectID: f.Project(), Endpoint: f.Endpoint(),
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "stolen", TokenType: "Bearer"})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), &messaging.Message{Token: "phone"}); err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("a send with a wrong access token: %v", err)
	}
	// Another project: FCM knows no such sender.
	c, err = notify.NewFCM(context.Background(), notify.FCMConfig{ProjectID: "someone-else", Endpoint: f.Endpoint(),
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fakefcm.AccessToken, TokenType: "Bearer"})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), &messaging.Message{Token: "phone"}); err == nil {
		t.Error("a send to another project succeeded")
	}
}

// TestErrorsReachTheSDK: the errors SetRespond makes are the ones the SDK's predicates know, and
// a 503 is retried by the SDK within the send (the second attempt is accepted).
func TestErrorsReachTheSDK(t *testing.T) {
	t.Parallel()
	f := start(t)
	c := newSender(t, f)
	f.SetRespond(func(m fakefcm.Message, attempt int) *fakefcm.Error {
		switch m.Token {
		case "dead":
			return fakefcm.Unregistered()
		case "flaky":
			if attempt == 1 {
				return fakefcm.Unavailable()
			}
		case "busy":
			return fakefcm.QuotaExceeded(30 * time.Second)
		case "broken":
			return fakefcm.Internal()
		case "malformed":
			return fakefcm.InvalidArgument("The registration token is not a valid FCM registration token")
		case "foreign":
			return fakefcm.SenderIDMismatch()
		}
		return nil
	})
	ctx := context.Background()
	for token, is := range map[string]func(error) bool{
		"dead":      messaging.IsUnregistered,
		"busy":      messaging.IsQuotaExceeded,
		"broken":    messaging.IsInternal,
		"malformed": messaging.IsInvalidArgument,
		"foreign":   messaging.IsSenderIDMismatch,
	} {
		_, err := c.Send(ctx, &messaging.Message{Token: token})
		if err == nil || !is(err) {
			t.Errorf("%s: %v", token, err)
		}
	}
	if _, err := c.Send(ctx, &messaging.Message{Token: "flaky", Data: map[string]string{"notification_id": "n1"}}); err != nil {
		t.Fatalf("flaky: %v (the SDK retries a 503)", err)
	}
	var flaky []fakefcm.Message
	for _, m := range f.Requests() {
		if m.Token == "flaky" {
			flaky = append(flaky, m)
		}
	}
	if len(flaky) != 2 || flaky[0].Status != http.StatusServiceUnavailable || flaky[0].Attempt != 1 ||
		flaky[1].Status != http.StatusOK || flaky[1].Attempt != 2 || flaky[1].Name == "" || flaky[0].Name != "" {
		t.Errorf("flaky requests: %+v", flaky)
	}
	if msgs := f.Messages(); len(msgs) != 1 || msgs[0].Token != "flaky" {
		t.Errorf("accepted: %+v", msgs)
	}

	// A message sent again (a delivery retried later) counts as a further attempt.
	if _, err := c.Send(ctx, &messaging.Message{Token: "flaky", Data: map[string]string{"notification_id": "n1"}}); err != nil {
		t.Fatal(err)
	}
	if msgs := f.Messages(); len(msgs) != 2 || msgs[1].Attempt != 3 {
		t.Errorf("accepted: %+v", msgs)
	}

	f.SetRespond(nil)
	if _, err := c.Send(ctx, &messaging.Message{Token: "dead"}); err != nil {
		t.Errorf("with the responder removed: %v", err)
	}
}

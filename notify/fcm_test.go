package notify_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/notify"
)

// TestCredentialsFileSendsThroughTheTokenEndpoint runs the production path of NewFCM: a service
// account's key file, exchanged for an access token at the key's token endpoint (here the fake's,
// as the file names it), then a send to FCM (the fake) with that token.
func TestCredentialsFileSendsThroughTheTokenEndpoint(t *testing.T) {
	t.Parallel()
	fcm := newFakeFCM(t)
	file := filepath.Join(t.TempDir(), "firebase.json")
	if err := fcm.WriteCredentials(file); err != nil {
		t.Fatal(err)
	}

	client, err := notify.NewFCM(context.Background(), notify.FCMConfig{CredentialsFile: file, Endpoint: fcm.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	name, err := client.Send(context.Background(), &messaging.Message{Token: "device-token", Data: map[string]string{"notification_id": "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "projects/"+fcm.Project()+"/messages/") || fcm.TokenRequests() != 1 {
		t.Errorf("sent %q after %d token exchanges", name, fcm.TokenRequests())
	}

	// What is not a service account's key is refused at start, naming no secret.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"type":"authorized_user"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.NewFCM(context.Background(), notify.FCMConfig{CredentialsFile: bad}); err == nil {
		t.Error("a key that is not a service account's was accepted")
	}
}

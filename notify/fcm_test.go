package notify_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/notify"
)

// TestCredentialsFileSendsThroughTheTokenEndpoint runs the production path of NewFCM: a service
// account's key file, exchanged for an access token at the key's token endpoint (here a local
// one, as the file names it), then a send to FCM (the fake) with that token.
func TestCredentialsFileSendsThroughTheTokenEndpoint(t *testing.T) {
	t.Parallel()
	fcm := newFakeFCM(t)
	var exchanges atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"` + fakeAccessToken + `","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(tokens.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "firebase.json")
	data, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": fakeProject, "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "fieldsync@" + fakeProject + ".iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokens.URL + "/token",
	})
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	client, err := notify.NewFCM(context.Background(), notify.FCMConfig{CredentialsFile: file, Endpoint: fcm.srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	name, err := client.Send(context.Background(), &messaging.Message{Token: "device-token", Data: map[string]string{"notification_id": "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "projects/"+fakeProject+"/messages/") || exchanges.Load() != 1 {
		t.Errorf("sent %q after %d token exchanges", name, exchanges.Load())
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

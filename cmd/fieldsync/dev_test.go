package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/demo"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevServesTheDemo runs the README's run command as a newcomer would, and signs in with a
// login it printed.
func TestDevServesTheDemo(t *testing.T) {
	db := testenv.DB(t)
	s3 := testenv.S3(t)
	t.Setenv("DATABASE_URL", db.URL)
	t.Setenv("FIELDSYNC_ADDR", "127.0.0.1:0")
	t.Setenv("FIELDSYNC_JWT_KEY_FILE", filepath.Join(t.TempDir(), "key.pem"))
	t.Setenv("FIELDSYNC_JWT_GENERATE_KEY", "true")
	t.Setenv("FIELDSYNC_S3_ENDPOINT", s3.Endpoint)
	t.Setenv("FIELDSYNC_S3_ACCESS_KEY", s3.AccessKey)
	t.Setenv("FIELDSYNC_S3_SECRET_KEY", s3.SecretKey)
	t.Setenv("FIELDSYNC_S3_BUCKET", s3.Bucket)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"dev"}, strings.NewReader(""), &stdout, &stderr) }()

	urlPattern := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("dev stopped early: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		base = urlPattern.FindString(stdout.String())
	}
	if base == "" {
		t.Fatalf("dev printed no URL:\n%s\n%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), demo.Password) {
		t.Fatalf("dev did not print the demo password:\n%s", stdout.String())
	}

	var res *http.Response
	var err error
	for range 50 { // the listener is open before the handler is attached
		res, err = http.Get(base + "/readyz")
		if err == nil && res.StatusCode == http.StatusOK {
			res.Body.Close()
			break
		}
		if err == nil {
			res.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v\n%s", res, err, stderr.String())
	}

	body, _ := json.Marshal(map[string]any{"login": "hospital", "password": demo.Password,
		"device": map[string]any{"id": uuid.New(), "platform": "android"}})
	res, err = http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tokens struct {
		AccessToken string `json:"access_token"`
		User        struct{ Role string }
	}
	if err := json.NewDecoder(res.Body).Decode(&tokens); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login as a demo user: %d %v", res.StatusCode, err)
	}
	if tokens.AccessToken == "" || tokens.User.Role != "rep" {
		t.Fatalf("tokens: %+v", tokens)
	}

	// The processor has a claim waiting in the review queue: what the console's queue shows.
	body, _ = json.Marshal(map[string]any{"login": "processor", "password": demo.Password,
		"device": map[string]any{"id": uuid.New(), "platform": "web"}})
	res, err = http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var processor struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&processor)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login as the demo processor: %d %v", res.StatusCode, err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/sync/pull?limit=500", nil)
	req.Header.Set("Authorization", "Bearer "+processor.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pull struct {
		Changes []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"changes"`
	}
	err = json.NewDecoder(res.Body).Decode(&pull)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	underReview := 0
	for _, c := range pull.Changes {
		var claim struct{ Status string }
		if c.Type == "claim" && json.Unmarshal(c.Data, &claim) == nil && claim.Status == "under_review" {
			underReview++
		}
	}
	if underReview != 1 {
		t.Fatalf("the demo processor's pull has %d claims under review, want 1: %+v", underReview, pull.Changes)
	}

	// The console is where dev says, with its sign-in page.
	if !strings.Contains(stdout.String(), "Console: "+base+"/console/") {
		t.Fatalf("dev did not print the console's address:\n%s", stdout.String())
	}
	page, err := http.Get(base + "/console/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the console's sign-in page: %d %s", page.StatusCode, page.Header.Get("Content-Type"))
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev did not stop cleanly: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not stop within 15s of Ctrl-C")
	}
}

package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/fieldsync/fieldsync/notify"
	"golang.org/x/oauth2"
)

// fakeProject and fakeAccessToken are what the fake FCM server expects of the SDK.
const (
	fakeProject     = "fieldsync-test"
	fakeAccessToken = "fake-access-token"
)

// fakeFCM is a local HTTP server that speaks FCM's v1 send API
// (POST /v1/projects/{project}/messages:send), as the firebase SDK calls it. It records every
// request and answers each as respond says (200 with a message name by default).
type fakeFCM struct {
	srv *httptest.Server

	mu      gosync.Mutex
	calls   []fcmCall
	ok      int                                   // how many of calls were accepted
	respond func(c fcmCall, attempt int) fcmReply // attempt: 1 for the first request for this token and notification
	delay   time.Duration
	seen    map[string]int
	notify  chan struct{}
}

// fcmCall is one request the fake received.
type fcmCall struct {
	At      time.Time
	Message fcmMessage
	Status  int
}

// fcmMessage is the part of a v1 message the tests look at.
type fcmMessage struct {
	Token        string            `json:"token"`
	Data         map[string]string `json:"data"`
	Notification struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"notification"`
	Android struct {
		CollapseKey  string `json:"collapse_key"`
		Priority     string `json:"priority"`
		TTL          string `json:"ttl"`
		Notification struct {
			Tag string `json:"tag"`
		} `json:"notification"`
	} `json:"android"`
	APNS struct {
		Headers map[string]string `json:"headers"`
		Payload struct {
			Aps struct {
				ThreadID string `json:"thread-id"`
			} `json:"aps"`
		} `json:"payload"`
	} `json:"apns"`
	Webpush struct {
		Headers      map[string]string `json:"headers"`
		Notification struct {
			Tag string `json:"tag"`
		} `json:"notification"`
	} `json:"webpush"`
}

func (m fcmMessage) key() string { return m.Token + " " + m.Data["notification_id"] }

// fcmReply is an answer of the fake.
type fcmReply struct {
	status int
	header map[string]string
	body   string
	// hold, if set, keeps the request waiting until it is closed or the client gives up (which
	// answers nothing, and counts as not accepted).
	hold <-chan struct{}
}

// fcmError is FCM's error body for an HTTP status, a canonical status and an FCM error code.
func fcmError(status int, canonical, fcmCode, message string) fcmReply {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": status, "message": message, "status": canonical,
		"details": []any{map[string]any{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}},
	}})
	return fcmReply{status: status, body: string(body)}
}

func newFakeFCM(t testing.TB) *fakeFCM {
	f := &fakeFCM{seen: map[string]int{}, notify: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFCM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/"+fakeProject+"/messages:send" {
		http.Error(w, `{"error":{"code":404,"message":"no such method","status":"NOT_FOUND"}}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeAccessToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":401,"message":"bad token","status":"UNAUTHENTICATED"}}`)
		return
	}
	var req struct {
		Message fcmMessage `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Message.Token == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":400,"message":"bad request","status":"INVALID_ARGUMENT"}}`)
		return
	}
	call := fcmCall{At: time.Now(), Message: req.Message}
	f.mu.Lock()
	f.seen[call.Message.key()]++
	attempt := f.seen[call.Message.key()]
	respond, delay := f.respond, f.delay
	f.mu.Unlock()

	reply := fcmReply{status: http.StatusOK}
	if respond != nil {
		reply = respond(call, attempt)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if reply.hold != nil {
		select {
		case <-reply.hold:
		case <-r.Context().Done():
			call.Status = -1 // the client gave up: nothing was accepted
			f.record(call)
			return
		}
	}
	call.Status = reply.status
	f.record(call)
	for k, v := range reply.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(reply.status)
	if reply.status == http.StatusOK {
		fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, fakeProject, time.Now().UnixNano())
		return
	}
	fmt.Fprint(w, reply.body)
}

func (f *fakeFCM) record(c fcmCall) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	if c.Status == http.StatusOK {
		f.ok++
	}
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// setRespond changes how the fake answers from now on.
func (f *fakeFCM) setRespond(fn func(c fcmCall, attempt int) fcmReply) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

// reset forgets every request received so far.
func (f *fakeFCM) reset() {
	f.mu.Lock()
	f.calls, f.ok = nil, 0
	f.mu.Unlock()
}

// setDelay makes every answer wait d.
func (f *fakeFCM) setDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// all returns every request received so far.
func (f *fakeFCM) all() []fcmCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fcmCall(nil), f.calls...)
}

// accepted returns the messages the fake accepted (200).
func (f *fakeFCM) accepted() []fcmCall {
	var out []fcmCall
	for _, c := range f.all() {
		if c.Status == http.StatusOK {
			out = append(out, c)
		}
	}
	return out
}

// waitAccepted waits until at least n messages were accepted, failing the test after timeout.
func (f *fakeFCM) waitAccepted(t testing.TB, n int, timeout time.Duration) []fcmCall {
	t.Helper()
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		ok := f.ok
		f.mu.Unlock()
		if ok >= n {
			return f.accepted()
		}
		select {
		case <-f.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("fake FCM accepted %d messages within %s, want %d", ok, timeout, n)
		}
	}
}

// sender returns the real firebase SDK's messaging client, pointed at the fake.
func (f *fakeFCM) sender(t testing.TB) *messaging.Client {
	t.Helper()
	c, err := notify.NewFCM(context.Background(), notify.FCMConfig{
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fakeAccessToken, TokenType: "Bearer"}),
		ProjectID:   fakeProject,
		Endpoint:    f.srv.URL + "/v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Package fakefcm is a local stand-in for Firebase Cloud Messaging's HTTP v1 send API and for
// Google's OAuth 2.0 token endpoint, so that the real firebase SDK (and so the real `fieldsync
// serve` wiring) sends pushes with no network: the end-to-end scenario and the load tool use it.
//
// Point the SDK at it the way production is configured: write the service-account file it makes
// (WriteCredentials; its token_uri names the fake's /token, which checks the SDK's signed
// assertion against the file's key) and use Endpoint as FCM's endpoint (notify.FCMConfig.Endpoint,
// FIELDSYNC_FCM_ENDPOINT). Every send is recorded (Messages, Requests, WaitFor); SetRespond makes
// it answer FCM's errors.
package fakefcm

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
)

// DefaultProject is the Firebase project of a Server made by New.
const DefaultProject = "fieldsync-fake"

// AccessToken is the OAuth 2.0 access token the fake's token endpoint hands out and its send
// endpoint expects. A client that brings its own token source (notify.FCMConfig.TokenSource) uses
// it too.
const AccessToken = "fake"

// Message is one send request the fake received: the parts of an FCM v1 message a test looks at,
// and the whole of it in Raw.
type Message struct {
	// Name is FCM's name for an accepted message (projects/{project}/messages/{id}); empty when
	// the fake answered an error.
	Name string
	// Status is the HTTP status the fake answered (0: the client gave up before an answer, see
	// SetHold).
	Status int
	// Attempt is 1 for the first request for this token and data, 2 for the next, and so on: an
	// SDK retry, or a delivery sent again, counts up.
	Attempt int
	// DryRun is set for a validate_only request: FCM checks such a message and sends nothing.
	DryRun bool
	At     time.Time

	Token     string
	Topic     string
	Condition string
	Title     string // notification.title
	Body      string // notification.body
	Data      map[string]string

	AndroidCollapseKey string
	AndroidPriority    string
	AndroidTTL         string // as FCM's JSON has it, e.g. "259200s"
	AndroidTag         string // android.notification.tag
	APNSHeaders        map[string]string
	APNSThreadID       string // apns.payload.aps.thread-id
	WebpushHeaders     map[string]string
	WebpushTag         string // webpush.notification.tag

	// Raw is the request's "message" object as sent.
	Raw json.RawMessage
}

// wireMessage is an FCM v1 message as JSON, the parts Message keeps.
type wireMessage struct {
	Token        string            `json:"token"`
	Topic        string            `json:"topic"`
	Condition    string            `json:"condition"`
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

// Error is an error answer of FCM: an HTTP status, a canonical status and FCM's own error code,
// in the body shape the firebase SDK reads (messaging.IsUnregistered and the like).
type Error struct {
	HTTPStatus int
	// Status is the canonical error: UNAVAILABLE, INTERNAL, NOT_FOUND, INVALID_ARGUMENT, ...
	Status string
	// FCMCode is the FcmError detail's errorCode: UNREGISTERED, QUOTA_EXCEEDED, ... (may be empty).
	FCMCode string
	Message string
	// RetryAfter, if set, is sent as the Retry-After header (seconds, or an HTTP date).
	RetryAfter string
}

// Unavailable is FCM overloaded (503): the SDK retries it at once, then it is the caller's to retry.
func Unavailable() *Error {
	return &Error{HTTPStatus: http.StatusServiceUnavailable, Status: "UNAVAILABLE", FCMCode: "UNAVAILABLE", Message: "The service is currently unavailable."}
}

// Internal is an FCM server error (500), to be retried.
func Internal() *Error {
	return &Error{HTTPStatus: http.StatusInternalServerError, Status: "INTERNAL", FCMCode: "INTERNAL", Message: "Internal error encountered."}
}

// Unregistered is FCM's answer for a dead token (the app was uninstalled): 404 UNREGISTERED.
func Unregistered() *Error {
	return &Error{HTTPStatus: http.StatusNotFound, Status: "NOT_FOUND", FCMCode: "UNREGISTERED", Message: "Requested entity was not found."}
}

// QuotaExceeded is FCM's rate limit (429), asking to wait retryAfter (none when 0).
func QuotaExceeded(retryAfter time.Duration) *Error {
	e := &Error{HTTPStatus: http.StatusTooManyRequests, Status: "RESOURCE_EXHAUSTED", FCMCode: "QUOTA_EXCEEDED", Message: "Quota exceeded."}
	if retryAfter > 0 {
		e.RetryAfter = fmt.Sprint(int(retryAfter.Round(time.Second) / time.Second))
	}
	return e
}

// InvalidArgument is FCM refusing a malformed message (400), with why.
func InvalidArgument(message string) *Error {
	return &Error{HTTPStatus: http.StatusBadRequest, Status: "INVALID_ARGUMENT", FCMCode: "INVALID_ARGUMENT", Message: message}
}

// SenderIDMismatch is FCM's answer for a token of another Firebase project (403).
func SenderIDMismatch() *Error {
	return &Error{HTTPStatus: http.StatusForbidden, Status: "PERMISSION_DENIED", FCMCode: "SENDER_ID_MISMATCH", Message: "SenderId mismatch"}
}

func (e *Error) body() []byte {
	inner := map[string]any{"code": e.HTTPStatus, "message": e.Message, "status": e.Status}
	if e.FCMCode != "" {
		inner["details"] = []any{map[string]any{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": e.FCMCode}}
	}
	data, _ := json.Marshal(map[string]any{"error": inner})
	return data
}

// RespondFunc decides the fake's answer to a send: nil accepts it, an *Error refuses it. It runs
// on the request's goroutine, after the message was decoded and its Attempt counted.
type RespondFunc func(m Message, attempt int) *Error

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	project string
	email   string
	keyID   string

	keyOnce gosync.Once
	key     *rsa.PrivateKey
	keyErr  error

	nextID atomic.Int64

	mu       gosync.Mutex
	requests []Message
	attempts map[string]int
	respond  RespondFunc
	delay    time.Duration
	hold     <-chan struct{}
	tokens   int
	refusals int
	changed  chan struct{} // closed (and replaced) whenever a request is recorded
}

// New starts a fake on a loopback port for DefaultProject. Close it when done.
func New() *Server {
	return NewForProject(DefaultProject)
}

// NewForProject starts a fake for the Firebase project named project. Close it when done.
func NewForProject(project string) *Server {
	s := &Server{
		project:  project,
		email:    "fieldsync@" + project + ".iam.gserviceaccount.com",
		keyID:    "fakefcm-key-1",
		attempts: map[string]int{},
		changed:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.serveToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.serveSend)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{HTTPStatus: http.StatusNotFound, Status: "NOT_FOUND", Message: "The fake knows no " + r.Method + " " + r.URL.Path})
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// Close shuts the fake down, waiting for the requests in flight.
func (s *Server) Close() { s.srv.Close() }

// URL is the fake's base URL, such as http://127.0.0.1:34567.
func (s *Server) URL() string { return s.srv.URL }

// Endpoint is what to give the SDK as FCM's endpoint (option.WithEndpoint; notify.FCMConfig's
// Endpoint; FIELDSYNC_FCM_ENDPOINT): the fake's URL with FCM's version path, as in
// https://fcm.googleapis.com/v1. The SDK appends /projects/{project}/messages:send.
func (s *Server) Endpoint() string { return s.srv.URL + "/v1" }

// TokenURL is the fake's OAuth 2.0 token endpoint, the token_uri of the credentials it writes.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// Project is the Firebase project the fake serves; a send to another is 404, as on FCM.
func (s *Server) Project() string { return s.project }

// SetRespond makes the fake answer sends as fn says from now on; nil accepts everything.
func (s *Server) SetRespond(fn RespondFunc) {
	s.mu.Lock()
	s.respond = fn
	s.mu.Unlock()
}

// SetDelay makes every send wait d before it is answered (a slow FCM); zero answers at once.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetHold makes every send wait until hold is closed before it is answered (an FCM that does not
// answer); a send whose client gives up first is recorded with Status 0 and answers nothing. Nil
// answers at once.
func (s *Server) SetHold(hold <-chan struct{}) {
	s.mu.Lock()
	s.hold = hold
	s.mu.Unlock()
}

// Reset forgets every request received so far (attempt counts stay).
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

// Messages returns, in the order they arrived, the messages the fake accepted (not dry runs).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return accepted(s.requests)
}

func accepted(all []Message) []Message {
	var out []Message
	for _, m := range all {
		if m.Status == http.StatusOK && !m.DryRun {
			out = append(out, m)
		}
	}
	return out
}

// Requests returns every send request the fake answered, errors and dry runs included, in order.
func (s *Server) Requests() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// TokenRequests returns how many access tokens the token endpoint handed out.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// TokenRefusals returns how many token requests the token endpoint refused (invalid_grant).
func (s *Server) TokenRefusals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

// ErrTimeout is WaitFor's error when no message matched in time.
var ErrTimeout = errors.New("fakefcm: no matching message in time")

// WaitFor returns the first accepted message that match reports true for, waiting up to timeout
// for it to arrive. It returns ErrTimeout (wrapped, with how many messages were seen) when none
// does.
func (s *Server) WaitFor(match func(Message) bool, timeout time.Duration) (Message, error) {
	var found Message
	msgs, err := s.waitAccepted(timeout, func(msgs []Message) bool {
		for _, m := range msgs {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	if err != nil {
		return Message{}, fmt.Errorf("%w: %d accepted within %s, none matched", ErrTimeout, len(msgs), timeout)
	}
	return found, nil
}

// WaitCount waits until at least n messages were accepted and returns them all, or returns
// ErrTimeout (wrapped) after timeout.
func (s *Server) WaitCount(n int, timeout time.Duration) ([]Message, error) {
	msgs, err := s.waitAccepted(timeout, func(msgs []Message) bool { return len(msgs) >= n })
	if err != nil {
		return msgs, fmt.Errorf("%w: %d accepted within %s, want %d", ErrTimeout, len(msgs), timeout, n)
	}
	return msgs, nil
}

// waitAccepted waits until done holds of the accepted messages, and returns them; ErrTimeout
// with the last ones after timeout.
func (s *Server) waitAccepted(timeout time.Duration, done func([]Message) bool) ([]Message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed := accepted(s.requests), s.changed
		s.mu.Unlock()
		if done(msgs) {
			return msgs, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return msgs, ErrTimeout
		}
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	s.requests = append(s.requests, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// attemptKey names "the same message" across retries: the target and the data, which a sender
// rebuilds alike (unlike, say, an expiry computed from the clock).
func attemptKey(m *wireMessage) string {
	keys := make([]string, 0, len(m.Data))
	for k := range m.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(m.Token + "\x00" + m.Topic + "\x00" + m.Condition)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + m.Data[k])
	}
	return b.String()
}

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("project") != s.project {
		writeError(w, &Error{HTTPStatus: http.StatusNotFound, Status: "NOT_FOUND", FCMCode: "SENDER_ID_MISMATCH",
			Message: "The fake serves project " + s.project + " only."})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+AccessToken {
		writeError(w, &Error{HTTPStatus: http.StatusUnauthorized, Status: "UNAUTHENTICATED", FCMCode: "THIRD_PARTY_AUTH_ERROR",
			Message: "Request had invalid authentication credentials."})
		return
	}
	var req struct {
		ValidateOnly bool            `json:"validate_only"`
		Message      json.RawMessage `json:"message"`
	}
	var wm wireMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || len(req.Message) == 0 {
		writeError(w, InvalidArgument("The request body is not a send request."))
		return
	}
	if err := json.Unmarshal(req.Message, &wm); err != nil {
		writeError(w, InvalidArgument("The message is malformed: "+err.Error()))
		return
	}
	if n := btoi(wm.Token != "") + btoi(wm.Topic != "") + btoi(wm.Condition != ""); n != 1 {
		writeError(w, InvalidArgument("A message needs exactly one of token, topic and condition."))
		return
	}
	m := Message{
		DryRun: req.ValidateOnly, At: time.Now(),
		Token: wm.Token, Topic: wm.Topic, Condition: wm.Condition,
		Title: wm.Notification.Title, Body: wm.Notification.Body, Data: wm.Data,
		AndroidCollapseKey: wm.Android.CollapseKey, AndroidPriority: wm.Android.Priority, AndroidTTL: wm.Android.TTL,
		AndroidTag: wm.Android.Notification.Tag, APNSHeaders: wm.APNS.Headers, APNSThreadID: wm.APNS.Payload.Aps.ThreadID,
		WebpushHeaders: wm.Webpush.Headers, WebpushTag: wm.Webpush.Notification.Tag,
		Raw: req.Message,
	}
	key := attemptKey(&wm)
	s.mu.Lock()
	s.attempts[key]++
	m.Attempt = s.attempts[key]
	respond, delay, hold := s.respond, s.delay, s.hold
	s.mu.Unlock()

	var fail *Error
	if respond != nil {
		fail = respond(m, m.Attempt)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			s.record(m) // the client gave up: nothing was answered, nothing accepted
			return
		}
	}
	if fail != nil {
		m.Status = fail.HTTPStatus
		s.record(m)
		writeError(w, fail)
		return
	}
	m.Status = http.StatusOK
	m.Name = fmt.Sprintf("projects/%s/messages/%d", s.project, s.nextID.Add(1))
	if m.DryRun {
		m.Name = "projects/" + s.project + "/messages/fake_message_id"
	}
	s.record(m)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": m.Name})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.HTTPStatus)
	_, _ = w.Write(e.body())
}

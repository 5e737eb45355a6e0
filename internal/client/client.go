// Package client speaks fieldsync's public protocol (docs/protocol.md) from the device's side: sign in
// and refresh, pull and push, resumable uploads. The simulator, the load tool and the end-to-end
// scenario use it, and it is meant to be read by mobile developers as an example of a client.
//
// It keeps no state beyond its tokens: the device's store, outbox and cursor are the caller's
// (see internal/sim).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	gosync "sync"
	"time"

	"github.com/google/uuid"
)

// Client is one device's connection to a fieldsync server.
type Client struct {
	base   string
	http   *http.Client
	device Device

	mu      gosync.Mutex
	access  string
	refresh string
	user    User

	// refreshing serialises refreshes: two requests that find the access token expired at once
	// must not both spend the same refresh token (the second would be taken for a thief's, and
	// the session revoked).
	refreshing gosync.Mutex
}

// Device is the app install the client signs in from.
type Device struct {
	ID         uuid.UUID `json:"id"`
	Platform   string    `json:"platform"`
	Name       string    `json:"name,omitempty"`
	AppVersion string    `json:"app_version,omitempty"`
}

// User is who the client is signed in as.
type User struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	BranchID uuid.UUID `json:"branch_id"`
}

// Error is an error answer of the server, in the protocol's error shape.
type Error struct {
	Status     int
	Code       string
	Message    string
	Details    map[string]any
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Retryable reports whether the same request may succeed later (the network or the server, not
// the request, was at fault). An upload's upload_superseded and offset_mismatch are: another
// request for the upload (often this phone's own, half-dead after a lost connection, which the
// server cannot tell from a live one) held it or moved it on, and Resume, which asks the server's
// offset first, carries on. The official tus clients retry a 409 the same way.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Code == "upload_superseded" || e.Code == "offset_mismatch"
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// New returns a client of the server at baseURL (e.g. "http://127.0.0.1:8080") for device.
// httpClient may be nil for http.DefaultClient.
func New(baseURL string, httpClient *http.Client, device Device) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: baseURL, http: httpClient, device: device}
}

// BaseURL returns the server's address.
func (c *Client) BaseURL() string { return c.base }

// Device returns the device the client signs in from.
func (c *Client) Device() Device { return c.device }

// User returns who the client signed in as.
func (c *Client) User() User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// AccessToken returns the current access token, for requests the client does not wrap.
func (c *Client) AccessToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.access
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	User         User   `json:"user"`
}

func (c *Client) setTokens(t tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access, c.refresh = t.AccessToken, t.RefreshToken
	if t.User.ID != uuid.Nil {
		c.user = t.User
	}
}

// Login signs in on the client's device.
func (c *Client) Login(ctx context.Context, login, password string) error {
	var t tokens
	body := map[string]any{"login": login, "password": password, "device": c.device}
	if err := c.send(ctx, http.MethodPost, "/v1/auth/login", "", body, &t); err != nil {
		return err
	}
	c.setTokens(t)
	return nil
}

// Refresh exchanges the refresh token for a new pair. If the answer is lost, the old refresh
// token is spent and the next refresh revokes the session (by design: docs/protocol.md); a client
// then signs in again.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	refresh := c.refresh
	c.mu.Unlock()
	var t tokens
	if err := c.send(ctx, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}, &t); err != nil {
		return err
	}
	c.setTokens(t)
	return nil
}

// refreshUnless refreshes the tokens unless the access token is no longer stale (another request
// refreshed it meanwhile).
func (c *Client) refreshUnless(ctx context.Context, stale string) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	if c.AccessToken() != stale {
		return nil
	}
	return c.Refresh(ctx)
}

// expired reports whether err is the server's answer to an expired access token.
func expired(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "token_expired"
}

// Do sends an authenticated JSON request and decodes the answer into out (when not nil). An
// expired access token is refreshed once and the request sent again.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	token := c.AccessToken()
	err := c.send(ctx, method, path, token, body, out)
	if expired(err) {
		if err := c.refreshUnless(ctx, token); err != nil {
			return err
		}
		err = c.send(ctx, method, path, c.AccessToken(), body, out)
	}
	return err
}

// doRaw sends the request build makes with the access token, refreshing an expired token once
// like Do, and returns the answer whatever its status, for the caller to read and close. build is
// called again for the second attempt, so that a body is sent whole each time.
func (c *Client) doRaw(ctx context.Context, build func(token string) (*http.Request, error)) (*http.Response, error) {
	token := c.AccessToken()
	for attempt := 0; ; attempt++ {
		req, err := build(token)
		if err != nil {
			return nil, err
		}
		res, err := c.http.Do(req)
		if err != nil || res.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return res, err
		}
		err = decodeError(res)
		res.Body.Close()
		// An answer to HEAD has no body, so no error code: it may be an expired token as well as
		// an ended session. A refresh tells them apart (it fails for an ended session).
		if !expired(err) && req.Method != http.MethodHead {
			return nil, err
		}
		if err := c.refreshUnless(ctx, token); err != nil {
			return nil, err
		}
		token = c.AccessToken()
	}
}

func (c *Client) send(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		return decodeError(res)
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(res *http.Response) error {
	e := &Error{Status: res.StatusCode}
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
	}
	if e.Code == "" {
		e.Code, e.Message = "http_"+strconv.Itoa(res.StatusCode), string(data)
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// Change is one entry of a pull.
type Change struct {
	Type    string          `json:"type"`
	ID      uuid.UUID       `json:"id"`
	Op      string          `json:"op"`
	Version int64           `json:"version,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Page is one pull's answer.
type Page struct {
	Changes []Change `json:"changes"`
	Cursor  string   `json:"cursor"`
	HasMore bool     `json:"has_more"`
}

// Pull asks for the changes since cursor ("" for a snapshot). wait > 0 long-polls.
func (c *Client) Pull(ctx context.Context, cursor string, limit int, wait time.Duration) (*Page, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	}
	var p Page
	if err := c.Do(ctx, http.MethodGet, "/v1/sync/pull?"+q.Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Mutation is one queued write.
type Mutation struct {
	ID          uuid.UUID      `json:"id"`
	Type        string         `json:"type"`
	Op          string         `json:"op"`
	EntityID    uuid.UUID      `json:"entity_id"`
	BaseVersion int64          `json:"base_version,omitempty"`
	Fields      map[string]any `json:"fields,omitempty"`
	ClientTime  time.Time      `json:"client_time,omitzero"`
}

// Result is the outcome of one mutation.
type Result struct {
	ID      uuid.UUID       `json:"id"`
	Status  string          `json:"status"`
	Version int64           `json:"version,omitempty"`
	Entity  json.RawMessage `json:"entity,omitempty"`
	// Gone says why a rejected result carries no entity: deleted, out_of_scope or not_found.
	Gone      string            `json:"gone,omitempty"`
	Conflicts []json.RawMessage `json:"conflicts,omitempty"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Push sends queued mutations; the results come in the same order. Sending the same mutations
// again (after a lost answer) is safe: they are applied once.
func (c *Client) Push(ctx context.Context, mutations []Mutation) ([]Result, error) {
	var out struct {
		Results []Result `json:"results"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/sync/push", map[string]any{"mutations": mutations}, &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/labstack/echo/v4"
)

// eventRoutes registers the live event stream for screens.
func (s *Server) eventRoutes(auth echo.MiddlewareFunc) {
	s.echo.GET("/v1/events", s.handleEvents, auth)
}

// errStreamEnded stops a stream whose caller's session ended.
var errStreamEnded = errors.New("stream ended")

// sseRetryMillis is how long EventSource clients wait before reconnecting.
const sseRetryMillis = 2000

// streamWriteTimeout is how long one event may take to reach a client.
const streamWriteTimeout = 30 * time.Second

// handleEvents streams the caller's notifications and "pull now" signals as Server-Sent Events
// (notify.Service.Stream). Nothing is written before the stream starts, so a malformed
// Last-Event-ID is still a proper error response. At every heartbeat the caller's access token
// is checked again: when it expires or its session is revoked, the stream says so in an "error"
// event and ends, and the client reconnects with a fresh token and its Last-Event-ID.
func (s *Server) handleEvents(c echo.Context) error {
	if s.notify == nil {
		return fieldsync.Errorf(fieldsync.EUNAVAILABLE, "unavailable", "The event stream is not available on this server.")
	}
	req, res := c.Request(), c.Response()
	// A stream never ends by itself: it ends when the server shuts down, so that the shutdown
	// does not wait for it. The client reconnects, to another replica, with its Last-Event-ID.
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	go func() {
		select {
		case <-shuttingDown(req):
			cancel()
		case <-ctx.Done():
		}
	}()
	lastEventID := req.Header.Get("Last-Event-ID")
	if lastEventID == "" {
		// For clients that cannot set headers on their first connection.
		lastEventID = c.QueryParam("last_event_id")
	}
	_, token, _ := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")

	// A client that stops reading cannot hold the stream forever.
	rc := http.NewResponseController(res.Writer)
	started := false
	var buf bytes.Buffer
	send := func(ev notify.Event) error {
		buf.Reset()
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if !started {
			h := res.Header()
			h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
			h.Set(echo.HeaderCacheControl, "no-store")
			h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
			res.WriteHeader(http.StatusOK)
			started = true
			buf.WriteString("retry: " + strconv.Itoa(sseRetryMillis) + "\n\n")
		}
		if ev.Type == notify.EventHeartbeat {
			if _, err := s.accounts.Authenticate(ctx, token); err != nil {
				if ctx.Err() != nil {
					return err
				}
				fe := domainError(err)
				data, _ := json.Marshal(map[string]any{"error": map[string]any{"code": fe.Code, "message": fe.Message}})
				writeSSE(&buf, "", "error", data)
				_, _ = res.Write(buf.Bytes())
				res.Flush()
				return errStreamEnded
			}
			buf.WriteString(": heartbeat\n\n")
		} else {
			writeSSE(&buf, ev.ID, ev.Type, ev.Data)
		}
		if _, err := res.Write(buf.Bytes()); err != nil {
			return err
		}
		res.Flush()
		return nil
	}
	err := s.notify.Stream(ctx, identity(c), lastEventID, send)
	if !started {
		return err
	}
	if err != nil && !errors.Is(err, errStreamEnded) && ctx.Err() == nil {
		// The status is sent; all that is left is to log why the stream ended.
		s.log.WarnContext(ctx, "event stream ended", "err", err)
	}
	return nil
}

// writeSSE appends one event in the text/event-stream format. Data is JSON, so it has no line
// breaks once compacted.
func writeSSE(buf *bytes.Buffer, id, event string, data []byte) {
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("event: " + event + "\ndata: ")
	if err := json.Compact(buf, data); err != nil {
		buf.WriteString("{}")
	}
	buf.WriteString("\n\n")
}

// shutdowns holds, for each *http.Server that serves streams, a channel closed when it starts
// shutting down.
var shutdowns gosync.Map

// shuttingDown returns a channel closed when the server serving r starts shutting down (nil, which
// never closes, outside an http.Server).
func shuttingDown(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil
	}
	ch := make(chan struct{})
	actual, loaded := shutdowns.LoadOrStore(srv, ch)
	if !loaded {
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return actual.(chan struct{})
}

package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/labstack/echo/v4"
)

// queryInt reads an optional whole-number query parameter within [lo, hi].
func queryInt(c echo.Context, name string, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fieldsync.InvalidField(name, "%s must be a whole number from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// handlePull streams one page of the caller's changes. The page is written as the records come
// from the database, so a large snapshot does not grow the server's memory; nothing is written
// until the first record (or the end), so a failure before that is still a proper error response.
func (s *Server) handlePull(c echo.Context) error {
	// Set before anything can fail, so that an error answer is not cached either.
	setNoStore(c)
	limit, err := queryInt(c, "limit", 1, 1<<20)
	if err != nil {
		return err
	}
	wait, err := queryInt(c, "wait", 0, 3600)
	if err != nil {
		return err
	}
	req := sync.PullRequest{Cursor: c.QueryParam("cursor"), Limit: limit, Wait: time.Duration(wait) * time.Second}
	if wait > 0 {
		// The session was checked when the pull came in; one that ended while it waited (a logout,
		// a revoked device) gets the answer authenticate gives, not what committed after it ended.
		id := identity(c)
		req.RecheckFunc = func(ctx context.Context) error { return s.accounts.Recheck(ctx, id) }
	}
	res := c.Response()
	started, count := false, 0
	var buf []byte
	start := func() error {
		res.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		res.WriteHeader(http.StatusOK)
		started = true
		_, err := res.Write([]byte(`{"changes":[`))
		return err
	}
	emit := func(ch sync.Change) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		buf = buf[:0]
		if count > 0 {
			buf = append(buf, ',')
		}
		buf = appendChange(buf, ch)
		count++
		_, err := res.Write(buf)
		return err
	}
	page, err := s.engine.PullPage(c.Request().Context(), identity(c), req, emit)
	if err != nil {
		// Once records are out, the status is sent; the client sees a truncated body (invalid
		// JSON) and pulls again from its last complete cursor.
		return err
	}
	if !started {
		if err := start(); err != nil {
			return err
		}
	}
	tail, err := json.Marshal(struct {
		Cursor    string `json:"cursor"`
		HasMore   bool   `json:"has_more"`
		Remaining *int64 `json:"remaining,omitempty"`
	}{page.Cursor, page.HasMore, page.Remaining})
	if err != nil {
		return err
	}
	_, err = res.Write(append([]byte("],"), tail[1:]...))
	s.recordSync(c, account.ContactPull, sync.CursorVersion(page.Cursor, identity(c)))
	return err
}

type pushRequest struct {
	Mutations []sync.Mutation `json:"mutations"`
}

func (s *Server) handlePush(c echo.Context) error {
	var req pushRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Mutations == nil {
		return fieldsync.InvalidField("mutations", "mutations must be a list.")
	}
	results, err := s.engine.Push(c.Request().Context(), identity(c), req.Mutations)
	if err != nil {
		return err
	}
	s.recordSync(c, account.ContactPush, 0)
	return c.JSON(http.StatusOK, map[string]any{"results": results})
}

func (s *Server) handleReportClaim(c echo.Context) error {
	var req sync.ClaimReport
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	out, err := s.engine.ReportClaim(c.Request().Context(), identity(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// appendChange appends the JSON of one pull entry. The record's data is the database's JSON,
// written as it comes: json.Marshal would validate and compact every record again, which was the
// largest part of a pull's CPU time. The other members are ids and fixed words.
func appendChange(buf []byte, ch sync.Change) []byte {
	buf = append(buf, `{"type":"`...)
	buf = append(buf, ch.Type...)
	buf = append(buf, `","id":"`...)
	buf = append(buf, ch.ID.String()...)
	buf = append(buf, `","op":"`...)
	buf = append(buf, ch.Op...)
	buf = append(buf, '"')
	if ch.Version != 0 {
		buf = append(buf, `,"version":`...)
		buf = strconv.AppendInt(buf, ch.Version, 10)
	}
	if ch.Reason != "" {
		buf = append(buf, `,"reason":"`...)
		buf = append(buf, ch.Reason...)
		buf = append(buf, '"')
	}
	if len(ch.Data) > 0 {
		buf = append(buf, `,"data":`...)
		buf = append(buf, ch.Data...)
	}
	return append(buf, '}')
}

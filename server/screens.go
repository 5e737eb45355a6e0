package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// screenRoutes registers the processors' and managers' screens: lists, details and commands.
// Reads are limited to the caller's branch and scope by the engine; commands are the engine's
// methods (AssignTask, DecideClaim, ...), mutations applied through the same write as a push.
func (s *Server) screenRoutes(auth echo.MiddlewareFunc) {
	e := s.echo
	screens := requireRole(fieldsync.RoleProcessor, fieldsync.RoleManager)
	managers := requireRole(fieldsync.RoleManager)
	processors := requireRole(fieldsync.RoleProcessor)

	e.GET("/v1/review-queue", s.handleReviewQueue, noStore, auth, screens)
	e.GET("/v1/claims", s.handleListClaims, noStore, auth, screens)
	e.GET("/v1/claims/:id", s.handleFindClaim, noStore, auth, screens)
	e.GET("/v1/tasks", s.handleListTasks, noStore, auth, screens)
	e.GET("/v1/conflicts", s.handleListConflicts, noStore, auth, managers)
	e.GET("/v1/branch/figures", s.handleBranchFigures, noStore, auth, screens)

	e.POST("/v1/tasks/:id/assign", s.handleAssignTask, auth, managers)
	e.POST("/v1/tasks/:id/cancel", s.handleCancelTask, auth, managers)
	e.POST("/v1/tasks/:id/reopen", s.handleReopenTask, auth, managers)
	e.POST("/v1/documents/:id/review", s.handleReviewDocument, auth, processors)
	e.POST("/v1/claims/:id/decision", s.handleDecideClaim, auth, processors)
	e.POST("/v1/claims/:id/payment", s.handleRecordPayment, auth, processors)
}

// checkQueryParams refuses a query parameter the endpoint does not know, as bodies refuse unknown
// fields: a misspelt filter would otherwise silently return everything.
func checkQueryParams(c echo.Context, known ...string) error {
	for name := range c.QueryParams() {
		if !slices.Contains(known, name) {
			return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "unknown_field",
				Message: "The query parameter " + name + " is not known here.", Details: map[string]any{"field": name}}
		}
	}
	return nil
}

// queryList reads a repeatable parameter whose values may also be comma-separated:
// ?status=a&status=b,c gives [a b c].
func queryList(c echo.Context, name string) []string {
	var out []string
	for _, v := range c.QueryParams()[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// queryUUID reads an optional UUID parameter; uuid.Nil when absent.
func queryUUID(c echo.Context, name string) (uuid.UUID, error) {
	v := c.QueryParam(name)
	if v == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(v)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, fieldsync.InvalidField(name, "%s must be a UUID.", name)
	}
	return id, nil
}

// queryTime reads an optional time: RFC 3339, or a date (YYYY-MM-DD, UTC). A date that ends a
// period (endOfDay) includes the whole day.
func queryTime(c echo.Context, name string, endOfDay bool) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.Year() >= 2000 && t.Year() <= 2200 {
		return t.UTC(), nil
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil && d.Year() >= 2000 && d.Year() <= 2200 {
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	return time.Time{}, fieldsync.InvalidField(name, "%s must be an RFC 3339 time or a date (YYYY-MM-DD), from year 2000 to 2200.", name)
}

func (s *Server) handleReviewQueue(c echo.Context) error { return pagedList(c, s.engine.ReviewQueue) }

// pagedList answers a keyset-paged list that takes nothing but limit and after (the review queue,
// the conflict log), read by list.
func pagedList[P any](c echo.Context, list func(context.Context, *fieldsync.Identity, int, string) (P, error)) error {
	if err := checkQueryParams(c, "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, sync.MaxListLimit)
	if err != nil {
		return err
	}
	page, err := list(c.Request().Context(), identity(c), limit, c.QueryParam("after"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) handleListClaims(c echo.Context) error {
	if err := checkQueryParams(c, "status", "q", "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, sync.MaxListLimit)
	if err != nil {
		return err
	}
	page, err := s.engine.ListClaims(c.Request().Context(), identity(c), sync.ClaimFilter{
		Statuses: queryList(c, "status"), Search: c.QueryParam("q"), Limit: limit, After: c.QueryParam("after")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) handleFindClaim(c echo.Context) error {
	if err := checkQueryParams(c); err != nil {
		return err
	}
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	claim, err := s.engine.FindClaim(c.Request().Context(), identity(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, claim)
}

func (s *Server) handleListTasks(c echo.Context) error {
	if err := checkQueryParams(c, "status", "assignee_id", "claim_id", "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, sync.MaxListLimit)
	if err != nil {
		return err
	}
	assignee, err := queryUUID(c, "assignee_id")
	if err != nil {
		return err
	}
	claim, err := queryUUID(c, "claim_id")
	if err != nil {
		return err
	}
	page, err := s.engine.ListTasks(c.Request().Context(), identity(c), sync.TaskFilter{
		Statuses: queryList(c, "status"), AssigneeID: assignee, ClaimID: claim, Limit: limit, After: c.QueryParam("after")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) handleListConflicts(c echo.Context) error {
	return pagedList(c, s.engine.ListConflicts)
}

func (s *Server) handleBranchFigures(c echo.Context) error {
	if err := checkQueryParams(c, "from", "to"); err != nil {
		return err
	}
	from, err := queryTime(c, "from", false)
	if err != nil {
		return err
	}
	to, err := queryTime(c, "to", true)
	if err != nil {
		return err
	}
	figures, err := s.engine.Figures(c.Request().Context(), identity(c), sync.Period{From: from, To: to})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, figures)
}

// decodeOptionalJSON is decodeJSON for commands whose body may be left out: an empty body is {}.
func decodeOptionalJSON(c echo.Context, v any) error {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return jsonError(err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeJSONBytes(data, v)
}

// command answers a screen's command on the record named by the path's id: the body, decoded into
// a Req (decode is decodeJSON, or decodeOptionalJSON where every field may be left out), is handed
// with the id to run, an engine method: the engine checks and applies it like a push.
func command[Req any](c echo.Context, decode func(echo.Context, any) error,
	run func(ctx context.Context, who *fieldsync.Identity, record uuid.UUID, req *Req) (sync.Result, error)) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req Req
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := run(c.Request().Context(), identity(c), id, &req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

type assignRequest struct {
	// AssigneeID is passed to the engine as sent, so it is checked exactly as in a push.
	AssigneeID  json.RawMessage `json:"assignee_id"`
	BaseVersion *int64          `json:"base_version"`
}

// handleAssignTask assigns a task, or reassigns it to another rep of the branch.
func (s *Server) handleAssignTask(c echo.Context) error {
	return command(c, decodeJSON, func(ctx context.Context, who *fieldsync.Identity, task uuid.UUID, r *assignRequest) (sync.Result, error) {
		return s.engine.AssignTask(ctx, who, task, r.AssigneeID, r.BaseVersion)
	})
}

type baseRequest struct {
	BaseVersion *int64 `json:"base_version"`
}

func (s *Server) handleCancelTask(c echo.Context) error {
	return command(c, decodeOptionalJSON, func(ctx context.Context, who *fieldsync.Identity, task uuid.UUID, r *baseRequest) (sync.Result, error) {
		return s.engine.CancelTask(ctx, who, task, r.BaseVersion)
	})
}

type reopenRequest struct {
	AssigneeID  json.RawMessage `json:"assignee_id"`
	BaseVersion *int64          `json:"base_version"`
	// Reason says why the task is reopened; it is recorded with who reopened it, as a note on the task.
	Reason string `json:"reason"`
}

// handleReopenTask reopens a finished task: assigned to assignee_id when given, else to whoever
// held it, else open. An assignee_id of null reopens it open, for nobody.
func (s *Server) handleReopenTask(c echo.Context) error {
	return command(c, decodeOptionalJSON, func(ctx context.Context, who *fieldsync.Identity, task uuid.UUID, r *reopenRequest) (sync.Result, error) {
		return s.engine.ReopenTask(ctx, who, task, r.AssigneeID, r.Reason, r.BaseVersion)
	})
}

// decisionRequest is a processor's decision on a document or a claim. Note is passed to the
// engine as sent, so it is checked exactly as in a push.
type decisionRequest struct {
	Decision    string          `json:"decision"`
	Note        json.RawMessage `json:"note"`
	BaseVersion *int64          `json:"base_version"`
}

func (r *decisionRequest) decision() sync.Decision {
	return sync.Decision{Decision: r.Decision, Note: r.Note}
}

// handleReviewDocument approves or rejects an uploaded document. A rejection needs a note (the
// rep is told why); a document already decided keeps its first decision (a conflict).
func (s *Server) handleReviewDocument(c echo.Context) error {
	return command(c, decodeJSON, func(ctx context.Context, who *fieldsync.Identity, doc uuid.UUID, r *decisionRequest) (sync.Result, error) {
		return s.engine.ReviewDocument(ctx, who, doc, r.decision(), r.BaseVersion)
	})
}

// handleDecideClaim approves or rejects a claim, by the claim's state machine.
func (s *Server) handleDecideClaim(c echo.Context) error {
	return command(c, decodeJSON, func(ctx context.Context, who *fieldsync.Identity, claim uuid.UUID, r *decisionRequest) (sync.Result, error) {
		return s.engine.DecideClaim(ctx, who, claim, r.decision(), r.BaseVersion)
	})
}

type paymentRequest struct {
	AmountPaid  json.RawMessage `json:"amount_paid"`
	BaseVersion *int64          `json:"base_version"`
}

// handleRecordPayment records the payment of an approved claim: it becomes paid, with the amount
// and the time.
func (s *Server) handleRecordPayment(c echo.Context) error {
	return command(c, decodeJSON, func(ctx context.Context, who *fieldsync.Identity, claim uuid.UUID, r *paymentRequest) (sync.Result, error) {
		return s.engine.RecordPayment(ctx, who, claim, r.AmountPaid, r.BaseVersion)
	})
}

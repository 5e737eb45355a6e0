package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// Reads are limited to the caller's branch and scope by the engine; commands are mutations applied
// by engine.Command, the same path as a push.
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

func (s *Server) handleReviewQueue(c echo.Context) error {
	if err := checkQueryParams(c, "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, sync.MaxListLimit)
	if err != nil {
		return err
	}
	page, err := s.engine.ReviewQueue(c.Request().Context(), identity(c), limit, c.QueryParam("after"))
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
	if err := checkQueryParams(c, "limit", "after"); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, sync.MaxListLimit)
	if err != nil {
		return err
	}
	page, err := s.engine.ListConflicts(c.Request().Context(), identity(c), limit, c.QueryParam("after"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
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
	return decodeJSONFrom(bytes.NewReader(data), v)
}

// command applies one mutation of a screen through the engine, the same path as a push, and
// writes its result. A rejection is the error shape with the engine's code; a record that does not
// exist is a 404.
func (s *Server) command(c echo.Context, typ string, entityID uuid.UUID, base *int64, fields map[string]any) error {
	return s.commandWith(c, typ, entityID, base, fields, func(ctx context.Context, m sync.Mutation) (sync.Result, error) {
		return s.engine.Command(ctx, identity(c), m)
	})
}

// commandWith is command, with apply (the engine's Command, or a command of its own) applying the
// mutation.
func (s *Server) commandWith(c echo.Context, typ string, entityID uuid.UUID, base *int64, fields map[string]any,
	apply func(context.Context, sync.Mutation) (sync.Result, error)) error {
	raw := make(map[string]json.RawMessage, len(fields))
	for name, v := range fields {
		if r, ok := v.(json.RawMessage); ok {
			raw[name] = r
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		raw[name] = data
	}
	if base != nil && *base < 1 {
		return fieldsync.InvalidField("base_version", "base_version must be a version of the record (1 or more).")
	}
	res, err := apply(c.Request().Context(), sync.Mutation{Type: typ, Op: "update", EntityID: entityID, BaseVersion: base, Fields: raw})
	if err != nil {
		var fe *fieldsync.Error
		if errors.As(err, &fe) && fe.Code == "not_found" && (fe.Details["field"] == "id" || fe.Details["field"] == "entity_id") {
			return &fieldsync.Error{Kind: fieldsync.ENOTFOUND, Code: "not_found", Message: fe.Message, Details: map[string]any{"field": "id"}}
		}
		return err
	}
	return c.JSON(http.StatusOK, res)
}

type assignRequest struct {
	// AssigneeID is passed to the engine as sent, so it is checked exactly as in a push.
	AssigneeID  json.RawMessage `json:"assignee_id"`
	BaseVersion *int64          `json:"base_version"`
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// handleAssignTask assigns a task, or reassigns it to another rep of the branch.
func (s *Server) handleAssignTask(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req assignRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if isNull(req.AssigneeID) {
		return fieldsync.InvalidField("assignee_id", "assignee_id must be the id of a rep of the branch.")
	}
	return s.command(c, sync.TypeTask, id, req.BaseVersion, map[string]any{"assignee_id": req.AssigneeID})
}

type baseRequest struct {
	BaseVersion *int64 `json:"base_version"`
}

func (s *Server) handleCancelTask(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req baseRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	return s.command(c, sync.TypeTask, id, req.BaseVersion, map[string]any{"status": sync.TaskCancelled})
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
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req reopenRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	fields := map[string]any{"status": sync.TaskOpen}
	if len(req.AssigneeID) > 0 {
		fields["assignee_id"] = req.AssigneeID
	}
	return s.commandWith(c, sync.TypeTask, id, req.BaseVersion, fields, func(ctx context.Context, m sync.Mutation) (sync.Result, error) {
		return s.engine.ReopenTask(ctx, identity(c), m, req.Reason)
	})
}

// decisionRequest is a processor's decision on a document or a claim. Note is passed to the
// engine as sent, so it is checked exactly as in a push.
type decisionRequest struct {
	Decision    string          `json:"decision"`
	Note        json.RawMessage `json:"note"`
	BaseVersion *int64          `json:"base_version"`
}

// fields are the mutation's fields for the decision, which must name one of the two statuses of
// the record's state machine that decide it (approve, reject).
func (r *decisionRequest) fields(noteField string, approve, reject string) (map[string]any, error) {
	if r.Decision != approve && r.Decision != reject {
		return nil, fieldsync.InvalidField("decision", "decision must be %s or %s.", approve, reject)
	}
	fields := map[string]any{"status": r.Decision}
	if !isNull(r.Note) {
		fields[noteField] = r.Note
	}
	return fields, nil
}

// handleReviewDocument approves or rejects an uploaded document. A rejection needs a note (the
// rep is told why); a document already decided keeps its first decision (a conflict).
func (s *Server) handleReviewDocument(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req decisionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	fields, err := req.fields("review_note", string(sync.DocumentApproved), string(sync.DocumentRejected))
	if err != nil {
		return err
	}
	return s.command(c, sync.TypeDocument, id, req.BaseVersion, fields)
}

// handleDecideClaim approves or rejects a claim, by the claim's state machine.
func (s *Server) handleDecideClaim(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req decisionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	fields, err := req.fields("decision_note", string(sync.ClaimApproved), string(sync.ClaimRejected))
	if err != nil {
		return err
	}
	return s.command(c, sync.TypeClaim, id, req.BaseVersion, fields)
}

type paymentRequest struct {
	AmountPaid  json.RawMessage `json:"amount_paid"`
	BaseVersion *int64          `json:"base_version"`
}

// handleRecordPayment records the payment of an approved claim: it becomes paid, with the amount
// and the time.
func (s *Server) handleRecordPayment(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req paymentRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if isNull(req.AmountPaid) {
		return fieldsync.InvalidField("amount_paid", "amount_paid is required: the amount paid, in cents.")
	}
	return s.command(c, sync.TypeClaim, id, req.BaseVersion, map[string]any{"status": sync.ClaimPaid, "amount_paid": req.AmountPaid})
}

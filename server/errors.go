package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/media"
	"github.com/labstack/echo/v4"
)

// statusByKind maps each kind of domain error to its HTTP status: the one place this happens.
var statusByKind = map[string]int{
	fieldsync.EINVALID:      http.StatusBadRequest,
	fieldsync.EUNAUTHORIZED: http.StatusUnauthorized,
	fieldsync.EFORBIDDEN:    http.StatusForbidden,
	fieldsync.ENOTFOUND:     http.StatusNotFound,
	fieldsync.ECONFLICT:     http.StatusConflict,
	fieldsync.EGONE:         http.StatusGone,
	fieldsync.ETIMEOUT:      http.StatusRequestTimeout,
	fieldsync.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	fieldsync.ERATELIMIT:    http.StatusTooManyRequests,
	fieldsync.EUNAVAILABLE:  http.StatusServiceUnavailable,
	fieldsync.EINTERNAL:     http.StatusInternalServerError,
	fieldsync.EMETHOD:       http.StatusMethodNotAllowed,
	fieldsync.EPRECONDITION: http.StatusPreconditionFailed,
	fieldsync.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	fieldsync.ECHECKSUM:     statusChecksumMismatch,
}

// statusChecksumMismatch is "460 Checksum Mismatch" of tus's checksum extension.
const statusChecksumMismatch = 460

// errorBody is the protocol's error shape: {"error": {"code", "message", "details"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// fromEchoError translates the errors echo itself produces (router, body limit) into domain errors.
func fromEchoError(he *echo.HTTPError) *fieldsync.Error {
	switch he.Code {
	case http.StatusNotFound:
		return fieldsync.Errorf(fieldsync.ENOTFOUND, "not_found", "There is no such endpoint.")
	case http.StatusMethodNotAllowed:
		return &fieldsync.Error{Kind: fieldsync.EMETHOD, Code: "method_not_allowed", Message: "This endpoint does not take that method."}
	case http.StatusRequestEntityTooLarge:
		return fieldsync.Errorf(fieldsync.ETOOLARGE, "payload_too_large", "The request body is larger than the server accepts.")
	case http.StatusUnsupportedMediaType:
		return &fieldsync.Error{Kind: fieldsync.EMEDIATYPE, Code: "unsupported_media_type", Message: "The request body must be JSON."}
	}
	if he.Code >= 400 && he.Code < 500 {
		return fieldsync.Errorf(fieldsync.EINVALID, "bad_request", "The request could not be understood.")
	}
	return nil
}

// domainError returns err as the *fieldsync.Error a client is shown: a domain error as it is,
// echo's own errors translated, a database's failure (wrapped anywhere) by fieldsync.FromDatabase
// (an unreachable database is 503 database_unavailable), anything else an opaque internal error.
func domainError(err error) *fieldsync.Error {
	var fe *fieldsync.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &he) && fromEchoError(he) != nil:
		return fromEchoError(he)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return fieldsync.Errorf(fieldsync.EUNAVAILABLE, "request_cancelled", "The request was cancelled.")
	}
	if fe := fieldsync.FromDatabase(err); fe != nil {
		return fe
	}
	return fieldsync.Errorf(fieldsync.EINTERNAL, "internal", "Something went wrong on the server; it has been logged.")
}

// handleError writes err in the protocol's error shape. Only server faults (5xx) are logged here;
// a client's mistake is in the request log already.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	fe := domainError(err)
	status, ok := statusByKind[fe.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	// An upload turned away for want of a part buffer is load, not a fault: logging each would add to it.
	if status >= 500 && !errors.Is(err, context.Canceled) && !errors.Is(err, media.ErrServerBusy) {
		s.log.ErrorContext(c.Request().Context(), "request failed", "err", err,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if fe.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(fe.RetryAfter.Seconds()))))
	}
	body := errorBody{Error: errorDetail{Code: fe.Code, Message: fe.Message, Details: fe.Details}}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		s.log.WarnContext(c.Request().Context(), "write error response", "err", err)
	}
}

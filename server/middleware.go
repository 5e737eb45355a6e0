package server

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/bodydeadline"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// validRequestID is what an incoming X-Request-Id must look like to be kept (a load balancer's or
// a client's); anything else is replaced, so logs never carry a client's arbitrary text.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID gives every request an id, echoed in X-Request-Id and in every log line about it.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// observeRequests writes one structured log line per request, with who made it once they are
// known, and counts it in the metrics.
func (s *Server) observeRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Write the error now so the status logged is the one sent.
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		s.metrics.observe(req.Method, routeLabel(c), res.Status, time.Since(start))
		attrs := []slog.Attr{
			slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
			slog.String("method", req.Method),
			slog.String("route", routeLabel(c)),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.RealIP()),
		}
		if id := fieldsync.IdentityFromContext(req.Context()); id != nil {
			attrs = append(attrs, slog.String("user_id", id.UserID.String()), slog.String("device_id", id.DeviceID.String()))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error_code", domainError(err).Code))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

// routeLabel is the route pattern (not the raw path, which would carry ids) for logs and metrics.
func routeLabel(c echo.Context) string {
	if p := c.Path(); p != "" && p != "/*" {
		return p
	}
	return "unmatched"
}

// authenticate requires a valid access token of a live session, and puts the caller's identity
// on the request's context.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "Send Authorization: Bearer <access token>.")
		}
		id, err := s.accounts.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		c.SetRequest(c.Request().WithContext(fieldsync.NewContextWithIdentity(c.Request().Context(), id)))
		return next(c)
	}
}

// requireRole lets through only callers with one of roles.
func requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := fieldsync.IdentityFromContext(c.Request().Context())
			for _, r := range roles {
				if id != nil && id.Role == r {
					return next(c)
				}
			}
			return fieldsync.Errorf(fieldsync.EFORBIDDEN, "forbidden", "Your role may not do this.")
		}
	}
}

// identity returns the caller of an authenticated route.
func identity(c echo.Context) *fieldsync.Identity {
	return fieldsync.IdentityFromContext(c.Request().Context())
}

// boundBodyReads puts a read deadline on the connection while a request body (other than an
// upload's, which bounds its own) is read: each read must come within BodyIdleTimeout of the
// last, and the whole body within BodyReadTimeout. The deadline is lifted once the body is read
// whole, so long-polls and event streams after it are not cut. A body that misses its deadline
// fails its read with 408 request_timeout, and the connection is closed.
func (s *Server) boundBodyReads(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if (s.cfg.BodyIdleTimeout <= 0 && s.cfg.BodyReadTimeout <= 0) || r.Body == nil || r.Body == http.NoBody ||
			isUploadPath(r.URL.Path) {
			return next(c)
		}
		body := bodydeadline.New(c.Response(), r.Body, s.cfg.BodyIdleTimeout, s.cfg.BodyReadTimeout, errRequestTimeout)
		r.Body = body
		defer body.Done()
		return next(c)
	}
}

// errRequestTimeout answers a JSON body that stopped arriving in time.
func errRequestTimeout() error {
	return &fieldsync.Error{Kind: fieldsync.ETIMEOUT, Code: "request_timeout",
		Message: "The request body stopped arriving in time; send the request again."}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Config are the HTTP server's settings.
type Config struct {
	Addr string
	// MaxBodyBytes bounds every request body (a push is at most 5 MB by the protocol).
	MaxBodyBytes int64
	// CORSOrigins are the web console's origins allowed to call the API from a browser; empty
	// disables CORS.
	CORSOrigins []string
	// TrustedProxies are the networks of load balancers whose X-Forwarded-For is believed when
	// working out a caller's address (for the per-address login limit). Empty: the peer address.
	TrustedProxies []*net.IPNet
	// ShutdownTimeout is how long in-flight requests get to finish on shutdown.
	ShutdownTimeout time.Duration
	// BodyIdleTimeout is how long a request body may pause between two reads before the request
	// is cut (408 request_timeout, connection closed): a client trickling a body a byte at a time
	// would otherwise hold a connection and a handler forever. Zero: no bound.
	BodyIdleTimeout time.Duration
	// BodyReadTimeout bounds the whole read of a JSON body, however steadily it trickles. Zero: no
	// bound. Upload bodies are bounded by BodyIdleTimeout alone (they may be long on purpose).
	BodyReadTimeout time.Duration
}

// ReadyCheck reports whether a dependency is reachable; /readyz runs each with a short deadline.
type ReadyCheck func(ctx context.Context) error

// Deps are the domain services the server exposes.
type Deps struct {
	Accounts *account.Service
	Engine   *sync.Engine
	Media    *media.Service
	Notify   *notify.Service
	// Ready names the dependency checks of /readyz (for example "database" and "object_store").
	Ready map[string]ReadyCheck
}

// Server serves the fieldsync API.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	log      *slog.Logger
	accounts *account.Service
	engine   *sync.Engine
	media    *media.Service
	notify   *notify.Service
	ready    map[string]ReadyCheck
	metrics  *metrics
}

// New returns a Server with every route registered.
func New(cfg Config, deps Deps, log *slog.Logger) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, echo: e, log: log, accounts: deps.Accounts, engine: deps.Engine, media: deps.Media, notify: deps.Notify, ready: deps.Ready,
		metrics: newMetrics(prometheus.NewRegistry())}
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	if len(cfg.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range cfg.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}

	// Order matters: the request id first so everything after can log it; recovery inside the
	// observer so a panic is logged and counted as the 500 it becomes.
	e.Use(requestID)
	e.Use(s.observeRequests)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableErrorHandler: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{ContentTypeNosniff: "nosniff", XFrameOptions: "DENY"}))
	if len(cfg.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins: cfg.CORSOrigins,
			AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, "Last-Event-ID", echo.HeaderXRequestID,
				"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Checksum", "X-HTTP-Method-Override"},
			ExposeHeaders: []string{"Retry-After", echo.HeaderXRequestID, echo.HeaderLocation,
				"Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm", "Upload-Length", "Upload-Offset",
				"Upload-Metadata", "Upload-Expires"},
			MaxAge: 600,
		}))
	}
	// Prometheus compresses its own output; streams must not wait on a gzip buffer.
	// tus answers are headers only, and must reach the client as sent.
	e.Use(gzipAnswers(1024, func(c echo.Context) bool {
		return c.Path() == "/metrics" || c.Path() == "/v1/events" || isUploadPath(c.Request().URL.Path)
	}))
	e.Use(refuseAmbiguousFraming)
	e.Use(s.boundBodyReads)
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: fmt.Sprintf("%dB", cfg.MaxBodyBytes),
		// Upload bodies are documents, bounded by the upload's own limits (media.Options).
		Skipper: func(c echo.Context) bool { return isUploadPath(c.Request().URL.Path) },
	}))

	s.routes()
	return s
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler()))
	e.GET("/openapi.json", handleOpenAPI)
	e.GET("/openapi.yaml", handleOpenAPIYAML)

	// Middleware is attached per route, not per group: echo answers any path under a group with
	// middleware through that middleware, which would turn an unknown /v1 path into a 401.
	auth := s.authenticate
	admin := requireRole("admin")
	e.POST("/v1/auth/login", s.handleLogin)
	e.POST("/v1/auth/refresh", s.handleRefresh)
	e.POST("/v1/auth/logout", s.handleLogout, auth)
	e.GET("/v1/me", s.handleMe, auth)
	e.PUT("/v1/devices/current/push-token", s.handleSetPushToken, auth)

	e.GET("/v1/admin/branches", s.handleListBranches, auth, admin)
	e.POST("/v1/admin/branches", s.handleCreateBranch, auth, admin)
	e.PUT("/v1/admin/branches/:id/targets", s.handleSetTargets, auth, admin)
	e.POST("/v1/admin/users", s.handleCreateUser, auth, admin)
	e.POST("/v1/admin/users/:id/disable", s.handleDisableUser, auth, admin)
	e.POST("/v1/admin/devices/:id/revoke", s.handleRevokeDevice, auth, admin)

	e.GET("/v1/sync/pull", s.handlePull, auth, s.requireAppVersion)
	e.POST("/v1/sync/push", s.handlePush, auth, s.requireAppVersion)
	e.POST("/v1/claims", s.handleReportClaim, auth)

	s.screenRoutes(auth)
	s.deviceRoutes(auth)
	s.uploadRoutes(auth)
	s.eventRoutes(auth)
}

// Mount serves h for every path under prefix (the console at /console), through the server's
// middleware: request ids, metrics, recovery, security headers, compression, body limits.
func (s *Server) Mount(prefix string, h http.Handler) {
	wrapped := echo.WrapHandler(h)
	s.echo.Any(prefix, wrapped)
	s.echo.Any(prefix+"/*", wrapped)
}

// ClientAddr is the caller's network address as the API works it out: the peer's, or what a
// trusted proxy says in X-Forwarded-For (for the per-address login limit).
func (s *Server) ClientAddr(r *http.Request) string { return s.echo.IPExtractor(r) }

// Handler returns the server's http.Handler, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Routes returns every registered route as "METHOD path" with echo's :param syntax.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// Run serves on cfg.Addr until ctx is cancelled, then stops taking connections and gives in-flight
// requests ShutdownTimeout to finish. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Each connection is watched for requests net/http would take with an ambiguous length (see
	// framingGuard).
	ln = guardedListener{ln}
	srv := &http.Server{
		ConnContext:       withGuardedConn,
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No overall read or write timeout: long-polls, event streams and uploads are long on
		// purpose. Each of those bounds itself.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

package server

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds each dependency check of /readyz, so a hung database answers 503 quickly
// and the load balancer takes the replica out.
const readyTimeout = 2 * time.Second

// handleHealthz says the process is alive; it checks nothing else, so a database outage does not
// make an orchestrator restart every replica.
func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz says whether this replica can serve: every dependency answers. It returns 503 with
// the failing checks named otherwise.
func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	checks := map[string]string{}
	for name, check := range s.ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			result := "ok"
			if err := check(ctx); err != nil {
				result = "unavailable"
			}
			mu.Lock()
			checks[name] = result
			mu.Unlock()
		}()
	}
	wg.Wait()
	var failing []string
	for name, result := range checks {
		if result != "ok" {
			failing = append(failing, name)
		}
	}
	if len(failing) > 0 {
		sort.Strings(failing)
		// A load balancer or a client may come back when the dependency may be back.
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(readyTimeout.Seconds())))
		return c.JSON(http.StatusServiceUnavailable, errorBody{Error: errorDetail{Code: "not_ready",
			Message: "A dependency of this server is unreachable.", Details: map[string]any{"checks": checks, "failing": failing}}})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": checks})
}

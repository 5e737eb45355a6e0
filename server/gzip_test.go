package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestGzipAnswers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat(`{"type":"task","op":"upsert"},`, 200)
	e := echo.New()
	e.Use(gzipAnswers(1024, func(c echo.Context) bool { return c.Path() == "/skipped" }))
	e.GET("/big", func(c echo.Context) error { return c.String(http.StatusOK, big) })
	e.GET("/small", func(c echo.Context) error { return c.JSON(http.StatusCreated, map[string]string{"ok": "yes"}) })
	e.GET("/streamed", func(c echo.Context) error {
		c.Response().WriteHeader(http.StatusOK)
		for i := 0; i < len(big); i += 100 {
			if _, err := c.Response().Write([]byte(big[i:min(i+100, len(big))])); err != nil {
				return err
			}
		}
		return nil
	})
	e.GET("/empty", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.GET("/failed", func(c echo.Context) error { return echo.NewHTTPError(http.StatusTeapot, "no") })
	e.GET("/skipped", func(c echo.Context) error { return c.String(http.StatusOK, big) })

	for _, tc := range []struct {
		path, accept string
		status       int
		gzipped      bool
		body         string // "" to skip the check
	}{
		{"/big", "gzip", 200, true, big},
		{"/big", "", 200, false, big},
		{"/streamed", "gzip, deflate", 200, true, big},
		{"/small", "gzip", 201, false, `{"ok":"yes"}` + "\n"},
		{"/empty", "gzip", 204, false, ""},
		{"/failed", "gzip", 418, false, `{"message":"no"}` + "\n"},
		{"/skipped", "gzip", 200, false, big},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, rec.Code, tc.status)
		}
		gzipped := rec.Header().Get("Content-Encoding") == "gzip"
		if gzipped != tc.gzipped {
			t.Errorf("%s (Accept-Encoding %q): gzipped %v, want %v", tc.path, tc.accept, gzipped, tc.gzipped)
		}
		body := rec.Body.Bytes()
		if gzipped {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
		}
		if tc.status != http.StatusNoContent && string(body) != tc.body {
			t.Errorf("%s: body %.80q..., want %.80q...", tc.path, body, tc.body)
		}
		if tc.path != "/skipped" && rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", tc.path, rec.Header().Get("Vary"))
		}
	}
}

// TestGzipHoldsNoCompressorWhileWaiting: a handler that has written nothing yet (a long-poll
// waiting for changes) has taken no compressor from the pool.
func TestGzipHoldsNoCompressorWhileWaiting(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.Use(gzipAnswers(1024, func(echo.Context) bool { return false }))
	var during *lazyGzipWriter
	e.GET("/wait", func(c echo.Context) error {
		w, ok := c.Response().Writer.(*lazyGzipWriter)
		if !ok {
			return errors.New("the answer is not behind the gzip writer")
		}
		if w.gz != nil {
			t.Error("a compressor is held before anything was written")
		}
		during = w
		return c.String(http.StatusOK, strings.Repeat("x", 2048))
	})
	req := httptest.NewRequest(http.MethodGet, "/wait", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || during == nil {
		t.Fatalf("status %d", rec.Code)
	}
	if during.gz != nil {
		t.Error("the compressor was not given back")
	}
}

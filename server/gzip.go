package server

import (
	"io"
	"net/http"
	"strings"
	gosync "sync"

	"github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v4"
)

// gzipAnswers compresses answers of at least minLength bytes for clients that accept gzip, except
// where skip says. It is echo's Gzip middleware made lazy: a compressor is taken from the pool
// only once an answer has grown past minLength. echo's takes one, and resets it, at the start of
// every request and holds it until the handler returns; a compressor holds about 1 MB, so 1,000
// long-polls waiting for changes held over 1 GB between them (the load tool's long-poll phase),
// and every small answer paid for clearing one twice.
func gzipAnswers(minLength int, skip func(echo.Context) bool) echo.MiddlewareFunc {
	// klauspost/compress at its fastest level: eight times the speed of compress/gzip's default on a
	// page of a pull, for 4% more bytes. Compression was the largest part of a pull's CPU.
	pool := &gosync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // a valid level: no error
		return w
	}}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skip(c) {
				return next(c)
			}
			res := c.Response()
			res.Header().Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
			if !strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip") {
				return next(c)
			}
			rw := res.Writer
			w := &lazyGzipWriter{ResponseWriter: rw, pool: pool, minLength: minLength}
			res.Writer = w
			defer func() {
				w.finish()
				res.Writer = rw
			}()
			return next(c)
		}
	}
}

// lazyGzipWriter holds an answer's status and first bytes until it knows whether to compress
// it: once minLength bytes were written (or the handler flushes) it compresses; an answer that
// ends shorter goes as it is.
type lazyGzipWriter struct {
	http.ResponseWriter
	pool      *gosync.Pool
	minLength int

	code int // the status the handler set, 0 if none yet
	head []byte
	gz   *gzip.Writer // set once compressing
}

// WriteHeader holds the status: Content-Encoding is decided with the first minLength bytes.
func (w *lazyGzipWriter) WriteHeader(code int) {
	w.Header().Del(echo.HeaderContentLength)
	w.code = code
}

func (w *lazyGzipWriter) Write(b []byte) (int, error) {
	if w.Header().Get(echo.HeaderContentType) == "" {
		w.Header().Set(echo.HeaderContentType, http.DetectContentType(b))
	}
	if w.gz != nil {
		return w.gz.Write(b)
	}
	if len(w.head)+len(b) < w.minLength {
		w.head = append(w.head, b...)
		return len(b), nil
	}
	if err := w.startGzip(); err != nil {
		return 0, err
	}
	return w.gz.Write(b)
}

// startGzip sends the status with Content-Encoding: gzip, then the bytes held so far through a
// compressor from the pool.
func (w *lazyGzipWriter) startGzip() error {
	w.Header().Set(echo.HeaderContentEncoding, "gzip")
	w.Header().Del(echo.HeaderContentLength)
	w.ResponseWriter.WriteHeader(w.status())
	w.gz = w.pool.Get().(*gzip.Writer)
	w.gz.Reset(w.ResponseWriter)
	head := w.head
	w.head = nil
	_, err := w.gz.Write(head)
	return err
}

func (w *lazyGzipWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Flush starts compressing (more may come, of unknown size) and sends what is written so far.
func (w *lazyGzipWriter) Flush() {
	if w.gz == nil {
		if err := w.startGzip(); err != nil {
			return
		}
	}
	_ = w.gz.Flush()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// finish ends the answer when the handler returns: the compressed stream is closed and its
// compressor goes back to the pool, or what was held is sent as it is. An answer of which nothing
// was written is left unwritten, for the error handler.
func (w *lazyGzipWriter) finish() {
	if w.gz != nil {
		_ = w.gz.Close()
		w.pool.Put(w.gz)
		w.gz = nil
		return
	}
	if w.code != 0 || len(w.head) > 0 {
		w.ResponseWriter.WriteHeader(w.status())
	}
	if len(w.head) > 0 {
		_, _ = w.ResponseWriter.Write(w.head)
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *lazyGzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

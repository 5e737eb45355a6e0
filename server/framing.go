package server

import (
	"bytes"
	"context"
	"net"

	"strconv"
	"sync/atomic"

	"github.com/fieldsync/fieldsync"
	"github.com/labstack/echo/v4"
)

// A request with both Content-Length and Transfer-Encoding is ambiguous: a proxy in front that
// goes by Content-Length and this server, which goes by Transfer-Encoding, split the stream into
// different requests (request smuggling). RFC 9112 §6.1 lets a server refuse it and requires it to
// close the connection either way. net/http takes it by Transfer-Encoding, deletes the
// Content-Length header before any handler sees it, and keeps the connection alive; so each
// connection's bytes are watched here, in step with net/http, for header blocks that carry both.

// guardedListener wraps each accepted connection in a guardedConn.
type guardedListener struct{ net.Listener }

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c}, nil
}

// guardedConn is a connection whose incoming requests are framed as they are read. net/http reads
// a connection from one goroutine at a time, so the framer needs no lock; ambiguous is read by the
// handlers.
type guardedConn struct {
	net.Conn
	framer    requestFramer
	ambiguous atomic.Bool
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.ambiguous.Load() && c.framer.feed(p[:n]) {
		c.ambiguous.Store(true)
	}
	return n, err
}

type guardedConnKey struct{}

// withGuardedConn is http.Server.ConnContext: it puts the connection's guard on its requests.
func withGuardedConn(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*guardedConn); ok {
		return context.WithValue(ctx, guardedConnKey{}, g)
	}
	return ctx
}

// refuseAmbiguousFraming answers 400 bad_request, and closes the connection, to a request whose
// length is ambiguous: both headers seen on its connection (by the guard; once seen, every later
// answer on that connection is refused too, as the stream can no longer be trusted) or, should
// net/http one day keep it, in the request itself.
func refuseAmbiguousFraming(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		g, _ := r.Context().Value(guardedConnKey{}).(*guardedConn)
		if (g != nil && g.ambiguous.Load()) || (len(r.TransferEncoding) > 0 && len(r.Header["Content-Length"]) > 0) {
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return &fieldsync.Error{Kind: fieldsync.EINVALID, Code: "bad_request",
				Message: "A request may not carry both Content-Length and Transfer-Encoding."}
		}
		return next(c)
	}
}

// requestFramer follows the HTTP/1.1 requests of one connection through their header blocks and
// bodies (by Content-Length, or chunked), only as far as needed to find each header block. It
// gives up on a stream it cannot follow: net/http refuses such a stream and closes it anyway.
type requestFramer struct {
	state     framerState
	line      []byte
	started   bool // the request line of the current header block was seen
	length    int64
	hasLength bool
	chunked   bool
	remaining int64 // bytes left of a body or a chunk
}

type framerState int

const (
	framingHeaders framerState = iota
	framingBody
	framingChunkSize
	framingChunkData
	framingChunkEnd
	framingTrailers
	framingLost
)

// maxFramedLine bounds a line the framer keeps: net/http refuses header blocks over 1 MB.
const maxFramedLine = 1 << 20

// feed follows p and reports whether a header block with both Content-Length and
// Transfer-Encoding ended in it.
func (f *requestFramer) feed(p []byte) bool {
	for len(p) > 0 {
		switch f.state {
		case framingLost:
			return false
		case framingBody, framingChunkData:
			n := min(int64(len(p)), f.remaining)
			p, f.remaining = p[n:], f.remaining-n
			if f.remaining == 0 {
				if f.state == framingBody {
					f.reset()
				} else {
					f.state = framingChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.line = append(f.line, p...)
			if len(f.line) > maxFramedLine {
				f.state = framingLost
			}
			return false
		}
		f.line = append(f.line, p[:i]...)
		p = p[i+1:]
		line := bytes.TrimSuffix(f.line, []byte("\r"))
		ambiguous := f.endLine(line)
		f.line = f.line[:0]
		if ambiguous {
			f.state = framingLost
			return true
		}
	}
	return false
}

// endLine takes one whole line and reports whether it ended an ambiguous header block.
func (f *requestFramer) endLine(line []byte) bool {
	switch f.state {
	case framingHeaders:
		switch {
		case len(line) == 0 && !f.started:
			// Blank lines before a request line are allowed (RFC 9112 §2.2).
		case len(line) == 0:
			if f.hasLength && f.chunked {
				return true
			}
			switch {
			case f.chunked:
				f.state = framingChunkSize
			case f.length > 0:
				f.state, f.remaining = framingBody, f.length
			default:
				f.reset()
			}
		case !f.started:
			f.started = true
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			switch {
			case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")):
				f.hasLength = true
				n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
				if err != nil || n < 0 {
					f.state = framingLost // net/http answers 400 and closes
				}
				f.length = n
			case bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")):
				f.chunked = true
			}
		}
	case framingChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			f.state = framingLost
		case n == 0:
			f.state = framingTrailers
		default:
			f.state, f.remaining = framingChunkData, n
		}
	case framingChunkEnd:
		f.state = framingChunkSize
	case framingTrailers:
		if len(line) == 0 {
			f.reset()
		}
	}
	return false
}

// reset readies the framer for the next request's header block.
func (f *requestFramer) reset() {
	line := f.line[:0]
	if cap(line) > 4<<10 {
		line = nil // a long header line's buffer is not kept for the connection's life
	}
	*f = requestFramer{line: line}
}
